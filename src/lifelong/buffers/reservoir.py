"""Reservoir sampling (Vitter, 1985) as a pure function of the stream position."""

from __future__ import annotations

import numpy as np


def reservoir_slots(
    num_seen: int, batch_size: int, capacity: int, rng: np.random.Generator
) -> np.ndarray:
    """Slots where the next ``batch_size`` stream items go under reservoir sampling.

    Item number ``n`` (0-based over the whole stream) fills slot ``n`` while the buffer is not
    full; afterwards it draws ``j`` uniformly from ``0..n`` and replaces slot ``j`` if
    ``j < capacity``, otherwise it is dropped. Every item seen so far is then in the buffer with
    probability ``capacity / (n + 1)``.

    Args:
        num_seen: Items seen before this batch.
        batch_size: Items in this batch.
        capacity: Buffer capacity.
        rng: NumPy generator for the draws.

    Returns:
        int64 array of shape (batch_size,): the slot of each item, or -1 if it is dropped.
        When two items of one batch draw the same slot the later one must win, as in the
        sequential algorithm (writes are applied in order).
    """
    position = num_seen + np.arange(batch_size, dtype=np.int64)
    draws = np.floor(rng.random(batch_size) * (position + 1)).astype(np.int64)
    slots = np.where(position < capacity, position, draws)
    return np.where(slots < capacity, slots, -1)
