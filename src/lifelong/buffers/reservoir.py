"""Reservoir sampling (Vitter, 1985) as a pure function of the stream position."""

from __future__ import annotations

import random


def reservoir_slots(num_seen: int, batch_size: int, capacity: int, rng: random.Random) -> list[int]:
    """Slots where the next ``batch_size`` stream items go under reservoir sampling.

    Item number ``n`` (0-based over the whole stream) fills slot ``n`` while the buffer is not
    full; afterwards it draws ``j`` uniformly from ``0..n`` and replaces slot ``j`` if
    ``j < capacity``, otherwise it is dropped. Every item seen so far is then in the buffer with
    probability ``capacity / (n + 1)``.

    Plain Python on purpose: for a batch of a few items it is several times cheaper than NumPy or
    torch calls inside a training step (measured in ``benchmarks/throughput.py``).

    Args:
        num_seen: Items seen before this batch.
        batch_size: Items in this batch.
        capacity: Buffer capacity.
        rng: Python generator for the draws.

    Returns:
        The slot of each item, or -1 if it is dropped. When two items of one batch draw the
        same slot the later one must win, as in the sequential algorithm.
    """
    uniform = rng.random
    slots = []
    for position in range(num_seen, num_seen + batch_size):
        # int(u * (n + 1)) is uniform on 0..n (exact for n < 2**53, far beyond any stream)
        slot = position if position < capacity else int(uniform() * (position + 1))
        slots.append(slot if slot < capacity else -1)
    return slots
