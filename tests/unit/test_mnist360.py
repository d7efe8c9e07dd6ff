"""MNIST-360: pair schedule, mixing, rotation and in-order training."""

from __future__ import annotations

import torch

from lifelong.data.mnist360 import CLASSES, MIXING_BATCH, incremental_angles, stream_batches
from lifelong.data.transforms import ImageTransform
from lifelong.running.train import batches


def _labels(per_class: int = 60) -> torch.Tensor:
    return torch.arange(10).repeat_interleave(per_class)[torch.randperm(10 * per_class)]


def test_pairs_visit_classes_in_rotating_order_without_digit_nine() -> None:
    labels = _labels()
    mixing = stream_batches(labels, torch.Generator().manual_seed(0))
    order = [i for batch in mixing for i in batch]
    assert 9 not in labels[torch.tensor(order)].tolist()
    assert len(set(order)) == len(order)  # every example at most once
    # each mixing batch holds at most the two classes of the active pair
    pairs = []
    for batch in mixing:
        assert 0 < len(batch) <= MIXING_BATCH
        present = tuple(sorted(set(labels[torch.tensor(batch)].tolist())))
        assert len(present) <= 2
        if len(present) == 2 and (not pairs or pairs[-1] != present):
            pairs.append(present)
    expected = [tuple(sorted((j, (j + 1) % CLASSES))) for j in range(CLASSES)]
    assert pairs[: len(expected)] == expected


def test_mixing_is_proportional_to_what_is_left() -> None:
    labels = _labels(per_class=120)
    first = labels[torch.tensor(stream_batches(labels, torch.Generator().manual_seed(1))[0])]
    # both chunks start equally full: the first batch is split evenly between classes 0 and 1
    assert sorted(first.tolist()).count(0) == MIXING_BATCH // 2


def test_each_class_turns_a_full_circle() -> None:
    labels = torch.tensor([0, 3, 0, 3, 0, 3])
    angles = incremental_angles(labels, start=True)
    assert angles[labels == 0].tolist() == [-60.0, 60.0, 180.0]
    assert angles[labels == 3].tolist() == [120.0, 240.0, 360.0]
    assert incremental_angles(labels, start=False)[labels == 3].tolist() == [0.0, 120.0, 240.0]


def test_ordered_streams_are_taken_in_order() -> None:
    from lifelong.data.tensors import ImageSet

    data = ImageSet(torch.zeros(10, 1, 2, 2, dtype=torch.uint8), torch.arange(10))
    transform = ImageTransform((0.0,), (1.0,))
    generator, cpu = torch.Generator().manual_seed(0), torch.device("cpu")
    ordered = [b.y.tolist() for b in batches(data, 3, 4, 2, transform, True, generator, cpu, 0)]
    assert ordered == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    shuffled = [b.y.tolist() for b in batches(data, 3, 4, 2, transform, False, generator, cpu, 0)]
    assert shuffled != ordered
