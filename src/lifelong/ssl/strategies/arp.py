"""ARP, "Align to Replayed Past": align replayed items to their stored projections (§2).

≈ CLA-R of Cignoni et al., *Latent Alignment for Online Continual Self-Supervised Learning*,
CoLLAs 2025 (spec ``cssl.md`` §2).
"""

from __future__ import annotations

import torch

from lifelong.ssl.model import SSLModel, SSLOutput
from lifelong.ssl.strategies.base import (
    SSL_STRATEGIES,
    Alignment,
    PassBatch,
)
from lifelong.ssl.strategies.er import ER


@SSL_STRATEGIES.register("arp")
class ARP(ER):
    """ER plus + ω · mean over views v of crit(g(z_{R,v}), z_old) on the replayed part.

    z_old are the replayed items' stored features as sampled, before this pass refreshes them
    (f ← α f + (1 − α) z̄, α = 0.5); they were z̄ over the views of the item's last stream pass at
    insertion. No extra network: the targets are the buffer's slowly refreshed latents. Batching
    and buffer updates are ER's.
    """

    name = "arp"
    default_buffer = "reservoir"

    def build_modules(self, model: SSLModel) -> None:
        """The aligner (the targets are the buffer's stored features)."""
        self.align = Alignment(self.cfg, model)

    def after_forward(
        self, model: SSLModel, views: list[torch.Tensor], out: SSLOutput, batch: PassBatch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Add the alignment of the replayed rows of every view to their stored features."""
        if batch.replay is None:
            return out.loss, {}
        n = batch.num_replay
        z = torch.cat([z_v[:n] for z_v in out.z])
        target = batch.replay.features.repeat(len(out.z), 1)
        align = self.align(z, target)
        return out.loss + self.cfg.omega * align, {"align": align.detach()}
