"""LUMP: mixup of the stream's views with replayed views (spec ``cssl.md`` §2).

Madaan et al., *Representational Continuity for Unsupervised Continual Learning*, ICLR 2022.
"""

from __future__ import annotations

import numpy as np
import torch

from lifelong.ssl.model import SSLModel, SSLOutput
from lifelong.ssl.strategies.base import SSL_STRATEGIES, PassBatch, mean_projection
from lifelong.ssl.strategies.er import ER


def beta_draw(alpha: float, generator: torch.Generator) -> float:
    """One λ ~ Beta(α, α), reproducible from the torch ``generator``'s state."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


@SSL_STRATEGIES.register("lump")
class LUMP(ER):
    """Each pass augments concat(R, S) with |R| = |S|, then trains on the mixed views only.

    For every view v, x̃_v = λ x_{S,v} + (1 − λ) x_{R,v}, with **one** λ ~ Beta(α, α)
    (α = 0.4) drawn per pass and shared by all samples and views; the SSL loss sees the |S| mixed
    samples. S joins the buffer after the passes, as in ER, with the mean projection of the last
    pass (the mixed samples' when replay happened; a reservoir buffer does not use it).

    Differences from the reference: λ comes from the run's generator (§9.8); mixing starts once
    the buffer holds |S| items (the reference: strictly more); the replayed items' stored
    features are not refreshed, since the pass has no projection of R alone. The replay size is
    |S| by construction of the mixup, so ``replay_batch_size`` is not used (§9.13).
    """

    name = "lump"
    default_buffer = "reservoir"
    last_lambda: float | None = None
    """λ of the latest mixed pass (None before the first)."""

    def before_forward(self, x: torch.Tensor) -> PassBatch:
        """concat(R, S) with |R| = |S|, or S alone while the buffer holds fewer than |S| items."""
        buffer = self.replay_buffer
        if len(buffer) < len(x):
            return PassBatch(x)
        replay = buffer.sample(len(x))
        return PassBatch(torch.cat([replay.x.to(x.device), x]), replay)

    def after_transforms(self, views: list[torch.Tensor], batch: PassBatch) -> list[torch.Tensor]:
        """Mix each view of S with the same view of R using one λ for the whole pass."""
        n = batch.num_replay
        if n == 0:
            return views
        lam = self.last_lambda = beta_draw(self.cfg.lump_alpha, self.generator)
        return [lam * v[n:] + (1.0 - lam) * v[:n] for v in views]

    def after_step(self, model: SSLModel, out: SSLOutput, batch: PassBatch) -> None:
        """Nothing: the projections are of mixed samples, not of the replayed items."""

    def after_passes(self, x: torch.Tensor, out: SSLOutput, batch: PassBatch) -> None:
        """Add S to the buffer with the last pass's mean projection (one row per sample of S)."""
        self.replay_buffer.add(x, mean_projection(out))
