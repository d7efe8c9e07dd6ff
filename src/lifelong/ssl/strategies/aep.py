"""AEP, "Align to EMA Past": align to an EMA of the network (spec ``cssl.md`` §2).

≈ CLA-E of Cignoni et al., *Latent Alignment for Online Continual Self-Supervised Learning*,
CoLLAs 2025.
"""

from __future__ import annotations

import torch

from lifelong.ssl.byol import ema_update
from lifelong.ssl.model import SSLModel, SSLOutput
from lifelong.ssl.strategies.base import (
    SSL_STRATEGIES,
    Alignment,
    PassBatch,
    Projection,
    Strategy,
)


@SSL_STRATEGIES.register("aep")
class AEP(Strategy):
    """L = L_SSL + ω · mean crit(g(z_all), z_all^EMA); buffer-free, no task boundaries.

    The target is a copy of the encoder and projector made at construction, without gradients,
    that follows the online network after every optimiser step: θ_EMA ← m θ_EMA + (1 − m) θ with
    m = 0.999. Like BYOL's target it runs in the strategy's mode (batch statistics in training).
    Only parameters are averaged (§9.6): the target's BatchNorm running statistics follow its
    own forward passes, and a target that normalises with batch statistics never reads them.
    """

    name = "aep"

    def build_modules(self, model: SSLModel) -> None:
        """The EMA target (a frozen copy of encoder and projector) and the aligner."""
        self.target = Projection.frozen_copy(model)
        self.align = Alignment(self.cfg, model)

    def after_forward(
        self, model: SSLModel, views: list[torch.Tensor], out: SSLOutput, batch: PassBatch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Add ω · mean crit(g(z), z^EMA) over all views of the batch."""
        with torch.no_grad():
            target = torch.cat([self.target(v) for v in views])
        align = self.align(torch.cat(out.z), target)
        return out.loss + self.cfg.omega * align, {"align": align.detach()}

    def after_step(self, model: SSLModel, out: SSLOutput, batch: PassBatch) -> None:
        """EMA update of the target."""
        ema_update(self.target, Projection.of(model), self.cfg.ema_momentum)
