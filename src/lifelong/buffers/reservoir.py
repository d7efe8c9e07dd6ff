"""Reservoir sampling (Vitter, 1985) by skips: which stream items a buffer keeps, and where."""

from __future__ import annotations

import random
from typing import Any


class Reservoir:
    """Assigns buffer slots to stream items so the buffer is a uniform sample of the stream.

    Item number ``n`` (0-based over the whole stream) fills slot ``n`` while the buffer is not
    full; afterwards it is kept with probability ``capacity / (n + 1)``, in a slot drawn
    uniformly, and dropped otherwise. This is the rule of the DER code
    (``j = randint(0, n + 1); keep in slot j if j < capacity``), drawn as in Vitter's
    Algorithm X: instead of one draw per item, one uniform draw per *kept* item gives the
    position of the next kept item. The distribution is the same; once the buffer is full a
    batch with no kept item costs a comparison, which matters because most items are dropped
    (measured in ``benchmarks/throughput.py``).

    Plain Python on purpose: per kept item it is several times cheaper than NumPy or torch.

    Args:
        capacity: Buffer capacity.
        rng: Python generator for the draws.
        num_seen: Items seen before the first call (to start mid-stream).
    """

    def __init__(self, capacity: int, rng: random.Random, num_seen: int = 0) -> None:
        self.capacity = capacity
        self.rng = rng
        self.num_seen = num_seen
        self._next_kept = -1  # position of the next kept item once full; -1: not drawn yet

    def slots(self, batch_size: int) -> list[tuple[int, int]]:
        """Advance the stream by ``batch_size`` items; return ``(item, slot)`` for the kept ones.

        ``item`` indexes the batch. Pairs come in stream order, so when two items of one batch
        get the same slot, applying the pairs in order leaves the later one, as in the
        sequential algorithm.
        """
        start, end = self.num_seen, self.num_seen + batch_size
        self.num_seen = end
        if end <= self._next_kept:  # the common case once full: every item is dropped
            return []
        kept = [(p - start, p) for p in range(start, min(end, self.capacity))]
        position = max(start, self.capacity)
        while position < end:
            if self._next_kept < position:
                self._next_kept = self._skip_to_kept(position)
            if self._next_kept >= end:
                break
            kept.append((self._next_kept - start, int(self.rng.random() * self.capacity)))
            position = self._next_kept + 1
            self._next_kept = -1
        return kept

    def _skip_to_kept(self, position: int) -> int:
        """Position of the first kept item at or after ``position`` (buffer full).

        Item ``n`` is dropped with probability ``(n + 1 - k) / (n + 1)``; the first kept item is
        the first ``n`` at which the running product of these falls to ``u ~ U(0, 1)`` or below.
        """
        u = self.rng.random()
        k = self.capacity
        n = position
        dropped = (n + 1 - k) / (n + 1)
        while dropped > u:
            n += 1
            dropped *= (n + 1 - k) / (n + 1)
        return n

    def state(self) -> dict[str, Any]:
        """Everything needed to continue identically (for checkpoints)."""
        return {"num_seen": self.num_seen, "next_kept": self._next_kept, "rng": self.rng.getstate()}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned."""
        self.num_seen = int(state["num_seen"])
        self._next_kept = int(state["next_kept"])
        self.rng.setstate(state["rng"])
