"""MinRed: train only on a minimum-redundancy buffer (spec ``cssl.md`` §2).

Purushwalkam, Morgado & Gupta, *The Challenges of Continuous Self-Supervised Learning*,
ECCV 2022.
"""

from __future__ import annotations

import torch

from lifelong.ssl.model import SSLModel, SSLOutput
from lifelong.ssl.strategies.base import SSL_STRATEGIES, PassBatch, Projection, statistics_kept
from lifelong.ssl.strategies.er import ER


@SSL_STRATEGIES.register("minred")
class MinRed(ER):
    """S enters the buffer first (with its projection); every pass trains on buffer items only.

    Before the passes, S's un-augmented images go through the current encoder and projector
    without gradients and are inserted with that z (MinRed buffer: the most redundant stored
    items make room). Each pass draws min(``replay_batch_size``, |buffer|) items uniformly; the
    stream minibatch itself is never trained on directly. After each step the replayed items'
    stored features are refreshed (α = 0.5), as in ER.

    Difference from the reference: the insertion pass uses batch statistics but leaves the
    BatchNorm running statistics unchanged (the reference's train-mode pass moves them, §9.7).
    """

    name = "minred"
    default_buffer = "minred"

    def before_passes(self, model: SSLModel, x: torch.Tensor) -> None:
        """Insert S with the projection of its un-augmented images."""
        projection = Projection.of(model)
        with torch.no_grad(), statistics_kept(projection):
            z = projection(self.normalize(x))
        self.replay_buffer.add(x, z)

    def before_forward(self, x: torch.Tensor) -> PassBatch:
        """A uniform sample of the buffer (S is already in it)."""
        replay = self.replay_buffer.sample(self.cfg.replay_batch_size)
        return PassBatch(replay.x.to(x.device), replay)

    def after_passes(self, x: torch.Tensor, out: SSLOutput, batch: PassBatch) -> None:
        """Nothing: S entered the buffer before the passes."""
