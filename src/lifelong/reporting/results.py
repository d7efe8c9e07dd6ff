"""Run results: accuracy matrices per protocol and their summary metrics, as ``results.json``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from lifelong.checkpoint import atomic_write_text
from lifelong.errors import RunDirError, UserError, quoted
from lifelong.evaluation.metrics import Summary, forgetting_per_experience, summarize

TOP5 = "top5_accuracy"
SUMMARY_FIELDS = (*(field.name for field in dataclasses.fields(Summary)), TOP5)
"""The summary metrics of each protocol (``top5_accuracy``: null with ten classes or fewer, and
under task-IL)."""
REQUIRED_SUMMARY_FIELDS = SUMMARY_FIELDS[:5]
"""The summary metrics every results file holds (older files lack the others)."""
COST_FIELDS = (
    "train_seconds",
    "eval_seconds",
    "train_images",
    "images_per_second",
    "peak_rss_mib",
    "peak_device_mib",
)
"""The run's cost in ``results.json``'s ``cost`` (totals; the peaks are maxima)."""


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
    @property
    def eval_seconds(self) -> list[float]: ...  # noqa: D102
    @property
    def images(self) -> list[int]: ...  # noqa: D102
    @property
    def peak_rss_mib(self) -> list[float]: ...  # noqa: D102
    @property
    def peak_device_mib(self) -> list[float]: ...  # noqa: D102
    @property
    def per_class(self) -> list[list[float]]: ...  # noqa: D102
    @property
    def top5(self) -> list[float]: ...  # noqa: D102
    @property
    def test_sizes(self) -> list[int]: ...  # noqa: D102
    @property
    def probing(self) -> list[dict[str, Any]]: ...  # noqa: D102


def results_dict(
    state: RunProgress, num_experiences: int, config: dict[str, Any]
) -> dict[str, Any]:
    """The JSON-ready results of a (possibly partial) run."""
    sizes = np.asarray(state.test_sizes, dtype=float) if state.test_sizes else None
    top5 = state.top5[-1] if state.top5 else float("nan")
    protocols = {}
    for protocol, rows in state.rows.items():
        matrix = np.full((num_experiences, num_experiences), np.nan)
        matrix[: len(rows)] = np.asarray(rows, dtype=float)
        initial = np.asarray(state.initial.get(protocol, [np.nan] * num_experiences), dtype=float)
        summary = dataclasses.asdict(summarize(matrix, initial, sizes))
        summary[TOP5] = float("nan") if protocol == "task-il" else top5
        protocols[protocol] = {
            "matrix": _json_floats(matrix.tolist()),
            "initial": _json_floats(initial.tolist()),
            "summary": _json_floats(summary),
            "forgetting_per_experience": _json_floats(forgetting_per_experience(matrix)),
        }
    validation = {
        protocol: {"accuracies": values, "average_accuracy": float(np.mean(values))}
        for protocol, values in state.validation.items()
    }
    counted = next((p for p in state.rows if p != "task-il"), None)
    return {
        "completed": state.next_experience == num_experiences,
        "experiences_trained": state.next_experience,
        "num_experiences": num_experiences,
        "steps": state.step,
        "train_seconds": state.seconds,
        "eval_seconds": state.eval_seconds,
        "train_images": state.images,
        "cost": _json_floats(cost_summary(state)),
        "test_sizes": state.test_sizes,
        "protocols": protocols,
        **({"validation": validation} if validation else {}),
        **(
            {"per_class_accuracy": {"protocol": counted, "after": _json_floats(state.per_class)}}
            if counted and state.per_class
            else {}
        ),
        **({"probing": probing_results(state.probing)} if state.probing else {}),
        "config": config,
    }


def probing_results(after: list[dict[str, Any]]) -> dict[str, Any]:
    """``results.json``'s ``probing``: ``train.probes``' accuracies after every experience.

    ``after[t]`` is ``{mode: {probe: value}}`` after experience ``t`` (``separate``: per
    experience and their mean; ``joint``: a number). The summary per probe, as the continual-SSL
    reference reports them: ``joint_final`` (its final accuracy), ``stream_accuracy`` (the mean
    of the joint accuracies after each experience), ``separate_final`` (the mean per-experience
    accuracy at the end) and ``separate_forgetting`` (mean over experiences k before the last
    trained one of the separate accuracy on k right after k minus at the end; NaN with one).
    """
    summary: dict[str, dict[str, float]] = {}
    for probe, joint in _by_probe(after, "joint").items():
        summary.setdefault(probe, {}).update(
            joint_final=joint[-1], stream_accuracy=float(np.mean(joint))
        )
    for probe, rows in _by_probe(after, "separate").items():
        table = [row["experiences"] for row in rows]
        drops = [table[k][k] - table[-1][k] for k in range(len(table) - 1)]
        summary.setdefault(probe, {}).update(
            separate_final=rows[-1]["mean"],
            separate_forgetting=float(np.mean(drops)) if drops else float("nan"),
        )
    return {"after": _json_floats(after), "summary": _json_floats(summary)}


def _by_probe(after: list[dict[str, Any]], mode: str) -> dict[str, list[Any]]:
    """Each probe's values of ``mode`` over the experiences, in order."""
    probes = after[0].get(mode, {}) if after else {}
    return {probe: [entry[mode][probe] for entry in after] for probe in probes}


def cost_summary(state: RunProgress) -> dict[str, float | None]:
    """Totals of the run's cost (see :data:`COST_FIELDS`); NaN for what was not measured."""
    train = float(sum(state.seconds))
    images = int(sum(state.images))
    return {
        "train_seconds": train,
        "eval_seconds": float(sum(state.eval_seconds)) if state.eval_seconds else float("nan"),
        "train_images": images,
        "images_per_second": images / train if images and train > 0 else float("nan"),
        "peak_rss_mib": max(state.peak_rss_mib, default=float("nan")),
        "peak_device_mib": max(state.peak_device_mib) if state.peak_device_mib else None,
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
    """Read and check ``RUN_DIR/results.json`` (bounded and one-line, as every user file).

    Raises:
        RunDirError: if the file is missing, not UTF-8 JSON or not shaped as :func:`results_dict`
            writes it (see :func:`results_problem`).
    """
    from lifelong.config.yaml_files import load_json_file

    path = run_dir / "results.json"
    if not path.exists():
        raise RunDirError(f"no results.json in {run_dir}: is it a lifelong run directory?")
    try:
        data = load_json_file(path, "results file")
    except UserError as err:
        raise RunDirError(str(err)) from err
    problem = results_problem(data)
    if problem:
        raise RunDirError(
            f"{path} is not a lifelong results.json: {problem} (was it written by `lifelong run`?)"
        )
    checked: dict[str, Any] = data
    return checked


def _is_number(value: Any, optional: bool = False) -> bool:
    """Whether ``value`` is an int or float (or None, where a value may be missing)."""
    return (value is None and optional) or (
        isinstance(value, int | float) and not isinstance(value, bool)
    )


def results_problem(data: Any) -> str | None:
    """What in ``data`` the report, the plots and ``compare`` could not read; None if nothing.

    The results need the counts of the title, one accuracy matrix (square, numbers or null) and
    summary per protocol, and the run's config with its method, dataset and backbone names.
    """
    if not isinstance(data, dict):
        return f"it holds a {type(data).__name__}, not an object"
    for key in ("experiences_trained", "num_experiences"):
        if not isinstance(data.get(key), int) or isinstance(data.get(key), bool):
            return f"{key!r} must be a whole number"
    seconds = data.get("train_seconds")
    if not isinstance(seconds, list) or not all(_is_number(v) for v in seconds):
        return "'train_seconds' must be a list of numbers"
    protocols = data.get("protocols")
    if not isinstance(protocols, dict) or not protocols:
        return "'protocols' must map each protocol to its matrix and summary"
    for protocol, entry in protocols.items():
        matrix = entry.get("matrix") if isinstance(entry, dict) else None
        if not isinstance(matrix, list):
            matrix = []
        size = len(matrix)
        if not size or not all(
            isinstance(row, list) and len(row) == size and all(_is_number(v, True) for v in row)
            for row in matrix
        ):
            return f"protocol {quoted(protocol)} needs a square 'matrix' of numbers or null"
        summary = entry.get("summary")
        if (
            not isinstance(summary, dict)
            or not all(name in summary for name in REQUIRED_SUMMARY_FIELDS)
            or not all(_is_number(summary.get(name), True) for name in SUMMARY_FIELDS)
        ):
            return f"protocol {quoted(protocol)} needs a 'summary' of {', '.join(SUMMARY_FIELDS)}"
    problem = _added_fields_problem(data)
    if problem:
        return problem
    config = data.get("config")
    if not isinstance(config, dict):
        return "'config' must hold the run's configuration"
    for section in ("method", "dataset", "backbone"):
        values = config.get(section)
        if not isinstance(values, dict) or not isinstance(values.get("name"), str):
            return f"'config' must name the run's {section} ({section}.name)"
    return None


def _added_fields_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with the fields newer runs add (cost, evaluation time, per-class accuracy).

    Older files lack them and stay valid; a file that has them must hold what the report reads.
    """
    for key in ("eval_seconds", "train_images", "test_sizes"):
        values = data.get(key, [])
        if not isinstance(values, list) or not all(_is_number(v) for v in values):
            return f"{key!r} must be a list of numbers"
    cost = data.get("cost", {})
    if not isinstance(cost, dict) or not all(_is_number(cost.get(k), True) for k in COST_FIELDS):
        return f"'cost' must map {', '.join(COST_FIELDS)} to numbers or null"
    per_class = data.get("per_class_accuracy", {"protocol": "", "after": []})
    rows = per_class.get("after") if isinstance(per_class, dict) else None
    if (
        not isinstance(per_class, dict)
        or not isinstance(per_class.get("protocol"), str)
        or not isinstance(rows, list)
        or not all(isinstance(r, list) and all(_is_number(v, True) for v in r) for r in rows)
    ):
        return "'per_class_accuracy' must hold a protocol and rows of numbers or null"
    return None


def matrix_of(results: dict[str, Any], protocol: str) -> np.ndarray:
    """The accuracy matrix of ``protocol`` with NaN for missing entries."""
    rows = results["protocols"][protocol]["matrix"]
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=float)
