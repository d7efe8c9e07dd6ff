"""CWR*: consolidated output-layer weights, no replay (spec ``ar1.md`` §3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from lifelong.errors import ConfigError
from lifelong.methods.ar1_star import AR1Star, AR1StarConfig, ReplayLevel
from lifelong.methods.base import register


@dataclass(frozen=True)
class CWRStarConfig(AR1StarConfig):
    """Settings of CWR*: AR1*'s, without replay."""

    replay: ReplayLevel = "none"
    """CWR* does not replay (any other value is an error)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.replay != "none":
            raise ConfigError("cwr_star does not replay: use ar1_star for latent or input replay")


@register
class CWRStar(AR1Star):
    """CWR* (Lomonaco et al., CVPR-W 2020): after the first experience only the head trains.

    The first experience trains the layers above the split (the lower ones stay frozen, as
    AR1*); from the second on, everything below the head is frozen and each experience's head
    rows are consolidated as in AR1*. No replay (``replay`` is forced to ``none``).
    """

    name = "cwr_star"
    config_cls = CWRStarConfig
    freeze_upper_after_first = True

    def train(self, mode: bool = True) -> Self:
        """As AR1*, and the frozen upper part stays in evaluation mode after the first."""
        super().train(mode)
        if int(self.experiences_done) > 0:
            self.upper.train(False)
        return self
