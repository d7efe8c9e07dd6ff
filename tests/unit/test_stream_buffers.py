"""The continual-SSL replay buffers: FIFO, FIFO-last, reservoir, MinRed and the hybrid."""

from __future__ import annotations

import math

import pytest
import torch

import lifelong.buffers.hybrid_buffer  # noqa: F401  (registers hybrid_minred_fifo)
from lifelong.buffers.hybrid_buffer import HybridMinRedFifoBuffer
from lifelong.buffers.stream_buffers import (
    STREAM_BUFFERS,
    MinRedBuffer,
    StreamBuffer,
    StreamBufferConfig,
    build_stream_buffer,
)
from lifelong.errors import ConfigError

SHAPE = (1, 2, 2)


def _images(ids: list[int]) -> torch.Tensor:
    """uint8 images whose pixels hold the item id (< 256), so stored items can be identified."""
    return torch.tensor(ids, dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, *SHAPE).clone()


def _ids(buffer: StreamBuffer) -> list[int]:
    return sorted(buffer.x[: len(buffer), 0, 0, 0].tolist())


def _build(
    kind: str,
    size: int,
    dim: int = 2,
    seed: int = 0,
    feature_ema: float = 0.5,
    min_replays: int = 1,
    fifo_ratio: float = 0.25,
) -> StreamBuffer:
    cfg = StreamBufferConfig(kind, size, feature_ema, min_replays, fifo_ratio)
    return build_stream_buffer(cfg, SHAPE, dim, torch.Generator().manual_seed(seed))


def _unit(degrees: list[float]) -> torch.Tensor:
    angles = torch.tensor(degrees) * math.pi / 180
    return torch.stack([angles.cos(), angles.sin()], dim=1)


def _train_on(buffer: StreamBuffer, slots: list[int]) -> None:
    """Mark items as trained on, passing their own features back (so they do not move)."""
    index = torch.tensor(slots)
    buffer.update_features(index, buffer.features[index].clone())


# ---------------------------------------------------------------------------------------------
# MinRed


def _minred_of_four(min_replays: int = 1) -> StreamBuffer:
    """Items 0..3 at 0°, 2°, 90° and 200°: items 0 and 1 are the redundant pair."""
    buffer = _build("minred", 4, min_replays=min_replays)
    buffer.add(_images([0, 1, 2, 3]), _unit([0, 2, 90, 200]))
    return buffer


def test_minred_removes_a_member_of_the_most_similar_pair() -> None:
    buffer = _minred_of_four()
    _train_on(buffer, [0, 1, 2, 3])
    buffer.add(_images([9]), _unit([300]))
    # the first member of the closest pair goes; its slot takes the new item
    assert _ids(buffer) == [1, 2, 3, 9]
    assert buffer.x[0, 0, 0, 0] == 9
    assert buffer.replays[0] == 0  # the new item has not been trained on


def test_minred_protects_items_never_trained_on() -> None:
    buffer = _minred_of_four()
    _train_on(buffer, [1, 2, 3])  # item 0 was never trained on
    buffer.add(_images([9]), _unit([300]))
    assert _ids(buffer) == [0, 2, 3, 9]


def test_minred_reference_mode_lets_untrained_items_go() -> None:
    buffer = _minred_of_four(min_replays=0)
    buffer.add(_images([9]), _unit([300]))
    assert _ids(buffer) == [1, 2, 3, 9]


def test_minred_removes_the_oldest_when_too_few_items_were_trained_on() -> None:
    buffer = _minred_of_four()
    _train_on(buffer, [3])  # 1 eligible item < 2 x 1 to remove: fall back to age
    buffer.add(_images([9]), _unit([2]))
    assert _ids(buffer) == [1, 2, 3, 9]
    buffer.add(_images([10]), _unit([5]))
    assert _ids(buffer) == [2, 3, 9, 10]


def test_minred_greedy_removal_drops_one_member_of_each_redundant_pair() -> None:
    """Pairs (0, 1) at 1° and (2, 3) at 10°; removing two items must not empty a pair: once 0
    is gone, 1 has no close neighbour left and the next removal is from the other pair."""
    buffer = _build("minred", 5)
    buffer.add(_images([0, 1, 2, 3, 4]), _unit([0, 1, 90, 100, 220]))
    _train_on(buffer, [0, 1, 2, 3, 4])
    # the incoming items are near-copies of stored ones but are exempt from removal
    buffer.add(_images([7, 8]), _unit([0.5, 95]))
    assert _ids(buffer) == [1, 3, 4, 7, 8]


def test_minred_batch_larger_than_the_buffer_keeps_its_newest_items() -> None:
    buffer = _build("minred", 3)
    buffer.add(_images([0, 1, 2, 3, 4]), _unit([0, 10, 20, 30, 40]))
    assert _ids(buffer) == [2, 3, 4]


# ---------------------------------------------------------------------------------------------
# FIFO, FIFO-last, reservoir


def test_fifo_keeps_the_newest_items() -> None:
    buffer = _build("fifo", 5)
    buffer.add(_images([0, 1, 2]), torch.zeros(3, 2))
    buffer.add(_images([3, 4, 5, 6]), torch.zeros(4, 2))
    assert len(buffer) == 5
    assert _ids(buffer) == [2, 3, 4, 5, 6]
    buffer.add(_images(list(range(10, 17))), torch.zeros(7, 2))
    assert _ids(buffer) == [12, 13, 14, 15, 16]
    drawn = buffer.sample(3)
    assert len(set(drawn.slots.tolist())) == 3
    assert torch.equal(drawn.x, buffer.x[drawn.slots])


def test_fifo_last_samples_the_newest_items_in_insertion_order() -> None:
    buffer = _build("fifo_last", 5)
    buffer.add(_images([0, 1, 2]), torch.zeros(3, 2))
    buffer.add(_images([3, 4, 5, 6]), torch.zeros(4, 2))
    newest = buffer.sample(3)
    assert newest.x[:, 0, 0, 0].tolist() == [4, 5, 6]
    assert torch.equal(buffer.sample(3).slots, newest.slots)  # deterministic
    assert buffer.sample(50).x[:, 0, 0, 0].tolist() == [2, 3, 4, 5, 6]


def test_reservoir_buffer_keeps_a_uniform_sample_of_the_stream() -> None:
    """Capacity 10, stream of 100 items in batches of 7, 600 runs: each position is held with
    probability 0.1, a count ~ Binomial(600, 0.1) (mean 60, sd 7.3); bound 5.5 sd. The first and
    the last 20 positions each hold 20% of the kept items (sd about 0.5 points; bound 3 points).
    A FIFO (only recent items) or a buffer that stops after the fill fails both."""
    capacity, total, runs = 10, 100, 600
    counts = torch.zeros(total)
    for run in range(runs):
        buffer = _build("reservoir", capacity, dim=1, seed=run)
        for start in range(0, total, 7):
            ids = list(range(start, min(start + 7, total)))
            buffer.add(_images(ids), torch.zeros(len(ids), 1))
        held = torch.tensor(_ids(buffer))
        assert len(held.unique()) == capacity
        counts[held] += 1
    assert (counts - 60).abs().max() < 40
    kept = runs * capacity
    assert abs(counts[:20].sum() / kept - 0.2) < 0.03
    assert abs(counts[-20:].sum() / kept - 0.2) < 0.03


# ---------------------------------------------------------------------------------------------
# Hybrid MinRed-FIFO


def _axis(i: int, tilt: int = -1) -> torch.Tensor:
    """A unit-ish feature along axis i of 8, nudged towards axis ``tilt`` when given."""
    f = torch.zeros(8)
    f[i] = 1.0
    if tilt >= 0:
        f[tilt] = 0.01
    return f


def test_hybrid_moves_the_most_novel_fifo_item_into_minred() -> None:
    buffer = _build("hybrid_minred_fifo", 8, dim=8, fifo_ratio=0.25)
    assert isinstance(buffer, HybridMinRedFifoBuffer)
    assert (buffer.fifo_size, buffer.minred_size) == (2, 6)
    # items 0..5 become the MinRed part (0 and 1 redundant); FIFO items 6, 7 copy MinRed items
    first = [_axis(0), _axis(0, tilt=1), _axis(2), _axis(3), _axis(4), _axis(5)]
    first += [_axis(2, tilt=3), _axis(3, tilt=4)]
    buffer.add(_images(list(range(8))), torch.stack(first))
    assert buffer.num_minred == 0
    with pytest.raises(RuntimeError):
        buffer.sample_minred(1)
    # item 8 overflows the buffer and is novel: it replaces item 0, the older of the close pair
    buffer.add(_images([8]), _axis(6).view(1, 8))
    assert _ids(buffer) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert sorted(buffer.sample_minred(10).x[:, 0, 0, 0].tolist()) == [1, 2, 3, 4, 5, 8]
    assert sorted(buffer.sample_fifo(10).x[:, 0, 0, 0].tolist()) == [6, 7]
    # item 9 copies a MinRed item: no exchange, and the oldest FIFO item (6) is dropped
    buffer.add(_images([9]), _axis(2, tilt=5).view(1, 8))
    assert sorted(buffer.sample_fifo(10).x[:, 0, 0, 0].tolist()) == [7, 9]
    assert buffer.num_minred == 6 and len(buffer) == 8


# ---------------------------------------------------------------------------------------------
# Every buffer


@pytest.mark.parametrize("kind", STREAM_BUFFERS.names())
def test_update_features_is_an_ema_and_counts_replays(kind: str) -> None:
    buffer = _build(kind, 6, feature_ema=0.25)
    buffer.add(_images([0, 1, 2]), torch.ones(3, 2))
    buffer.update_features(torch.tensor([2, 0]), torch.tensor([[5.0, 5.0], [-3.0, 1.0]]))
    expected = torch.tensor([[-2.0, 1.0], [1.0, 1.0], [4.0, 4.0]])
    torch.testing.assert_close(buffer.features[:3], expected)
    assert buffer.replays[:3].tolist() == [1, 0, 1]


@pytest.mark.parametrize("kind", STREAM_BUFFERS.names())
def test_state_dict_round_trip_continues_identically(kind: str) -> None:
    def feed(buffer: StreamBuffer, start: int) -> None:
        for s in range(start, start + 20, 5):
            features = torch.randn(5, 2, generator=torch.Generator().manual_seed(s))
            buffer.add(_images(list(range(s, s + 5))), features)
            drawn = buffer.sample(3)
            buffer.update_features(drawn.slots, drawn.features + 0.1)

    original = _build(kind, 8, seed=1)
    feed(original, 0)
    restored = _build(kind, 8, seed=2)
    restored.load_state_dict(original.state_dict())
    assert len(restored) == len(original) == 8
    for name, value in original.state_dict().items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(restored.state_dict()[name], value), name
    feed(original, 100)
    feed(restored, 100)
    assert torch.equal(original.x, restored.x)
    assert torch.equal(original.sample(4).slots, restored.sample(4).slots)


def test_config_names_the_bad_field() -> None:
    with pytest.raises(ConfigError, match="minred"):
        StreamBufferConfig(kind="minred_buffer")
    with pytest.raises(ConfigError, match=r"buffer\.size"):
        StreamBufferConfig(size=0)
    with pytest.raises(ConfigError, match="feature_ema"):
        StreamBufferConfig(feature_ema=1.5)


def test_add_rejects_float_images() -> None:
    buffer = _build("fifo", 4)
    with pytest.raises(ValueError, match="uint8"):
        buffer.add(torch.zeros(2, *SHAPE), torch.zeros(2, 2))
    assert isinstance(_build("minred", 4), MinRedBuffer)
