"""BYOL (Grill et al., *Bootstrap Your Own Latent*, NeurIPS 2020).

Spec ``cssl.md`` §1: an online encoder, projector and predictor, and a target encoder and
projector that are deep copies at construction, receive no gradients and follow the online
network by an exponential moving average θᵗ ← m θᵗ + (1 − m) θ after every optimiser step
(constant m, 0.99 as the reference's command line; no cosine schedule). The loss is the batch
mean of the **sum** of the two symmetric terms (2 − 2 cos).

As in the reference only parameters are averaged: the target's BatchNorm running statistics
evolve through its own forward passes (it runs in the same train/eval mode as the model). Probing
uses the momentum (target) encoder by default, as the reference's
``--return-momentum-encoder True``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from lifelong.backbones import Backbone
from lifelong.errors import ConfigError
from lifelong.ssl.losses import byol_distance_per_sample, byol_loss
from lifelong.ssl.model import (
    SSL_MODELS,
    AlignmentFn,
    PredictorConfig,
    PredictorModel,
    SSLModelSpec,
    SSLOutput,
)


@dataclass(frozen=True)
class BYOLConfig(PredictorConfig):
    """Configuration of :class:`BYOL`."""

    momentum: float = 0.99
    """EMA momentum m of the target network (constant; the reference's constructor uses 0.9)."""
    eval_momentum_encoder: bool = True
    """Probe the momentum (target) encoder instead of the online one."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.momentum <= 1.0:
            raise ConfigError(f"ssl.momentum must be in [0, 1], got {self.momentum}")


def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """θᵗ ← m θᵗ + (1 − m) θ for every parameter pair (buffers are left alone)."""
    with torch.no_grad():
        for t, o in zip(target.parameters(), online.parameters(), strict=True):
            t.mul_(momentum).add_(o.detach(), alpha=1.0 - momentum)


class BYOL(PredictorModel):
    """Online network predicts the target network's projection of the other view.

    ``alignment`` is the per-sample 2 − 2 cos(a, b).
    """

    name = "byol"

    def __init__(
        self, cfg: BYOLConfig, encoder: Backbone, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(cfg, encoder)
        self.cfg = cfg
        self.target_encoder = copy.deepcopy(encoder).requires_grad_(False)
        self.target_projector = copy.deepcopy(self.projector).requires_grad_(False)

    @property
    def alignment(self) -> AlignmentFn | None:
        """Per-sample 2 − 2 cos(a, b)."""
        return byol_distance_per_sample

    def forward(self, views: list[torch.Tensor]) -> SSLOutput:
        """BYOL loss of two views (B, C, H, W); z and e are the online network's."""
        e, z, p = self.online(views)
        with torch.no_grad():
            zt = [self.target_projector(self.target_encoder.features(v)) for v in views]
        loss = byol_loss(p[0], p[1], zt[0], zt[1])
        return SSLOutput(loss, z, e)

    def eval_encoder(self) -> nn.Module:
        """The momentum encoder, or the online one if ``eval_momentum_encoder`` is False."""
        return self.target_encoder if self.cfg.eval_momentum_encoder else self.encoder

    def after_step(self) -> None:
        """EMA update of the target encoder and projector."""
        ema_update(self.target_encoder, self.encoder, self.cfg.momentum)
        ema_update(self.target_projector, self.projector, self.cfg.momentum)


SSL_MODELS.add(
    "byol",
    SSLModelSpec(BYOLConfig, BYOL, "BYOL: online predictor vs EMA target projection"),
)
