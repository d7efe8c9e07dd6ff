"""SimSiam (Chen & He, *Exploring Simple Siamese Representation Learning*, CVPR 2021).

Spec ``cssl.md`` §1: encoder → 3-layer projector (hidden width d_e, final BN) → predictor;
L = ½ D(p1, sg(z2)) + ½ D(p2, sg(z1)) with D the negative cosine similarity.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lifelong.backbones import Backbone
from lifelong.ssl.losses import negative_cosine_per_sample, simsiam_loss
from lifelong.ssl.model import (
    SSL_MODELS,
    AlignmentFn,
    PredictorConfig,
    PredictorModel,
    SSLModelSpec,
    SSLOutput,
)


@dataclass(frozen=True)
class SimSiamConfig(PredictorConfig):
    """Configuration of :class:`SimSiam`: the projector and predictor widths."""


class SimSiam(PredictorModel):
    """Siamese encoder and projector; each view's prediction chases the other's projection.

    The target projection is behind a stop-gradient.

    ``alignment`` is the per-sample negative cosine −cos(a, b). Probing uses the encoder.
    """

    name = "simsiam"

    def __init__(
        self, cfg: SimSiamConfig, encoder: Backbone, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(cfg, encoder)
        self.cfg = cfg

    @property
    def alignment(self) -> AlignmentFn | None:
        """Per-sample −cos(a, b)."""
        return negative_cosine_per_sample

    def forward(self, views: list[torch.Tensor]) -> SSLOutput:
        """SimSiam loss of two views (B, C, H, W)."""
        e, z, p = self.online(views)
        loss = simsiam_loss(p[0], p[1], z[0], z[1])
        return SSLOutput(loss, z, e)


SSL_MODELS.add(
    "simsiam",
    SSLModelSpec(SimSiamConfig, SimSiam, "SimSiam: predictor vs stop-gradient projection"),
)
