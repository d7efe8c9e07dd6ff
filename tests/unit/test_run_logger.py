"""The step log: every record in metrics.jsonl at once, TensorBoard's scalars in bursts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lifelong.reporting import run_logger
from lifelong.reporting.run_logger import RunLogger
from lifelong.types import StepOutput


def tensorboard_steps(folder: Path, tag: str) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder))
    accumulator.Reload()
    return [event.step for event in accumulator.Scalars(tag)]


def test_scalars_reach_tensorboard_in_bursts_and_all_by_the_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_logger, "TENSORBOARD_SECONDS", 3600.0)  # no hand-over by time
    logger = RunLogger(tmp_path, log_every=2)
    for _ in range(6):
        logger.step(StepOutput(torch.tensor(1.0), {"ce": torch.tensor(0.5)}), 0, 0)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6]  # the JSON lines are written at once
    assert logger._writer is None  # TensorBoard has not been handed anything yet
    logger.evaluation(0, {"class-il": [50.0]}, 1.0)  # an evaluation hands everything over
    for _ in range(2):
        logger.step(StepOutput(torch.tensor(1.0)), 1, 0)
    logger.close()  # and so does the close
    assert tensorboard_steps(tmp_path / "tensorboard", "train/loss") == [2, 4, 6, 8]
    assert tensorboard_steps(tmp_path / "tensorboard", "train/ce") == [2, 4, 6]
    assert tensorboard_steps(tmp_path / "tensorboard", "eval/class-il/average_accuracy") == [1]


def test_without_tensorboard_nothing_waits(tmp_path: Path) -> None:
    logger = RunLogger(tmp_path, log_every=1, tensorboard=False)
    logger.step(StepOutput(torch.tensor(1.0)), 0, 0)
    logger.close()
    assert logger._scalars == [] and not (tmp_path / "tensorboard").exists()
