"""SimSiam (Chen & He, *Exploring Simple Siamese Representation Learning*, CVPR 2021).

Spec ``cssl.md`` §1: encoder → 3-layer projector (hidden width d_e, final BN) → predictor;
L = ½ D(p1, sg(z2)) + ½ D(p2, sg(z1)) with D the negative cosine similarity.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lifelong.backbones import Backbone
from lifelong.ssl.heads import predictor_mlp, projector_mlp
from lifelong.ssl.losses import negative_cosine_per_sample, simsiam_loss
from lifelong.ssl.model import (
    SSL_MODELS,
    AlignmentFn,
    PredictorConfig,
    SSLModel,
    SSLModelSpec,
    SSLOutput,
)


@dataclass(frozen=True)
class SimSiamConfig(PredictorConfig):
    """Configuration of :class:`SimSiam`: the projector and predictor widths."""


class SimSiam(SSLModel):
    """Siamese encoder and projector; each view's prediction chases the other's projection.

    The target projection is behind a stop-gradient.

    ``alignment`` is the per-sample negative cosine −cos(a, b). Probing uses the encoder.
    """

    name = "simsiam"

    def __init__(
        self, cfg: SimSiamConfig, encoder: Backbone, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(encoder, num_views=2)
        self.cfg = cfg
        self.projector = projector_mlp(self.embedding_dim, cfg.dim_proj)
        self.predictor = predictor_mlp(cfg.dim_proj, cfg.dim_pred)

    @property
    def projector_dim(self) -> int:
        """d_p."""
        return self.cfg.dim_proj

    @property
    def alignment(self) -> AlignmentFn | None:
        """Per-sample −cos(a, b)."""
        return negative_cosine_per_sample

    def forward(self, views: list[torch.Tensor]) -> SSLOutput:
        """SimSiam loss of two views (B, C, H, W)."""
        self.check_views(views)
        e = [self.encode(v) for v in views]
        z = [self.projector(x) for x in e]
        p = [self.predictor(x) for x in z]
        loss = simsiam_loss(p[0], p[1], z[0], z[1])
        return SSLOutput(loss, z, e)


SSL_MODELS.add(
    "simsiam",
    SSLModelSpec(SimSiamConfig, SimSiam, "SimSiam: predictor vs stop-gradient projection"),
)
