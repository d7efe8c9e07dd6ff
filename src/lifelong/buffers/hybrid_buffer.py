"""The hybrid MinRed-FIFO replay buffer of the continual-SSL reference (``hybrid_minred_fifo``).

Spec ``cssl.md`` §3 (used by the ``arp_hybrid`` strategy, §2). A FIFO part of
``fifo_ratio · size`` items sits in front of a MinRed part that keeps decorrelated items, in the
spirit of MinRed (Purushwalkam, Morgado & Gupta, *The Challenges of Continuous Self-Supervised
Learning*, ECCV 2022).

Difference from the reference code (``giacomo-cgn/ocl-self-supervised``): the FIFO item that
enters the MinRed part is the one *farthest* from it (the most novel, as the reference's variable
``max_dist_fifo`` says); the reference code takes the *nearest* one (a ``min``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

from lifelong.buffers.stream_buffers import (
    STREAM_BUFFERS,
    Replay,
    StreamBuffer,
)
from lifelong.errors import ConfigError

FeatureMap = Callable[[torch.Tensor], torch.Tensor]
"""Maps features (n, d) to the space they are compared in (the optional aligner)."""


class HybridMinRedFifoBuffer(StreamBuffer):
    """A FIFO part in front of a MinRed part (the reference's ``hybrid_minred_fifo``).

    New items enter the FIFO part. When the buffer first overflows, its oldest
    ``size - fifo_size`` items become the MinRed part. From then on, while the FIFO part is over
    its size, its most novel item (largest cosine distance to the nearest MinRed item) replaces
    the most redundant MinRed item (smallest distance to its nearest MinRed neighbour) if it is
    farther than that item; otherwise the exchange stops. The FIFO part then drops its oldest
    items. ``in_minred`` marks which slots belong to the MinRed part.
    """

    in_minred: torch.Tensor

    def _setup(self) -> None:
        cfg = self.cfg
        self.fifo_size = int(cfg.size * cfg.fifo_ratio)
        self.minred_size = cfg.size - self.fifo_size
        if self.fifo_size < 1 or self.minred_size < 2:
            raise ConfigError(
                f"buffer.size {cfg.size} with fifo_ratio {cfg.fifo_ratio} leaves no room for both "
                "parts: the FIFO part needs 1 item and the MinRed part 2"
            )
        self.register_buffer("in_minred", torch.zeros(cfg.size, dtype=torch.bool))
        self.split = False

    def add(
        self, x: torch.Tensor, features: torch.Tensor, feature_map: FeatureMap | None = None
    ) -> None:
        """Offer a batch; ``feature_map`` (optional aligner) maps FIFO features before distances."""
        self._check(x, features)
        items, slots, to_minred = self._plan(features, feature_map)
        self._store(x, features, items, slots)
        self.in_minred[slots.to(self.x.device)] = to_minred

    @property
    def num_minred(self) -> int:
        """Items in the MinRed part (0 until the buffer first overflows)."""
        return int(self.in_minred[: self.size].sum())

    def sample_fifo(self, n: int) -> Replay:
        """Up to ``n`` distinct items of the FIFO part, uniformly at random."""
        return self._sample_from(self._part(minred=False), n)

    def sample_minred(self, n: int) -> Replay:
        """Up to ``n`` distinct items of the MinRed part, uniformly at random."""
        return self._sample_from(self._part(minred=True), n)

    def _part(self, minred: bool) -> torch.Tensor:
        return (self.in_minred[: self.size] == minred).nonzero().squeeze(1).cpu()

    @torch.no_grad()
    def _plan(
        self, features: torch.Tensor, feature_map: FeatureMap | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Incoming rows to keep, their slots and part; updates the part of the stored items."""
        s, b, device = self.size, features.shape[0], self.features.device
        pool = torch.cat([self.features[:s], features.detach().to(device, self.features.dtype)])
        stamps = torch.cat([self.stamp[:s], torch.arange(b, device=device) + self.num_seen])
        minred = torch.cat([self.in_minred[:s], torch.zeros(b, dtype=torch.bool, device=device)])
        alive = torch.ones(s + b, dtype=torch.bool, device=device)
        if not self.split and s + b > self.capacity:
            self.split = True
            minred[stamps.argsort()[: self.minred_size]] = True
        if self.split:
            self._exchange(pool, minred, alive, feature_map)
            fifo = (alive & ~minred).nonzero().squeeze(1)
            alive[fifo[stamps[fifo].argsort()[: max(0, len(fifo) - self.fifo_size)]]] = False
        self.in_minred[:s] = minred[:s]
        incoming = alive[s:].nonzero().squeeze(1)
        free = torch.arange(s, self.capacity, device=device)
        slots = torch.cat([free, (~alive[:s]).nonzero().squeeze(1)])
        assert len(slots) >= len(incoming), "hybrid buffer: fewer free slots than kept items"
        return incoming.cpu(), slots[: len(incoming)].cpu(), minred[s:][incoming]

    def _exchange(
        self,
        pool: torch.Tensor,
        minred: torch.Tensor,
        alive: torch.Tensor,
        feature_map: FeatureMap | None,
    ) -> None:
        """Move novel FIFO items into the MinRed part in place of redundant ones (in place)."""
        excess = int((alive & ~minred).sum()) - self.fifo_size
        if excess <= 0:
            return
        stored = F.normalize(pool, dim=1)
        mapped = stored if feature_map is None else F.normalize(feature_map(pool), dim=1)
        to_minred = mapped @ stored.T
        within = stored @ stored.T
        within = torch.maximum(within, within.T)  # exact ties for a pair's two members
        within.fill_diagonal_(float("-inf"))
        for _ in range(excess):
            fifo = (alive & ~minred).nonzero().squeeze(1)
            part = (alive & minred).nonzero().squeeze(1)
            novelty = 1.0 - to_minred[fifo][:, part].max(dim=1).values
            redundancy = 1.0 - within[part][:, part].max(dim=1).values
            best, worst = novelty.argmax(), redundancy.argmin()
            if novelty[best] <= redundancy[worst]:
                break
            minred[fifo[best]] = True
            alive[part[worst]] = False

    def get_extra_state(self) -> dict[str, Any]:
        """Adds whether the MinRed part exists yet."""
        return {**super().get_extra_state(), "split": self.split}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_extra_state` returned."""
        super().set_extra_state(state)
        self.split = bool(state["split"])


STREAM_BUFFERS.add("hybrid_minred_fifo", HybridMinRedFifoBuffer)
