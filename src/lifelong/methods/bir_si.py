"""BI-R + SI: Brain-Inspired Replay with Synaptic Intelligence on its encoder and classifier."""

from __future__ import annotations

from dataclasses import dataclass

from lifelong.errors import ConfigError
from lifelong.methods.base import register
from lifelong.methods.bir import BIR, BIRConfig


@dataclass(frozen=True)
class BIRSIConfig(BIRConfig):
    """BI-R's settings with SI on (the reference's ``--brain-inspired --si``)."""

    si_c: float = 0.1
    """SI strength ``c`` (split MNIST class-IL 0.1; CIFAR-100 class-IL 1e8 with dg_prop 0.6)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.si_c > 0:
            raise ConfigError(f"method.si_c must be positive for bir_si, got {self.si_c} (use bir)")


@register
class BIRSI(BIR):
    """BI-R with a Synaptic Intelligence penalty (van de Ven et al. 2020, "BI-R + SI").

    The same step as :class:`~lifelong.methods.bir.BIR`, plus ``si_c * Σ ω (θ − θ*)²`` over the
    encoder's fully connected layers and the classifier; ω accumulates each experience's path
    integral of the total loss (replay and penalty included), as in the reference (§3.5).
    """

    name = "bir_si"
    config_cls = BIRSIConfig
