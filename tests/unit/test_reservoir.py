"""Reservoir sampling (slot assignment by skips) and the tensor buffer built on it."""

from __future__ import annotations

import copy
import random

import numpy as np
import pytest
import torch

from lifelong.buffers.reservoir import Reservoir
from lifelong.buffers.tensor_buffer import TensorBuffer
from lifelong.errors import ConfigError

# ---------------------------------------------------------------------------------------------
# Reservoir


def _apply_in_order(store: np.ndarray, kept: list[tuple[int, int]], values: np.ndarray) -> None:
    """The sequential algorithm: writes happen in stream order, so the later item wins a slot."""
    for item, slot in kept:
        store[slot] = values[item]


def test_fills_sequentially_while_not_full() -> None:
    reservoir = Reservoir(20, random.Random(0))
    assert reservoir.slots(5) == [(i, i) for i in range(5)]
    reservoir.slots(10)
    # a batch that crosses the capacity: the first items still fill the free slots in order
    crossing = reservoir.slots(10)
    assert crossing[:5] == [(i, 15 + i) for i in range(5)]
    assert all(5 <= item < 10 and 0 <= slot < 20 for item, slot in crossing[5:])
    assert reservoir.num_seen == 25


def test_after_full_items_are_kept_with_probability_capacity_over_position() -> None:
    # item number 99 (0-based) is kept with probability 20 / 100, in a uniform slot.
    rng = random.Random(1)
    draws = []
    for _ in range(20000):
        kept = Reservoir(20, rng, num_seen=99).slots(1)
        draws.append(kept[0][1] if kept else -1)
    kept_slots = np.asarray([d for d in draws if d >= 0])
    # Binomial(20000, 0.2): sd = 56.6 items; 6 sd bound.
    assert abs(kept_slots.size - 4000) < 340
    counts = np.bincount(kept_slots, minlength=20)
    assert counts.size == 20
    # each slot ~ Binomial(20000, 0.01): mean 200, sd 14.1; 6 sd bound over 20 slots.
    assert np.all(np.abs(counts - 200) < 85)


@pytest.mark.parametrize("batch", [1, 10, 37])
def test_reservoir_keeps_a_uniform_sample_of_the_stream(batch: int) -> None:
    """Every stream position ends in the buffer with probability capacity / N.

    capacity 20, stream of N = 200 items in batches, 3000 independent runs. The count of
    runs that keep position p is Binomial(3000, 0.1): mean 300, sd 16.4. Bounds:
    - each position within 5.5 sd (90): by a union bound over 200 positions the chance that a
      correct sampler fails is below 200 * 4e-8 < 1e-5;
    - the Pearson statistic sum((c - 300)^2 / 300) has mean about 0.9 * 199 = 179 and sd about 26,
      so it stays below 330 (about 6 sd);
    - the first and the last 50 positions each hold 10% of the kept items within 1 point.
    A sampler biased to recent items (e.g. always replacing) or to early items fails all three,
    and so does a skip that is off by one or lost across batch boundaries.
    """
    capacity, total, runs = 20, 200, 3000
    counts = np.zeros(total, dtype=np.int64)
    for run in range(runs):
        reservoir = Reservoir(capacity, random.Random(run))
        store = np.full(capacity, -1, dtype=np.int64)
        for start in range(0, total, batch):
            size = min(batch, total - start)
            _apply_in_order(store, reservoir.slots(size), np.arange(start, start + size))
        assert np.all(store >= 0)
        assert np.unique(store).size == capacity  # a slot holds one item, an item one slot
        counts[store] += 1
    expected = runs * capacity / total
    assert np.max(np.abs(counts - expected)) < 90
    assert np.sum((counts - expected) ** 2 / expected) < 330
    kept = runs * capacity
    assert abs(counts[:50].sum() / kept - 0.25) < 0.01
    assert abs(counts[-50:].sum() / kept - 0.25) < 0.01


def test_the_number_of_kept_items_matches_the_expected_count() -> None:
    """Kept items after the fill: sum over n of capacity / (n + 1), here 20 * (H_2000 - H_20)."""
    capacity, total, runs = 20, 2000, 400
    expected = capacity * sum(1 / (n + 1) for n in range(capacity, total))
    counts = []
    for run in range(runs):
        reservoir = Reservoir(capacity, random.Random(run))
        reservoir.slots(capacity)
        counts.append(sum(len(reservoir.slots(10)) for _ in range((total - capacity) // 10)))
    # the count is a sum of independent Bernoullis: variance below its mean (~46); 6 sd of the
    # mean of 400 runs is about 2.
    assert abs(np.mean(counts) - expected) < 2.0


def test_state_round_trip_continues_identically() -> None:
    reservoir = Reservoir(5, random.Random(7))
    reservoir.slots(33)
    restored = Reservoir(5, random.Random(0))
    restored.load_state(reservoir.state())
    for _ in range(20):
        assert restored.slots(9) == reservoir.slots(9)


# ---------------------------------------------------------------------------------------------
# TensorBuffer

FIELDS = {"x": ((1, 4, 4), torch.uint8), "y": ((), torch.int64)}


def _items(start: int, n: int) -> dict[str, torch.Tensor]:
    """Items whose image encodes their id (so x and y of one item can be matched)."""
    ids = torch.arange(start, start + n)
    x = (ids % 251).to(torch.uint8).view(n, 1, 1, 1).expand(n, 1, 4, 4).clone()
    x[:, 0, 0, 0] = (ids // 251).to(torch.uint8)
    return {"x": x, "y": ids}


def _ids_of(x: torch.Tensor) -> torch.Tensor:
    return x[:, 0, 0, 0].long() * 251 + x[:, 0, 1, 1].long()


def _buffer(capacity: int = 20, seed: int = 0) -> TensorBuffer:
    return TensorBuffer(capacity, FIELDS, torch.Generator().manual_seed(seed))


def test_buffer_add_len_and_stored_values() -> None:
    buffer = _buffer()
    assert len(buffer) == 0
    buffer.add(_items(0, 5))
    assert len(buffer) == 5
    # while not full, items sit in order and are stored exactly
    np.testing.assert_array_equal(buffer.field("y")[:5].numpy(), np.arange(5))
    assert torch.equal(buffer.field("x")[:5], _items(0, 5)["x"])
    buffer.add(_items(5, 30))
    assert len(buffer) == 20
    assert buffer.num_seen == 35
    # every stored item is intact: its image still encodes its label
    assert torch.equal(_ids_of(buffer.field("x")), buffer.field("y"))
    assert buffer.field("x").dtype == torch.uint8
    assert buffer.field("y").dtype == torch.int64


def test_buffer_writes_follow_the_sequential_reservoir_order() -> None:
    """Slots drawn twice in one batch: the buffer holds what the sequential algorithm holds."""
    buffer = _buffer(capacity=5, seed=3)
    reference = np.full(5, -1, dtype=np.int64)
    seen = 0
    for _ in range(30):
        kept = copy.deepcopy(buffer.reservoir).slots(50)
        _apply_in_order(reference, kept, np.arange(seen, seen + 50))
        buffer.add(_items(seen, 50))
        seen += 50
        np.testing.assert_array_equal(buffer.field("y").numpy(), reference)


def test_sample_shapes_dtypes_and_distinct_items() -> None:
    buffer = _buffer()
    buffer.add(_items(0, 100))
    sample = buffer.sample(8)
    assert set(sample) == {"x", "y"}
    assert sample["x"].shape == (8, 1, 4, 4)
    assert sample["x"].dtype == torch.uint8
    assert sample["y"].shape == (8,)
    assert sample["y"].dtype == torch.int64
    assert torch.equal(_ids_of(sample["x"]), sample["y"])  # rows stay paired
    stored = set(buffer.field("y").tolist())
    for _ in range(50):
        ys = buffer.sample(15)["y"].tolist()
        assert len(set(ys)) == 15  # without replacement
        assert set(ys) <= stored
    everything = buffer.sample(1000)["y"]
    assert sorted(everything.tolist()) == sorted(stored)  # asks for more than held: all, once


def test_sample_from_a_partially_filled_buffer_only_returns_stored_items() -> None:
    buffer = _buffer()
    buffer.add(_items(0, 3))
    ys = buffer.sample(10)["y"]
    assert sorted(ys.tolist()) == [0, 1, 2]


def test_sample_on_empty_buffer_raises() -> None:
    with pytest.raises(RuntimeError, match="empty"):
        _buffer().sample(4)


@pytest.mark.parametrize("capacity", [0, -5])
def test_non_positive_capacity_is_a_config_error(capacity: int) -> None:
    with pytest.raises(ConfigError, match="buffer_size"):
        _buffer(capacity=capacity)


def test_state_dict_round_trip_gives_same_contents_and_future() -> None:
    original = _buffer(seed=0)
    original.add(_items(0, 37))
    copy = _buffer(seed=12345)  # another sampling generator until the state is loaded
    copy.load_state_dict(original.state_dict())
    assert len(copy) == len(original) == 20
    assert copy.num_seen == 37
    for name in ("x", "y"):
        assert torch.equal(copy.field(name), original.field(name))
    # the generators travel in the extra state: same samples and same insertions next
    for _ in range(5):
        assert torch.equal(copy.sample(6)["y"], original.sample(6)["y"])
    copy.add(_items(37, 40))
    original.add(_items(37, 40))
    assert torch.equal(copy.field("y"), original.field("y"))
    assert torch.equal(copy.field("x"), original.field("x"))


def test_buffers_from_different_generators_sample_differently() -> None:
    first, second = _buffer(seed=0), _buffer(seed=1)
    first.add(_items(0, 200))
    second.add(_items(0, 200))
    assert not torch.equal(first.field("y"), second.field("y"))
