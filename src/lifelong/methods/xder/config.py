"""The settings of X-DER and of the options its variants (``xder_rpc``, ``xder_ce``) fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lifelong.errors import ConfigError
from lifelong.methods.rehearsal import RehearsalConfig

Head = Literal["linear", "polytope"]
StreamClasses = Literal["current", "current_and_future"]


@dataclass(frozen=True)
class XDERConfig(RehearsalConfig):
    """Settings of X-DER.

    Defaults: mammoth's ``models/xder.py`` parser; ``alpha`` and ``beta`` (required there) from
    its ``models/config/xder.yaml`` (seq-cifar100, buffer 500). Presets cite their values.
    """

    alpha: float = 0.3
    """Weight of the logit-matching (MSE) term on a first buffer sample (all heads)."""
    beta: float = 0.8
    """Weight of the cross-entropy term on a second buffer sample (past heads)."""
    gamma: float = 0.85
    """γ of the logit update: transplanted logits peak at most at γ x the ground-truth logit."""
    lambd: float = 0.05
    """Weight λ of the future-preparation SupCon term on the future heads (0: off)."""
    simclr_temp: float = 5.0
    """Temperature (and base temperature) of the future-preparation SupCon."""
    simclr_batch_size: int = 64
    """Buffer examples joining the batch in the future-preparation term."""
    simclr_num_aug: int = 4
    """Strongly augmented views per example in the future-preparation term (>= 2)."""
    constr_eta: float = 0.1
    """Weight of the future (and past) logit constraints."""
    constr_margin: float = 0.3
    """Margin m of the logit constraints."""
    future_constraint: bool = True
    """Future heads must stay m below the example's own head (stream and buffer examples)."""
    past_constraint: bool = False
    """Past heads' softmax must stay m below the current head's on stream examples."""
    head: Head = "linear"
    """``linear``: the backbone's head; ``polytope``: a fixed regular-simplex classifier."""
    stream_classes: StreamClasses = "current"
    """Units the stream cross-entropy spans: the current head, or it and the future heads."""
    first_experience_reservoir: bool = False
    """Fill the buffer by reservoir during experience 0 and replay it (xder_ce); else empty."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("alpha", "beta", "lambd", "constr_eta", "constr_margin"):
            if getattr(self, name) < 0:
                raise ConfigError(f"method.{name} must be >= 0, got {getattr(self, name)}")
        if not 0 < self.gamma <= 1:
            raise ConfigError(f"method.gamma must be in (0, 1], got {self.gamma}")
        if not self.simclr_temp > 0:
            raise ConfigError(f"method.simclr_temp must be positive, got {self.simclr_temp}")
        if self.simclr_batch_size < 0:
            raise ConfigError(
                f"method.simclr_batch_size must be >= 0, got {self.simclr_batch_size}"
            )
        if self.simclr_num_aug < 2:
            raise ConfigError(f"method.simclr_num_aug must be >= 2, got {self.simclr_num_aug}")
        if self.head not in ("linear", "polytope"):
            raise ConfigError(f"method.head must be 'linear' or 'polytope', got {self.head!r}")
        if self.stream_classes not in ("current", "current_and_future"):
            raise ConfigError(
                "method.stream_classes must be 'current' or 'current_and_future', "
                f"got {self.stream_classes!r}"
            )
        for name in ("future_constraint", "past_constraint", "first_experience_reservoir"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(
                    f"method.{name} must be true or false, got {getattr(self, name)!r}"
                )
