"""``results.json``'s ``probing`` summary (the continual-SSL reference's reported metrics)."""

from __future__ import annotations

import math

import pytest

from lifelong.reporting.results import probing_results


def test_summary_of_two_experiences_matches_the_hand_computed_values() -> None:
    after = [
        {
            "separate": {"ridge": {"experiences": [90.0, 10.0], "mean": 50.0}},
            "joint": {"ridge": 40.0},
        },
        {
            "separate": {"ridge": {"experiences": [70.0, 80.0], "mean": 75.0}},
            "joint": {"ridge": 60.0},
        },
    ]
    summary = probing_results(after)["summary"]["ridge"]
    assert summary["joint_final"] == 60.0
    assert summary["stream_accuracy"] == pytest.approx(50.0)  # (40 + 60) / 2
    assert summary["separate_final"] == 75.0
    assert summary["separate_forgetting"] == pytest.approx(20.0)  # 90 right after, 70 at the end


def test_one_experience_has_no_forgetting_and_modes_may_be_missing() -> None:
    after = [{"separate": {"knn": {"experiences": [55.0, float("nan")], "mean": 55.0}}}]
    result = probing_results(after)
    assert result["summary"]["knn"]["separate_forgetting"] is None  # NaN is null in the file
    assert result["after"][0]["separate"]["knn"]["experiences"][1] is None
    assert "joint_final" not in result["summary"]["knn"]
    assert math.isfinite(result["summary"]["knn"]["separate_final"])
