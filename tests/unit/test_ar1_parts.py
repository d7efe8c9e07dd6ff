"""CWR*'s consolidated head and AR1*'s replay memory against hand-computed values (ar1.md §3-§4)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lifelong.buffers.latent import LatentMemory
from lifelong.errors import ConfigError
from lifelong.nn.consolidated_head import ConsolidatedHead

# ---------------------------------------------------------------------- consolidated head


def linear(weight: torch.Tensor) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    with torch.no_grad():
        layer.weight.copy_(weight)
    return layer


def test_begin_counts_new_and_replayed_labels_and_resets_the_head() -> None:
    head = ConsolidatedHead(num_classes=4, in_features=2)
    head.consolidated[1] = torch.tensor([5.0, 6.0])
    head.consolidated[3] = torch.tensor([7.0, 8.0])
    head.has_consolidated[[1, 3]] = True
    layer = linear(torch.full((4, 2), 9.0))
    head.begin(layer, torch.tensor([0, 0, 1, 2, 2, 2]))
    weight = layer.weight
    assert head.cur.tolist() == [2, 1, 3, 0]
    assert head.current_classes.tolist() == [0, 1, 2]
    # class 1 is current and consolidated: loaded; class 3 is consolidated but not current: 0
    assert weight.tolist() == [[0.0, 0.0], [5.0, 6.0], [0.0, 0.0], [0.0, 0.0]]


def test_consolidation_by_hand() -> None:
    head = ConsolidatedHead(num_classes=3, in_features=2)
    # experience 1: classes 0 (4 patterns) and 1 (1 pattern) are new
    layer = linear(torch.zeros(3, 2))
    weight = layer.weight.data
    head.begin(layer, torch.tensor([0, 0, 0, 0, 1]))
    weight.copy_(torch.tensor([[1.0, 3.0], [2.0, 6.0], [100.0, 100.0]]))
    head.consolidate(layer)
    # mean over the current rows' entries: (1 + 3 + 2 + 6) / 4 = 3
    assert head.consolidated[:2].tolist() == [[-2.0, 0.0], [-1.0, 3.0]]
    assert head.consolidated[2].tolist() == [0.0, 0.0]  # class 2 was not current
    head.load(layer)
    assert weight.tolist() == [[-2.0, 0.0], [-1.0, 3.0], [100.0, 100.0]]
    head.end()
    assert head.past.tolist() == [4, 1, 0]
    # experience 2: class 0 again with 1 pattern (alpha = sqrt(4 / 1) = 2), class 2 new
    head.begin(layer, torch.tensor([0, 2, 2]))
    assert weight.tolist() == [[-2.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
    weight.copy_(torch.tensor([[4.0, 4.0], [50.0, 50.0], [0.0, 4.0]]))
    head.consolidate(layer)
    g = (4 + 4 + 0 + 4) / 4  # 3
    expected_0 = [(2 * -2.0 + (4 - g)) / 3, (2 * 0.0 + (4 - g)) / 3]
    assert head.consolidated[0].tolist() == pytest.approx(expected_0)
    assert head.consolidated[1].tolist() == [-1.0, 3.0]  # untouched
    assert head.consolidated[2].tolist() == [0.0 - g, 4.0 - g]
    head.end()
    assert head.past.tolist() == [5, 1, 2]


def test_a_bias_is_consolidated_as_one_more_column() -> None:
    head = ConsolidatedHead(2, 1, bias=True)
    layer = nn.Linear(1, 2)
    head.begin(layer, torch.tensor([0, 1]))
    assert layer.weight.abs().sum() == 0 and layer.bias.abs().sum() == 0
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0], [3.0]]))
        layer.bias.copy_(torch.tensor([5.0, 7.0]))
    head.consolidate(layer)  # mean of 1, 5, 3, 7 = 4
    assert head.consolidated.tolist() == [[-3.0, 1.0], [-1.0, 3.0]]
    head.load(layer)
    assert layer.weight.squeeze(1).tolist() == [-3.0, -1.0]
    assert layer.bias.tolist() == [1.0, 3.0]


def test_consolidated_head_state_dict_round_trip() -> None:
    head = ConsolidatedHead(3, 2)
    head.begin(linear(torch.randn(3, 2)), torch.tensor([0, 1]))
    head.consolidate(linear(torch.randn(3, 2)))
    head.end()
    copy = ConsolidatedHead(3, 2)
    copy.load_state_dict(head.state_dict())
    for name, value in head.state_dict().items():
        assert torch.equal(value, copy.state_dict()[name])


# ------------------------------------------------------------------------ replay memory


def test_memory_keeps_capacity_over_i_plus_one_of_each_experience() -> None:
    memory = LatentMemory(capacity=12)
    g = torch.Generator().manual_seed(0)
    first = torch.arange(20.0)[:, None]  # pattern value = index, label = 0
    assert memory.update(first, torch.zeros(20, dtype=torch.int64), 0, g) == 12
    assert len(memory) == 12 and set(memory.labels.tolist()) == {0}
    assert len(set(memory.next(12)[0].squeeze(1).tolist())) == 12  # 12 distinct patterns
    # experience 1: h = min(12 // 2, 20) = 6 new patterns overwrite 6 slots
    assert memory.update(100 + first, torch.ones(20, dtype=torch.int64), 1, g) == 6
    assert memory.labels.tolist().count(1) == 6 and len(memory) == 12
    # experience 3 with only 2 patterns: h = min(12 // 4, 2) = 2
    assert memory.update(first[:2], torch.full((2,), 3), 3, g) == 2
    assert memory.labels.tolist().count(3) == 2


def test_memory_fills_free_slots_before_overwriting() -> None:
    memory = LatentMemory(capacity=10)
    g = torch.Generator().manual_seed(0)
    memory.update(torch.zeros(4, 3), torch.zeros(4, dtype=torch.int64), 0, g)
    assert len(memory) == 4
    memory.update(torch.ones(8, 3), torch.ones(8, dtype=torch.int64), 1, g)  # h = 5
    assert len(memory) == 9 and memory.labels.tolist() == [0] * 4 + [1] * 5


def test_memory_replays_in_stored_order_wrapping_around() -> None:
    memory = LatentMemory(capacity=5)
    g = torch.Generator().manual_seed(0)
    memory.update(torch.arange(5.0)[:, None], torch.arange(5), 0, g)
    order = memory.labels.tolist()
    first, labels = memory.next(3)
    assert labels.tolist() == order[:3] and first.squeeze(1).tolist() == order[:3]
    assert memory.next(3)[1].tolist() == order[3:] + order[:1]
    memory.restart()
    assert memory.next(2)[1].tolist() == order[:2]


def test_memory_float16_storage_halves_the_bytes() -> None:
    g = torch.Generator().manual_seed(0)
    full, half = LatentMemory(8), LatentMemory(8, torch.float16)
    patterns = torch.randn(8, 4, 2, 2)
    full.update(patterns, torch.zeros(8, dtype=torch.int64), 0, g)
    half.update(patterns, torch.zeros(8, dtype=torch.int64), 0, torch.Generator().manual_seed(0))
    labels_bytes = 8 * 8
    assert full.nbytes - labels_bytes == 2 * (half.nbytes - labels_bytes) == 8 * 16 * 4
    replayed, _ = half.next(8)
    assert replayed.dtype == torch.float32
    assert torch.allclose(replayed, full.next(8)[0], atol=1e-2)


def test_memory_round_trip_and_errors() -> None:
    memory = LatentMemory(4)
    with pytest.raises(ValueError, match="empty"):
        memory.next(1)
    with pytest.raises(ConfigError):
        LatentMemory(0)
    memory.update(torch.randn(6, 2), torch.arange(6), 0, torch.Generator().manual_seed(1))
    memory.next(3)
    copy = LatentMemory(4)
    copy.load_state_dict(memory.state_dict())
    assert torch.equal(copy.next(2)[0], memory.next(2)[0])
