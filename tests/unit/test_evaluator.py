"""The evaluator: class-IL argmax over all units, task-IL masked to the experience's classes."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lifelong.data.stream import Experience, Stream
from lifelong.data.tensors import ImageSet
from lifelong.data.transforms import ImageTransform
from lifelong.evaluation.evaluator import Evaluator, task_mask

# Test example k is an image whose pixels all equal k; the fake method looks its logits up by k.
LOGITS = torch.tensor(
    [
        # experience 0: classes (0, 1), labels 0, 1, 1
        [1.0, 0.0, 0.0, 9.0],  # y=0: class-IL → 3 (wrong), task-IL → 0 (right)
        [0.0, 1.0, 0.0, 0.0],  # y=1: both → 1 (right)
        [2.0, 1.0, 0.0, 0.0],  # y=1: both → 0 (wrong)
        # experience 1: classes (2, 3), labels 2, 2, 3, 3
        [5.0, 0.0, 3.0, 1.0],  # y=2: class-IL → 0 (wrong), task-IL → 2 (right)
        [0.0, 0.0, 1.0, 2.0],  # y=2: both → 3 (wrong)
        [0.0, 0.0, 0.0, 1.0],  # y=3: both → 3 (right)
        [9.0, 0.0, 2.0, 1.0],  # y=3: class-IL → 0 (wrong), task-IL → 2 (wrong)
    ]
)


class FixedLogits(nn.Module):
    """A stand-in for a Method: predict() returns the logits of the example's id."""

    def __init__(self) -> None:
        super().__init__()
        self.modes_seen: list[bool] = []

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        self.modes_seen.append(self.training)
        ids = x[:, 0, 0, 0].round().long()  # std 1/255: the normalised value is the id
        return LOGITS[ids]


def _images(ids: list[int]) -> torch.Tensor:
    return torch.tensor(ids, dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).clone()


def _stream(setting: str = "class-il") -> Stream:
    def experience(
        t: int, classes: tuple[int, ...], ids: list[int], labels: list[int]
    ) -> Experience:
        test = ImageSet(_images(ids), torch.tensor(labels))
        train = ImageSet(_images(ids[:1]), torch.tensor(labels[:1]))
        return Experience(t, classes, train, test)

    experiences = (
        experience(0, (0, 1), [0, 1, 2], [0, 1, 1]),
        experience(1, (2, 3), [3, 4, 5, 6], [2, 2, 3, 3]),
    )
    # mean 0, std 1/255: normalised pixel value = raw uint8 value, i.e. the example id
    transform = ImageTransform(mean=(0.0,), std=(1.0 / 255.0,))
    return Stream("fake", experiences, 4, setting, transform, ("a", "b", "c", "d"))  # type: ignore[arg-type]


@pytest.mark.parametrize("batch_size", [1, 2, 1000])
def test_class_il_and_task_il_accuracy(batch_size: int) -> None:
    method = FixedLogits()
    rows = Evaluator(_stream(), batch_size, torch.device("cpu")).evaluate(method)  # type: ignore[arg-type]
    assert set(rows) == {"class-il", "task-il"}
    assert rows["class-il"] == pytest.approx([100.0 / 3.0, 25.0])
    assert rows["task-il"] == pytest.approx([200.0 / 3.0, 50.0])


class TaskAwareLogits(FixedLogits):
    """A predictor that knows the right class-pair once told the experience (XdG-like)."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[int] = []

    def task_logits(self, x: torch.Tensor, experience_id: int) -> torch.Tensor:
        self.asked.append(experience_id)
        ids = x[:, 0, 0, 0].round().long()
        labels = torch.tensor([0, 1, 1, 2, 2, 3, 3])[ids]
        return torch.nn.functional.one_hot(labels, 4).float()


def test_task_il_uses_a_task_conditioned_methods_own_logits() -> None:
    method = TaskAwareLogits()
    rows = Evaluator(_stream(), 2, torch.device("cpu")).evaluate(method)  # type: ignore[arg-type]
    assert rows["task-il"] == pytest.approx([100.0, 100.0])
    assert rows["class-il"] == pytest.approx([100.0 / 3.0, 25.0])  # still predict()'s logits
    assert sorted(set(method.asked)) == [0, 1]


def test_domain_il_uses_argmax_over_all_units() -> None:
    method = FixedLogits()
    rows = Evaluator(_stream("domain-il"), 2, torch.device("cpu")).evaluate(method)  # type: ignore[arg-type]
    assert set(rows) == {"domain-il"}
    assert rows["domain-il"] == pytest.approx([100.0 / 3.0, 25.0])


def test_evaluate_upto_gives_nan_beyond() -> None:
    method = FixedLogits()
    rows = Evaluator(_stream(), 4, torch.device("cpu")).evaluate(method, upto=0)  # type: ignore[arg-type]
    for protocol in ("class-il", "task-il"):
        assert len(rows[protocol]) == 2
        assert math.isnan(rows[protocol][1])
    assert rows["class-il"][0] == pytest.approx(100.0 / 3.0)
    assert rows["task-il"][0] == pytest.approx(200.0 / 3.0)


@pytest.mark.parametrize("training", [True, False])
def test_eval_mode_during_evaluation_and_mode_restored(training: bool) -> None:
    method = FixedLogits()
    method.train(training)
    Evaluator(_stream(), 2, torch.device("cpu")).evaluate(method)  # type: ignore[arg-type]
    assert method.modes_seen and not any(method.modes_seen)  # predict always ran in eval mode
    assert method.training is training


def test_task_mask() -> None:
    mask = task_mask(5, (1, 3), torch.device("cpu"))
    assert mask[1] == 0 and mask[3] == 0
    assert torch.isinf(mask[[0, 2, 4]]).all()
    assert (mask[[0, 2, 4]] < 0).all()


def test_counting_pass_gives_the_confusion_of_the_seen_test_sets() -> None:
    method = FixedLogits()
    evaluation = Evaluator(_stream(), 2, torch.device("cpu")).evaluate_counting(
        method,  # type: ignore[arg-type]
        upto=None,
        seen=0,
    )
    # experience 0 only: y=0 → 3, y=1 → 1, y=1 → 0 (argmax over all units)
    assert evaluation.confusion.tolist() == [[0, 0, 0, 1], [1, 1, 0, 0], [0] * 4, [0] * 4]
    assert evaluation.test_sizes == [3, 4]
    assert math.isnan(evaluation.top5)  # four classes
    assert evaluation.rows == Evaluator(_stream(), 2, torch.device("cpu")).evaluate(method)  # type: ignore[arg-type]
