"""The settings of SARL and of the options its named variants switch on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lifelong.errors import ConfigError
from lifelong.methods.der import DERConfig
from lifelong.methods.epoch_need import EpochNeed

Similarity = Literal["cosine", "learned"]


@dataclass(frozen=True)
class SARLConfig(DERConfig):
    """Settings of SARL (defaults: the reference parser; presets hold the paper values).

    The defaults are plain SARL; the registered variants (``sarl_enhanced``,
    ``sarl_enhanced_gelu``, ``sarl_enhanced_gelu_balanced``, ``sarl_online``) set
    ``similarity``, ``use_balanced_sampling`` and ``online`` (see ``lifelong list methods``).
    """

    alpha: float = 0.5
    """Weight of DER logit replay on buffer examples."""
    beta: float = 1.0
    """Weight of functional distillation from the frozen previous model."""
    op_weight: float = 0.1
    """Weight of the prototype regularisation of buffer features."""
    sm_weight: float = 0.01
    """Weight of the semantic attraction/repulsion ratio."""
    sim_thresh: float = 0.8
    """Cosine similarity above which two classes are grouped as semantically similar."""
    warmup_epochs: int = 5
    """Epochs (passes, also under ``train.iters``) of each experience after the first before
    distillation and grouping (the official scripts define 3 but never pass it, so their
    effective value is this default, 5; must be 0 with ``online``)."""
    lr_steps: tuple[int, ...] = (70, 90)
    """Epochs at which the learning rate is divided by 10 (restarts every experience; must be
    empty with ``online``)."""
    recalibration_batch_size: int = 32
    """Batch size of the end-of-experience BN re-estimation pass over the buffer."""
    feature_batch_size: int = 256
    """Batch size of the prototype passes over an experience's data (not used with ``online``)."""
    similarity: Similarity = "cosine"
    """Semantic weights: hard cosine groups (SARL) or a trained similarity network (enhanced)."""
    sim_lr: float = 0.001
    """Adam learning rate of the similarity network (``similarity="learned"``)."""
    sim_pairs: int = 256
    """Prototype pairs per similarity-network update (all pairs when there are fewer)."""
    use_balanced_sampling: bool = False
    """Draw the replay minibatch by importance (needs ``similarity="learned"``; else uniformly)."""
    balance_alpha: float = 1.0
    """Exponent of the group-balance factor in the importance (0: no group balancing)."""
    adaptive_temp: float = 0.5
    """Temperature of the soft group membership around the adaptive threshold."""
    min_score: float = 0.1
    """Floor on the similarity score before inverting it (0: unbounded, as in SARL_Optim)."""
    online: bool = False
    """SARL-online: warm-up counted in steps, prototypes from running means, constant rate."""
    warmup_iters: int = 10
    """Steps at the start of each experience before tracking and grouping (``online`` only)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("beta", "op_weight", "sm_weight", "sim_lr", "balance_alpha"):
            if getattr(self, name) < 0:
                raise ConfigError(f"method.{name} must be >= 0, got {getattr(self, name)}")
        if not -1 <= self.sim_thresh <= 1:
            raise ConfigError(f"method.sim_thresh must be in [-1, 1], got {self.sim_thresh}")
        if self.warmup_epochs < 0 or self.warmup_iters < 0:
            raise ConfigError("method.warmup_epochs and method.warmup_iters must be >= 0")
        if self.sim_pairs <= 0:
            raise ConfigError(f"method.sim_pairs must be positive, got {self.sim_pairs}")
        if self.adaptive_temp <= 0:
            raise ConfigError(f"method.adaptive_temp must be positive, got {self.adaptive_temp}")
        if not 0 <= self.min_score < 1:
            raise ConfigError(f"method.min_score must be in [0, 1), got {self.min_score}")
        if self.use_balanced_sampling and self.similarity != "learned":
            raise ConfigError(
                "method.use_balanced_sampling needs method.similarity=learned (its importance "
                "scores come from the similarity network): use sarl_enhanced_gelu_balanced"
            )
        if self.online:
            self.check_online()

    def check_online(self) -> None:
        """Reject the settings that do not apply to the online form (``sarl_online``)."""
        if self.warmup_epochs != 0:
            raise ConfigError(
                "method.warmup_epochs does not apply to sarl_online, whose warm-up is counted "
                "in steps: set method.warmup_iters instead"
            )
        if self.lr_steps:
            raise ConfigError(
                "method.lr_steps does not apply to sarl_online (constant learning rate, as in "
                "the reference): remove it or use sarl"
            )
        if self.similarity != "cosine":
            raise ConfigError(
                "method.similarity=learned does not apply to sarl_online (its anchors come from "
                "the end-of-epoch pass): use sarl_enhanced"
            )

    def own_lr_schedule(self) -> str | None:
        """``method.lr_steps`` when it decays the rate (the paper's 70 and 90)."""
        return f"method.lr_steps={list(self.lr_steps)}" if self.lr_steps else None

    def epochs_needed(self, experience: int) -> EpochNeed | None:
        """``warmup_epochs + 2`` epochs in every experience after the first (none online).

        The new classes are grouped at the end of epoch ``warmup_epochs + 1``; distillation and
        the semantic ratio act from the next epoch on. The online warm-up counts steps.
        """
        if experience == 0 or self.online:
            return None
        return EpochNeed(
            self.warmup_epochs + 2,
            f"method.warmup_epochs={self.warmup_epochs}",
            "the distillation and semantic terms act",
        )
