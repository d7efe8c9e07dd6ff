"""GCIL phases: sizes, no reuse of samples, cumulative tests, first-appearance labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lifelong.data.gcil import _draw_phase, gcil_experiences
from lifelong.data.tensors import ImageSet, TrainTest
from lifelong.errors import DataError


def _data(classes: int = 30, per_class: int = 60) -> TrainTest:
    y = torch.arange(classes).repeat_interleave(per_class)
    # pixel 0 holds the sample's position so reuse can be detected
    x = torch.zeros(len(y), 1, 2, 2, dtype=torch.uint8)
    x[:, 0, 0, 0] = torch.arange(len(y)) % 256
    x[:, 0, 0, 1] = torch.arange(len(y)) // 256
    test_y = torch.arange(classes).repeat_interleave(5)
    test = ImageSet(torch.zeros(len(test_y), 1, 2, 2, dtype=torch.uint8), test_y)
    return TrainTest(ImageSet(x, y), test, tuple(str(c) for c in range(classes)))


def _ids(images: ImageSet) -> list[int]:
    return (images.x[:, 0, 0, 0].long() + 256 * images.x[:, 0, 0, 1].long()).tolist()


def test_phases_respect_sizes_and_never_reuse_a_sample() -> None:
    experiences, _ = gcil_experiences(
        _data(), "unif", phases=8, class_upper=5, samples_per_phase=100
    )
    assert len(experiences) == 8
    used: list[int] = []
    for exp in experiences:
        assert 1 <= len(exp.classes) <= 5
        assert 0 < len(exp.train) <= 100
        assert set(exp.train.y.tolist()) == set(exp.classes)
        used += _ids(exp.train)
    assert len(used) == len(set(used))


def test_tests_are_cumulative_and_labels_follow_first_appearance() -> None:
    experiences, data = gcil_experiences(
        _data(), "unif", phases=6, class_upper=4, samples_per_phase=50
    )
    seen: set[int] = set()
    first_seen: list[int] = []
    for exp in experiences:
        first_seen += [c for c in sorted(exp.classes) if c not in seen]
        seen.update(exp.classes)
        assert set(exp.test.y.tolist()) == seen
    assert first_seen == list(range(len(first_seen)))
    assert data.num_classes == 30


def test_phase_sequence_is_fixed_by_the_gcil_seed() -> None:
    data = _data(classes=40, per_class=30)
    first, _ = gcil_experiences(data, "longtail", phases=4, samples_per_phase=200)
    again, _ = gcil_experiences(data, "longtail", phases=4, samples_per_phase=200)
    other, _ = gcil_experiences(data, "longtail", phases=4, samples_per_phase=200, gil_seed=7)
    assert [_ids(e.train) for e in first] == [_ids(e.train) for e in again]
    assert [_ids(e.train) for e in first] != [_ids(e.train) for e in other]


def _two_class_counts(weights: str) -> tuple[int, int]:
    """Counts of classes 0 and 99 in phases that chose both (1000 samples each available)."""
    low = high = 0
    for seed in range(40):
        remaining = {0: list(range(1000)), 99: list(range(1000))}
        counts = _draw_phase(np.random.default_rng(seed), remaining, weights, 50, 1000)  # type: ignore[arg-type]
        if len(counts) == 2:
            low, high = low + counts[0], high + counts[99]
    return low, high


def test_longtail_weights_favour_low_class_ids() -> None:
    low, high = _two_class_counts("longtail")
    # weights 1 and 0.984**99 = 0.20: about 5 times as many draws of class 0
    assert 4 < low / high < 6.5
    low, high = _two_class_counts("unif")
    assert 0.8 < low / high < 1.25


def test_too_small_training_set_is_an_error_not_a_shorter_stream() -> None:
    # 300 images cannot fill 8 phases of 100 samples: the old loop built 3 phases without a word
    with pytest.raises(DataError) as err:
        gcil_experiences(_data(classes=30, per_class=10), "unif", phases=8, samples_per_phase=100)
    message = str(err.value)
    assert "\n" not in message
    for needle in ("8 phases of 100 samples", "800 training images", "hold 300 training"):
        assert needle in message, message
    assert "enough for 3 phases" in message and "dataset.gcil_samples_per_phase" in message


def test_exactly_enough_images_builds_every_phase() -> None:
    experiences, _ = gcil_experiences(
        _data(classes=30, per_class=10), "longtail", phases=3, samples_per_phase=100
    )
    assert len(experiences) == 3
    assert all(0 < len(exp.train) <= 100 for exp in experiences)


def test_many_classes_for_few_samples_still_ends_with_every_chosen_class():
    # 50 classes for 60 samples: a plain redraw until every class appears would practically
    # never end; the fallback gives each chosen class one sample
    rng = np.random.default_rng(0)
    remaining = {c: list(range(100)) for c in range(60)}
    for _ in range(20):
        counts = _draw_phase(rng, remaining, "unif", class_upper=50, samples=60)
        assert all(n >= 1 for n in counts.values())
        assert sum(counts.values()) == 60


def test_samples_fewer_than_class_upper_cap_the_classes_of_a_phase():
    rng = np.random.default_rng(1)
    remaining = {c: list(range(10)) for c in range(30)}
    for _ in range(50):
        assert len(_draw_phase(rng, remaining, "longtail", class_upper=50, samples=4)) <= 4
