"""Checkpoints on long streams are written proportionately, and resume stays exact.

A run checkpoints every ``train.checkpoint_every`` experiences (automatic: about 20 per stream),
at the first boundary ``train.checkpoint_minutes`` after the previous one, and always after the
last experience. A run that dies between checkpoints resumes from the last one and ends with
the results of an uninterrupted run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import lifelong.running.run
from lifelong.evaluation.evaluator import Evaluator
from lifelong.running.run import checkpoint_interval

ARGS = ("--no-progress", "--no-tensorboard", "--seed", "3", "--epochs", "2")


def matrices(run_dir: Path) -> dict[str, Any]:
    results = json.loads((run_dir / "results.json").read_text())
    return {p: (e["matrix"], e["initial"]) for p, e in results["protocols"].items()}


@pytest.mark.parametrize(
    ("every", "total", "expected"),
    [(0, 5, 1), (0, 20, 1), (0, 21, 2), (0, 391, 20), (3, 391, 3), (7, 5, 7)],
)
def test_checkpoint_interval(every, total, expected):
    assert checkpoint_interval(every, total) == expected


def record_saves(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Patch the run's checkpoint writer to also record each checkpoint's experience count."""
    saved: list[int] = []
    real = lifelong.running.run.save_checkpoint

    def spy(path: Path, payload: dict[str, Any]) -> None:
        saved.append(payload["state"]["next_experience"])
        real(path, payload)

    monkeypatch.setattr(lifelong.running.run, "save_checkpoint", spy)
    return saved


def test_checkpoints_every_n_experiences_and_always_the_last(cli, tmp_path, monkeypatch):
    saved = record_saves(monkeypatch)
    result = cli("run", *ARGS, "--set", "train.checkpoint_every=2", "--run-dir", tmp_path / "r")
    assert result.code == 0, result.err
    assert saved == [2, 4, 5]


def test_a_late_boundary_is_checkpointed_whatever_the_interval(cli, tmp_path, monkeypatch):
    saved = record_saves(monkeypatch)
    clock = iter(float(60 * 60 * k) for k in range(1000))  # an hour passes between calls
    monkeypatch.setattr(lifelong.running.run.time, "monotonic", lambda: next(clock))
    result = cli("run", *ARGS, "--set", "train.checkpoint_every=100", "--run-dir", tmp_path / "r")
    assert result.code == 0, result.err
    assert saved == [1, 2, 3, 4, 5]


def test_a_run_dying_between_checkpoints_resumes_to_identical_results(cli, tmp_path, monkeypatch):
    reference, crashed = tmp_path / "reference", tmp_path / "crashed"
    assert cli("run", *ARGS, "--run-dir", reference).code == 0
    evaluate = Evaluator.evaluate_counting  # every evaluation pass goes through it
    calls = {"n": 0}

    def dies_after_experience_three(self: Evaluator, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 4:  # the untrained row, then experiences 1, 2 and 3
            raise RuntimeError("simulated crash")
        return evaluate(self, *args, **kwargs)

    monkeypatch.setattr(Evaluator, "evaluate_counting", dies_after_experience_three)
    with pytest.raises(RuntimeError, match="simulated crash"):
        cli("run", *ARGS, "--set", "train.checkpoint_every=2", "--run-dir", crashed)
    partial = json.loads((crashed / "results.json").read_text())
    assert partial["experiences_trained"] == 2  # experience 3 was trained but not checkpointed
    monkeypatch.setattr(Evaluator, "evaluate_counting", evaluate)
    assert cli("run", "--resume", crashed, "--no-progress", "--no-tensorboard").code == 0
    assert matrices(crashed) == matrices(reference)
    steps = [
        json.loads(line)
        for line in (crashed / "metrics.jsonl").read_text().splitlines()
        if json.loads(line)["kind"] == "step"
    ]
    assert [s["step"] for s in steps] == sorted({s["step"] for s in steps})  # no repeats


@pytest.mark.parametrize(
    ("key", "value"), [("train.checkpoint_every", "-1"), ("train.checkpoint_minutes", "0")]
)
def test_bad_checkpoint_cadence_is_one_line(cli, tmp_path, key, value):
    result = cli("run", *ARGS, "--set", f"{key}={value}", "--run-dir", tmp_path / "r")
    assert result.code == 2
    assert key in result.err and len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
