"""Shared fixtures of the learning tests: train a method on a scenario once per session."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lifelong.cli import build_parser, config_from_args
from lifelong.running.run import execute


@pytest.fixture(scope="session")
def train_results(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., dict[str, Any]]:
    """``train(*flags)`` runs ``lifelong run FLAGS`` through the Python API (no TensorBoard,
    no progress bars) and returns its results; identical flags are trained once per session."""
    cache: dict[tuple[str, ...], dict[str, Any]] = {}

    def train(*flags: str) -> dict[str, Any]:
        if flags not in cache:
            argv = ["run", *flags, "--set", "train.progress=false"]
            cfg = config_from_args(build_parser().parse_args(argv))
            cache[flags] = execute(cfg, tmp_path_factory.mktemp("learning"), tensorboard=False)
        return cache[flags]

    return train
