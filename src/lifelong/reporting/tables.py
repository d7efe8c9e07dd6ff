"""A run's results as CSV tables: ``accuracy.csv``, ``summary.csv``, ``steps.csv`` and more.

Every file is plain CSV with one header line, read by ``pandas.read_csv(path)`` without options;
an empty cell is a value that was not measured; experiences and epochs count from 1, classes
from 0 (their labels). Long formats (one row per measurement) so tables
of many runs concatenate:

* ``accuracy.csv``: protocol, after_experience, tested_experience, accuracy (accuracy in %;
  only the measured entries of the accuracy matrices);
* ``summary.csv``: one row per protocol with every summary metric and the run's cost;
* ``steps.csv``: the step log of ``metrics.jsonl`` (step, experience, epoch, loss and its
  terms averaged over the record's steps, lr, the wall seconds of the record's steps);
* ``per_class_accuracy.csv``: after_experience, class, accuracy (argmax over all units);
* ``confusion/after_<k>.csv``: counts of true class (rows) × predicted class (columns).

For the continual-SSL method (``cssl``) the accuracies are those of its probe: the tables carry
``probe`` and ``probing_mode`` columns (``upto``: the probe after experience k is fitted on the
training images of experiences 1..k).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lifelong.checkpoint import atomic_write_text
from lifelong.reporting.results import COST_FIELDS, SUMMARY_FIELDS

TABLE_NAMES = ("accuracy.csv", "summary.csv", "steps.csv", "per_class_accuracy.csv")
"""The tables :func:`write_run_tables` writes into a run folder."""
ACCURACY_COLUMNS = ("after_experience", "tested_experience", "accuracy")
CONFUSION_DIR = "confusion"
PROBING_MODE = "upto"
"""How ``cssl``'s probe is fitted: on the training images of every experience seen so far."""


def csv_text(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    """CSV text with a header of ``columns`` and one line per row (missing or None: empty)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if value != value else repr(value)  # NaN: not measured
    return str(value)


def probe_columns(results: dict[str, Any]) -> dict[str, str]:
    """``{"probe": ..., "probing_mode": "upto"}`` for a ``cssl`` run, else nothing."""
    method = results.get("config", {}).get("method", {})
    if method.get("name") != "cssl":
        return {}
    return {"probe": str(method.get("probe", "ridge")), "probing_mode": PROBING_MODE}


def accuracy_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per measured entry of every accuracy matrix."""
    extra = probe_columns(results)
    rows = []
    for protocol, entry in results["protocols"].items():
        for i, row in enumerate(entry["matrix"][: results["experiences_trained"]]):
            for j, value in enumerate(row):
                if value is not None:
                    rows.append(
                        {
                            "protocol": protocol,
                            **extra,
                            "after_experience": i + 1,
                            "tested_experience": j + 1,
                            "accuracy": float(value),
                        }
                    )
    return rows


def summary_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per protocol: every summary metric, then the run's cost."""
    extra = probe_columns(results)
    cost = results.get("cost", {"train_seconds": float(sum(results["train_seconds"]))})
    return [
        {
            "protocol": protocol,
            **extra,
            "experiences_trained": results["experiences_trained"],
            **{name: entry["summary"].get(name) for name in SUMMARY_FIELDS},
            **{name: cost.get(name) for name in COST_FIELDS},
        }
        for protocol, entry in results["protocols"].items()
    ]


def step_records(metrics: Path) -> list[dict[str, Any]]:
    """The step records of ``metrics.jsonl``, experience and epoch 1-based as in every table.

    Empty when the file is missing; lines that are not JSON are skipped.
    """
    if not metrics.exists():
        return []
    records = []
    for line in metrics.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("kind") == "step":
            one_based = {k: record[k] + 1 for k in ("experience", "epoch") if k in record}
            records.append({**record, **one_based})
    return records


def steps_columns(records: Sequence[dict[str, Any]]) -> list[str]:
    """step, experience, epoch, loss, the loss terms (sorted), lr, seconds."""
    fixed = ["step", "experience", "epoch", "loss"]
    tail = ["lr", "seconds"]
    terms = sorted({key for r in records for key in r} - {"kind", *fixed, *tail})
    return [*fixed, *terms, *tail]


def per_class_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (experience, class) of the per-class accuracies (none in older results)."""
    per_class = results.get("per_class_accuracy")
    if not per_class:
        return []
    return [
        {"protocol": per_class["protocol"], "after_experience": i + 1, "class": c, "accuracy": v}
        for i, row in enumerate(per_class["after"])
        for c, v in enumerate(row)
    ]


def confusion_text(confusion: Sequence[Sequence[int]]) -> str:
    """CSV of a confusion matrix: ``true_class`` then one column per predicted class."""
    columns = ["true_class", *(str(j) for j in range(len(confusion)))]
    rows = [
        {"true_class": i, **{str(j): int(n) for j, n in enumerate(row)}}
        for i, row in enumerate(confusion)
    ]
    return csv_text(columns, rows)


def confusion_path(run_dir: Path, experience: int) -> Path:
    """``RUN_DIR/confusion/after_<k>.csv`` for 1-based experience ``k``."""
    return run_dir / CONFUSION_DIR / f"after_{experience}.csv"


def write_confusion(run_dir: Path, experience: int, confusion: Sequence[Sequence[int]]) -> Path:
    """Write the confusion counts after 1-based ``experience``; return the path."""
    path = confusion_path(run_dir, experience)
    path.parent.mkdir(exist_ok=True)
    atomic_write_text(path, confusion_text(confusion))
    return path


def write_run_tables(results: dict[str, Any], run_dir: Path) -> list[Path]:
    """Write the CSV tables of :data:`TABLE_NAMES` from ``results`` and ``metrics.jsonl``.

    ``per_class_accuracy.csv`` only when the results hold per-class accuracies.
    """
    steps = step_records(run_dir / "metrics.jsonl")
    tables = {
        "accuracy.csv": csv_text(
            ["protocol", *probe_columns(results), *ACCURACY_COLUMNS], accuracy_rows(results)
        ),
        "summary.csv": csv_text(
            [
                "protocol",
                *probe_columns(results),
                "experiences_trained",
                *SUMMARY_FIELDS,
                *COST_FIELDS,
            ],
            summary_rows(results),
        ),
        "steps.csv": csv_text(steps_columns(steps), steps),
    }
    per_class = per_class_rows(results)
    if per_class:
        columns = ["protocol", "after_experience", "class", "accuracy"]
        tables["per_class_accuracy.csv"] = csv_text(columns, per_class)
    paths = []
    for name, text in tables.items():
        atomic_write_text(run_dir / name, text)
        paths.append(run_dir / name)
    return paths
