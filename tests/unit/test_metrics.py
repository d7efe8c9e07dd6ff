"""Continual-learning metrics on hand-computed accuracy matrices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lifelong.evaluation.metrics import (
    Summary,
    average_accuracy,
    average_incremental_accuracy,
    backward_transfer,
    forgetting,
    forward_transfer,
    summarize,
)

NAN = float("nan")

# R[i, j]: accuracy on experience j after training experience i. The entries are chosen so that
# every metric has a distinct value and the common mistakes give different numbers:
# - R[1, 0] > R[0, 0], so forgetting must take the max over rows j..t-1, not just R[j, j];
# - R[0, 1] (before experience 1 was trained) is the largest value of column 1, so forgetting
#   must ignore rows i < j (nothing had been learnt there yet, so nothing can be forgotten).
R = np.array(
    [
        [60.0, 95.0, 5.0],
        [90.0, 80.0, 20.0],
        [50.0, 70.0, 85.0],
    ]
)
INITIAL = np.array([10.0, 8.0, 12.0])


def test_average_accuracy_is_mean_of_last_row() -> None:
    # (50 + 70 + 85) / 3
    assert average_accuracy(R) == pytest.approx(205.0 / 3.0)


def test_average_incremental_accuracy_averages_the_seen_part_of_each_row() -> None:
    # row 0: 60; row 1: (90 + 80) / 2 = 85; row 2: 205 / 3
    expected = (60.0 + 85.0 + 205.0 / 3.0) / 3.0
    assert average_incremental_accuracy(R) == pytest.approx(expected)


def test_forgetting_is_max_over_rows_since_training_minus_last() -> None:
    # j = 0: max(R[0,0], R[1,0]) - R[2,0] = 90 - 50 = 40
    # j = 1: max(R[1,1]) - R[2,1] = 80 - 70 = 10   (R[0,1] = 95 precedes training on 1)
    assert forgetting(R) == pytest.approx(25.0)


def test_backward_transfer_compares_last_row_with_diagonal() -> None:
    # ((50 - 60) + (70 - 80)) / 2
    assert backward_transfer(R) == pytest.approx(-10.0)


def test_forward_transfer_uses_the_row_before_training_and_initial() -> None:
    # ((R[0,1] - 8) + (R[1,2] - 12)) / 2 = (87 + 8) / 2
    assert forward_transfer(R, INITIAL) == pytest.approx(47.5)


def test_summarize_collects_every_metric() -> None:
    summary = summarize(R, INITIAL)
    assert isinstance(summary, Summary)
    assert summary.average_accuracy == pytest.approx(205.0 / 3.0)
    assert summary.average_incremental_accuracy == pytest.approx((60.0 + 85.0 + 205.0 / 3.0) / 3)
    assert summary.forgetting == pytest.approx(25.0)
    assert summary.backward_transfer == pytest.approx(-10.0)
    assert summary.forward_transfer == pytest.approx(47.5)


def test_partial_matrix_uses_the_last_trained_row() -> None:
    partial = R.copy()
    partial[2] = NAN
    assert average_accuracy(partial) == pytest.approx(85.0)  # (90 + 80) / 2
    assert average_incremental_accuracy(partial) == pytest.approx(72.5)  # (60 + 85) / 2
    assert forgetting(partial) == pytest.approx(60.0 - 90.0)  # improvement = negative forgetting
    assert backward_transfer(partial) == pytest.approx(30.0)
    assert forward_transfer(partial, INITIAL) == pytest.approx(95.0 - 8.0)


def test_lower_triangular_matrix_without_future_evaluation() -> None:
    lower = np.array([[60.0, NAN, NAN], [90.0, 80.0, NAN], [50.0, 70.0, 85.0]])
    assert average_accuracy(lower) == pytest.approx(205.0 / 3.0)
    assert forgetting(lower) == pytest.approx(25.0)
    assert backward_transfer(lower) == pytest.approx(-10.0)
    # the entries above the diagonal were never evaluated: no forward transfer to report
    assert math.isnan(forward_transfer(lower, np.full(3, NAN)))


def test_single_trained_experience_has_no_forgetting_or_transfer() -> None:
    single = np.full((3, 3), NAN)
    single[0] = [70.0, 20.0, 30.0]
    assert average_accuracy(single) == pytest.approx(70.0)
    assert average_incremental_accuracy(single) == pytest.approx(70.0)
    assert math.isnan(forgetting(single))
    assert math.isnan(backward_transfer(single))
    assert math.isnan(forward_transfer(single, INITIAL))


def test_matrix_without_trained_row_is_rejected() -> None:
    with pytest.raises(ValueError, match="no trained row"):
        average_accuracy(np.full((3, 3), NAN))


def test_metrics_do_not_modify_the_matrix() -> None:
    matrix = R.copy()
    summarize(matrix, INITIAL.copy())
    np.testing.assert_array_equal(matrix, R)
