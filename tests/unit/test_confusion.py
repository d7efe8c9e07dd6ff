"""Confusion matrices, per-class and top-5 accuracy on hand-made predictions."""

from __future__ import annotations

import math

import pytest
import torch

from lifelong.evaluation.confusion import (
    PredictionTally,
    confusion_matrix,
    per_class_accuracy,
    top_k_correct,
)
from lifelong.evaluation.metrics import forgetting_per_experience, stream_accuracy


def test_confusion_matrix_of_a_hand_made_three_class_set() -> None:
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2])
    predictions = torch.tensor([0, 1, 0, 1, 1, 2, 0, 2, 1])
    confusion = confusion_matrix(predictions, labels, 3)
    assert confusion.tolist() == [
        [2, 1, 0],  # class 0: two right, one taken for 1
        [0, 2, 0],  # class 1: both right
        [1, 1, 2],  # class 2: two right, one for 0, one for 1
    ]
    assert per_class_accuracy(confusion) == pytest.approx([200 / 3, 100.0, 50.0])


def test_a_class_never_tested_has_no_accuracy() -> None:
    confusion = confusion_matrix(torch.tensor([0, 0]), torch.tensor([0, 1]), 3)
    accuracy = per_class_accuracy(confusion)
    assert accuracy[:2] == [100.0, 0.0] and math.isnan(accuracy[2])


def test_top_k_counts_labels_among_the_k_best_logits() -> None:
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0], [3.0, 2.0, 1.0, 0.0]])
    assert (
        int(top_k_correct(logits, torch.tensor([1, 1]), k=2)) == 1
    )  # row 0: {3, 2}; row 1: {0, 1}
    assert int(top_k_correct(logits, torch.tensor([0, 3]), k=9)) == 2  # k capped at 4 classes


def test_tally_adds_batches_and_reports_top5_only_past_ten_classes() -> None:
    small = PredictionTally(3, torch.device("cpu"))
    labels, predictions = torch.tensor([0, 1, 2]), torch.tensor([0, 2, 2])
    small.add(torch.eye(3)[predictions], predictions, labels)
    small.add(torch.eye(3)[predictions], predictions, labels)
    assert small.confusion().tolist() == [[2, 0, 0], [0, 0, 2], [0, 0, 2]]
    assert math.isnan(small.top_k_accuracy())
    large = PredictionTally(12, torch.device("cpu"))
    logits = torch.arange(12.0).repeat(4, 1)  # top 5: classes 7..11
    large.add(logits, logits.argmax(1), torch.tensor([11, 7, 6, 0]))
    assert large.top_k_accuracy() == pytest.approx(50.0)


def test_per_experience_forgetting_and_sample_weighted_stream_accuracy() -> None:
    nan = float("nan")
    matrix = torch.tensor(
        [[90.0, nan, nan], [70.0, 80.0, nan], [60.0, 85.0, 50.0]], dtype=torch.float64
    ).numpy()
    values = forgetting_per_experience(matrix)
    assert values[:2] == pytest.approx([30.0, -5.0])  # max(90, 70) - 60; 80 - 85 (improved)
    assert math.isnan(values[2])
    sizes = torch.tensor([100, 100, 200]).numpy()
    assert stream_accuracy(matrix, sizes) == pytest.approx((60 + 85 + 2 * 50) / 4)
