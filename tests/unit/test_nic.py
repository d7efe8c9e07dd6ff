"""The generic NIC scenario (NICv2-like streams from any labelled dataset) on synthetic data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lifelong.data.catalog import build_stream
from lifelong.data.nic import nic_plan, nic_scenario, nic_stream, shared_test_experiences
from lifelong.data.scenarios import SCENARIOS, DatasetConfig
from lifelong.data.tensors import ImageSet, TrainTest
from lifelong.data.transforms import ImageTransform
from lifelong.errors import ConfigError
from lifelong.evaluation.evaluator import Evaluator

FMNIST_ROOT = Path(__file__).resolve().parents[3] / "shared" / "data" / "fashion-mnist"
GREY = ImageTransform(mean=(0.0,), std=(1.0,))


def _dataset(per_class: tuple[int, ...] = (100,) * 6, test_per_class: int = 4) -> TrainTest:
    """Images (1, 4, 4) whose pixels 0 and 1 encode the example's index, pixel 2 its label."""

    def part(counts: tuple[int, ...]) -> ImageSet:
        y = torch.cat([torch.full((n,), c, dtype=torch.int64) for c, n in enumerate(counts)])
        y = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))]
        x = torch.zeros((len(y), 1, 4, 4), dtype=torch.uint8)
        ids = torch.arange(len(y))
        x[:, 0, 0, 0], x[:, 0, 0, 1], x[:, 0, 0, 2] = ids // 256, ids % 256, y
        return ImageSet(x, y)

    names = tuple(f"c{i}" for i in range(len(per_class)))
    return TrainTest(part(per_class), part((test_per_class,) * len(per_class)), names)


def _ids(images: ImageSet) -> list[int]:
    return (images.x[:, 0, 0, 0].long() * 256 + images.x[:, 0, 0, 1].long()).tolist()


def test_every_training_example_appears_exactly_once() -> None:
    data = _dataset(per_class=(100, 37, 250, 9, 120, 64))
    stream = nic_stream("nic-test", data, GREY, first_classes=3, chunk=20, seed=1)
    ids = [i for experience in stream for i in _ids(experience.train)]
    assert sorted(ids) == list(range(len(data.train)))
    for experience in stream:  # labels travel with their images
        assert torch.equal(experience.train.y, experience.train.x[:, 0, 0, 2].long())


def test_first_experience_then_single_class_chunks() -> None:
    data = _dataset()  # 6 classes x 100 examples
    plan = nic_plan(data.train.y, first_classes=2, chunk=20, seed=0)
    # 2 classes give one chunk to experience 0 and keep 4; the other 4 classes give 5 chunks
    assert len(plan) == 1 + 2 * 4 + 4 * 5
    assert len(plan[0]) == 2 * 20
    assert len(torch.unique(data.train.y[plan[0]])) == 2
    for index in plan[1:]:
        assert len(index) == 20
        assert len(torch.unique(data.train.y[index])) == 1


def test_chunks_are_near_equal_when_a_class_does_not_divide() -> None:
    data = _dataset(per_class=(95, 47, 10))
    plan = nic_plan(data.train.y, first_classes=1, chunk=20, seed=2)
    sizes = sorted(len(index) for index in plan[1:])
    assert min(sizes) >= 10 and max(sizes) <= 30
    assert sum(len(index) for index in plan) == 152


def test_all_classes_appear_and_seen_classes_come_back() -> None:
    data = _dataset(per_class=(100,) * 10)
    stream = nic_stream("nic-test", data, GREY, first_classes=3, chunk=25, seed=5)
    assert len(stream[0].classes) == 3
    assert stream.seen_classes(len(stream) - 1) == tuple(range(10))
    seen: set[int] = set(stream[0].classes)
    new_later = revisits = 0
    for experience in list(stream)[1:]:
        (label,) = experience.classes
        revisits += label in seen
        new_later += label not in seen
        seen.add(label)
    assert new_later == 7  # every other class is introduced later, one at a time
    assert revisits == len(stream) - 1 - 7  # and the rest are new instances of seen classes


def test_first_classes_are_capped_by_the_classes_present(caplog: pytest.LogCaptureFixture) -> None:
    data = _dataset(per_class=(30, 30, 30))
    plan = nic_plan(data.train.y, first_classes=10, chunk=10, seed=0)
    assert len(torch.unique(data.train.y[plan[0]])) == 3
    assert "only 3 classes present" in caplog.text


def test_the_plan_is_deterministic_given_the_seed() -> None:
    labels = _dataset().train.y
    first = nic_plan(labels, 2, 20, seed=3)
    again = nic_plan(labels, 2, 20, seed=3)
    other = nic_plan(labels, 2, 20, seed=4)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert [a.tolist() for a in first] != [b.tolist() for b in other]


def test_non_positive_sizes_are_rejected() -> None:
    with pytest.raises(ConfigError, match="nic_chunk"):
        nic_plan(_dataset().train.y, 2, 0, seed=0)
    with pytest.raises(ConfigError, match=r"dataset\.nic_chunk must be positive"):
        DatasetConfig(nic_chunk=0)
    with pytest.raises(ConfigError, match=r"dataset\.run"):
        DatasetConfig(run=-1)


def test_every_experience_shares_the_one_test_set() -> None:
    data = _dataset()
    stream = nic_stream("nic-test", data, GREY, first_classes=2, chunk=50, seed=0)
    assert stream.setting == "gcil" and stream.protocols == ("class-il",)
    assert stream.num_classes == 6
    assert all(experience.test is data.test for experience in stream)
    experiences = shared_test_experiences([data.train.select(torch.arange(5))], data.test)
    assert experiences[0].classes == tuple(sorted(set(data.train.y[:5].tolist())))


class _LabelReader(torch.nn.Module):
    """Predicts the label stored in pixel 2 for labels below ``known``, else class 0."""

    def __init__(self, known: int, num_classes: int) -> None:
        super().__init__()
        self.known, self.num_classes = known, num_classes

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        label = (x[:, 0, 0, 2] * 255).round().long()  # GREY scales the pixels to [0, 1]
        label = torch.where(label < self.known, label, torch.zeros_like(label))
        return torch.nn.functional.one_hot(label, self.num_classes).float()


def test_evaluation_scores_all_classes_on_the_shared_test_set() -> None:
    data = _dataset(test_per_class=5)
    stream = nic_stream("nic-test", data, GREY, first_classes=2, chunk=50, seed=0)
    evaluator = Evaluator(stream, batch_size=7, device=torch.device("cpu"))
    row = evaluator.evaluate(_LabelReader(known=3, num_classes=6), upto=2)  # type: ignore[arg-type]
    assert list(row) == ["class-il"]
    # 3 of 6 classes right (class 0 included), the same value for every trained experience
    assert row["class-il"][:3] == [50.0, 50.0, 50.0]


def test_scenario_builder_takes_overrides_and_run_as_seed() -> None:
    data = _dataset()
    build = nic_scenario("nic-test", lambda cfg: data, GREY, first_classes=2, chunk=20)
    default = build(DatasetConfig(name="nic-test"), 0)
    assert len(default) == 1 + 2 * 4 + 4 * 5 and len(default[0].classes) == 2
    custom = build(DatasetConfig(name="nic-test", nic_first_classes=4, nic_chunk=50), 0)
    assert len(custom) == 1 + 4 * 1 + 2 * 2 and len(custom[0].classes) == 4
    same = build(DatasetConfig(name="nic-test"), 99)  # the training seed does not change it
    other_run = build(DatasetConfig(name="nic-test", run=1), 0)
    assert [_ids(e.train) for e in same] == [_ids(e.train) for e in default]
    assert [_ids(e.train) for e in other_run] != [_ids(e.train) for e in default]


def test_registered_nic_scenarios() -> None:
    assert {"nic-fmnist", "nic-tinyimg"} <= set(SCENARIOS.names())


@pytest.mark.skipif(not FMNIST_ROOT.is_dir(), reason="real Fashion-MNIST not in ../shared/data")
def test_nic_fmnist_on_the_real_data() -> None:
    stream = build_stream(DatasetConfig(name="nic-fmnist", root=str(FMNIST_ROOT)), 0)
    assert len(stream) == 99  # 2 classes x 600 first, then 2 x 9 + 8 x 10 chunks of 600
    assert len(stream[0].classes) == 2 and len(stream[0].train) == 1200
    assert sum(len(e.train) for e in stream) == 60_000
    assert all(len(e.classes) == 1 and len(e.train) == 600 for e in list(stream)[1:])
    assert len(stream[0].test) == 10_000
