"""Experience replay for continual SSL (the reference's ``replay``, spec ``cssl.md`` §2).

Replay in continual SSL as studied by Madaan et al. (*Representational Continuity for
Unsupervised Continual Learning*, ICLR 2022) and Purushwalkam et al. (*The Challenges of
Continuous Self-Supervised Learning*, ECCV 2022).
"""

from __future__ import annotations

import torch

from lifelong.ssl.model import SSLModel, SSLOutput
from lifelong.ssl.strategies.base import SSL_STRATEGIES, PassBatch, Strategy, mean_projection


@SSL_STRATEGIES.register("er")
class ER(Strategy):
    """Each pass trains on concat(R, S): a fresh uniform replay sample R first, then S.

    The SSL loss covers the whole concatenated batch in one forward pass (shared BatchNorm
    statistics). After each step the replayed items' stored features are refreshed with their
    current z̄ (the mean projection over views); after all passes S joins the buffer with its z̄
    from the last pass, so a stream item is never replayed during its own passes.

    Difference from the reference: replay starts once the buffer holds a full replay batch
    (``len ≥ replay_batch_size``); the reference waits for one more item (strictly greater,
    §9.12).
    """

    name = "er"
    default_buffer = "reservoir"

    def before_forward(self, x: torch.Tensor) -> PassBatch:
        """concat(R, S) with |R| = ``replay_batch_size``, or S alone while the buffer is short."""
        buffer = self.replay_buffer
        if len(buffer) < self.cfg.replay_batch_size:
            return PassBatch(x)
        replay = buffer.sample(self.cfg.replay_batch_size)
        return PassBatch(torch.cat([replay.x.to(x.device), x]), replay)

    def after_step(self, model: SSLModel, out: SSLOutput, batch: PassBatch) -> None:
        """Refresh the replayed items' stored features: f ← α f + (1 − α) z̄."""
        if batch.replay is not None:
            z = mean_projection(out)[: batch.num_replay]
            self.replay_buffer.update_features(batch.replay.slots, z)

    def after_passes(self, x: torch.Tensor, out: SSLOutput, batch: PassBatch) -> None:
        """Add S to the buffer with its z̄ from the last pass."""
        self.replay_buffer.add(x, mean_projection(out)[batch.num_replay :])
