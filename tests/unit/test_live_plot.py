"""Live curves: the logger feeds a sink; the visdom sink fails clearly and draws lines."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest
import torch

from lifelong.errors import ConfigError
from lifelong.reporting.live_plot import VisdomPlot
from lifelong.reporting.run_logger import RunLogger
from lifelong.types import StepOutput


class _Sink:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, dict[str, float]]] = []

    def scalars(self, group: str, step: int, values: dict[str, float]) -> None:
        self.calls.append((group, step, values))


def test_logger_sends_step_averages_and_accuracies_to_the_sink() -> None:
    sink = _Sink()
    logger = RunLogger(None, log_every=2, tensorboard=False, live=sink)
    for value in (1.0, 3.0):
        logger.step(StepOutput(torch.tensor(value), {"ce": torch.tensor(value / 2)}), 0, 0)
    logger.evaluation(0, {"class-il": [80.0, 10.0]}, 1.0)
    assert sink.calls == [("train", 2, {"loss": 2.0, "ce": 1.0}), ("eval", 1, {"class-il": 80.0})]


def test_visdom_missing_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "visdom", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"pip install .*visdom"):
        VisdomPlot("run")


def _fake_visdom(connected: bool, lines: list[dict[str, Any]]) -> types.ModuleType:
    class Visdom:
        def __init__(self, server: str, port: int, env: str) -> None:
            self.env = env

        def check_connection(self) -> bool:
            return connected

        def line(self, **kwargs: Any) -> None:
            lines.append(kwargs)

    module = types.ModuleType("visdom")
    module.Visdom = Visdom  # type: ignore[attr-defined]
    return module


def test_visdom_appends_after_the_first_point(monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[dict[str, Any]] = []
    monkeypatch.setitem(sys.modules, "visdom", _fake_visdom(False, lines))
    with pytest.raises(ConfigError, match=r"python -m visdom\.server"):
        VisdomPlot("run")
    monkeypatch.setitem(sys.modules, "visdom", _fake_visdom(True, lines))
    plot = VisdomPlot("run")
    plot.scalars("train", 10, {"loss": 1.5})
    plot.scalars("train", 20, {"loss": 1.0})
    assert [(c["X"], c["Y"], c["update"], c["win"]) for c in lines] == [
        ([10], [1.5], None, "train"),
        ([20], [1.0], "append", "train"),
    ]
