"""Run results: accuracy matrices per protocol and their summary metrics, as ``results.json``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from lifelong.checkpoint import atomic_write_text
from lifelong.errors import RunDirError
from lifelong.evaluation.metrics import summarize


class RunProgress(Protocol):
    """A run's progress as the results file records it (``lifelong.running.train.FitState``)."""

    @property
    def next_experience(self) -> int: ...  # noqa: D102
    @property
    def rows(self) -> dict[str, list[list[float]]]: ...  # noqa: D102
    @property
    def initial(self) -> dict[str, list[float]]: ...  # noqa: D102
    @property
    def step(self) -> int: ...  # noqa: D102
    @property
    def seconds(self) -> list[float]: ...  # noqa: D102
    @property
    def validation(self) -> dict[str, list[float]]: ...  # noqa: D102


def results_dict(
    state: RunProgress, num_experiences: int, config: dict[str, Any]
) -> dict[str, Any]:
    """The JSON-ready results of a (possibly partial) run."""
    protocols = {}
    for protocol, rows in state.rows.items():
        matrix = np.full((num_experiences, num_experiences), np.nan)
        matrix[: len(rows)] = np.asarray(rows, dtype=float)
        initial = np.asarray(state.initial.get(protocol, [np.nan] * num_experiences), dtype=float)
        summary = dataclasses.asdict(summarize(matrix, initial))
        protocols[protocol] = {
            "matrix": _json_floats(matrix.tolist()),
            "initial": _json_floats(initial.tolist()),
            "summary": _json_floats(summary),
        }
    validation = {
        protocol: {"accuracies": values, "average_accuracy": float(np.mean(values))}
        for protocol, values in state.validation.items()
    }
    return {
        "completed": state.next_experience == num_experiences,
        "experiences_trained": state.next_experience,
        "num_experiences": num_experiences,
        "steps": state.step,
        "train_seconds": state.seconds,
        "protocols": protocols,
        **({"validation": validation} if validation else {}),
        "config": config,
    }


def _json_floats(value: Any) -> Any:
    """Replace NaN by None so the file is strict JSON."""
    if isinstance(value, float):
        return None if np.isnan(value) else value
    if isinstance(value, list):
        return [_json_floats(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_floats(v) for k, v in value.items()}
    return value


def write_results(path: Path, results: dict[str, Any]) -> None:
    """Write ``results.json`` atomically."""
    atomic_write_text(path, json.dumps(results, indent=2) + "\n")


def read_results(run_dir: Path) -> dict[str, Any]:
    """Read ``RUN_DIR/results.json``.

    Raises:
        RunDirError: if the file is missing or not valid JSON.
    """
    path = run_dir / "results.json"
    if not path.exists():
        raise RunDirError(f"no results.json in {run_dir}: is it a lifelong run directory?")
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise RunDirError(f"{path} is not valid JSON ({err})") from err
    return data


def matrix_of(results: dict[str, Any], protocol: str) -> np.ndarray:
    """The accuracy matrix of ``protocol`` with NaN for missing entries."""
    rows = results["protocols"][protocol]["matrix"]
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=float)
