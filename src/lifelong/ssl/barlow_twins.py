"""Barlow Twins (Zbontar et al., *Self-Supervised Learning via Redundancy Reduction*, ICML 2021).

Spec ``cssl.md`` §1: encoder → 3-layer projector without the final BN (hidden width d_e) →
L = Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij² on the cross-correlation C of the batch-standardised
projections of two views, λ = 5e-3.

The reference standardises with a fresh ``BatchNorm1d(affine=False)``; we standardise with the
same batch statistics in :func:`~lifelong.ssl.losses.standardize` (no module, no running
statistics). The projector's last Linear has no bias (the reference's is a frozen constant,
removed by the standardisation anyway).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from lifelong.backbones import Backbone
from lifelong.ssl.heads import projector_mlp
from lifelong.ssl.losses import barlow_twins_loss
from lifelong.ssl.model import (
    SSL_MODELS,
    AlignmentFn,
    ProjectorConfig,
    SSLModel,
    SSLModelSpec,
    SSLOutput,
    check_positive,
)


@dataclass(frozen=True)
class BarlowTwinsConfig(ProjectorConfig):
    """Configuration of :class:`BarlowTwins`."""

    lambd: float = 5e-3
    """Weight λ of the off-diagonal (redundancy-reduction) term."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("lambd", self.lambd)


class BarlowTwins(SSLModel):
    """Cross-correlation of two views' projections pushed toward the identity.

    ``alignment`` is the Barlow Twins loss itself, a batch-level scalar (its cross-correlation
    needs the whole batch, so there is no per-sample form).
    """

    name = "barlow_twins"

    def __init__(
        self, cfg: BarlowTwinsConfig, encoder: Backbone, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(encoder, num_views=2)
        self.cfg = cfg
        self.projector = projector_mlp(self.embedding_dim, cfg.dim_proj, final_bn=False)

    @property
    def projector_dim(self) -> int:
        """d_p."""
        return self.cfg.dim_proj

    @property
    def alignment(self) -> AlignmentFn | None:
        """The Barlow Twins loss with this model's λ (a scalar)."""
        return functools.partial(barlow_twins_loss, lambd=self.cfg.lambd)

    def forward(self, views: list[torch.Tensor]) -> SSLOutput:
        """Barlow Twins loss of two views (B, C, H, W), B ≥ 2."""
        self.check_views(views)
        e = [self.encode(v) for v in views]
        z = [self.projector(x) for x in e]
        return SSLOutput(barlow_twins_loss(z[0], z[1], self.cfg.lambd), z, e)


SSL_MODELS.add(
    "barlow_twins",
    SSLModelSpec(BarlowTwinsConfig, BarlowTwins, "Barlow Twins: cross-correlation to identity"),
)
