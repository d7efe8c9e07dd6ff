"""APRE, "Align Past Replayed to EMA": align replayed items to an EMA network (``cssl.md`` §2).

From the CLA family of Cignoni et al., *Latent Alignment for Online Continual Self-Supervised
Learning*, CoLLAs 2025 (the CLIMB fork's own method aligns the same way).
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
)
from lifelong.ssl.strategies.er import ER


@SSL_STRATEGIES.register("apre")
class APRE(ER):
    """ER plus ω · mean crit(g(z_R), z^EMA(R's views)) on the replayed part only.

    The EMA target (encoder and projector, m = 0.999, updated after every step, as in
    :class:`~lifelong.ssl.strategies.aep.AEP`) sees the replayed rows of each view. Batching,
    the stored-feature refresh (unused by the loss) and buffer insertion are ER's.
    """

    name = "apre"
    default_buffer = "reservoir"

    def build_modules(self, model: SSLModel) -> None:
        """The EMA target (a frozen copy of encoder and projector) and the aligner."""
        self.target = Projection.frozen_copy(model)
        self.align = Alignment(self.cfg, model)

    def after_forward(
        self, model: SSLModel, views: list[torch.Tensor], out: SSLOutput, batch: PassBatch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Add the alignment of the replayed rows of every view to the EMA target's projection."""
        if batch.replay is None:
            return out.loss, {}
        n = batch.num_replay
        with torch.no_grad():
            target = torch.cat([self.target(v[:n]) for v in views])
        align = self.align(torch.cat([z_v[:n] for z_v in out.z]), target)
        return out.loss + self.cfg.omega * align, {"align": align.detach()}

    def after_step(self, model: SSLModel, out: SSLOutput, batch: PassBatch) -> None:
        """Refresh the replayed items' features, then the EMA update of the target."""
        super().after_step(model, out, batch)
        ema_update(self.target, Projection.of(model), self.cfg.ema_momentum)
