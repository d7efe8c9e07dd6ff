"""Accuracy matrices as CSV files (mammoth's ``--csv_log``), read from a run's results.

One file per protocol, ``accuracy-<protocol>.csv``: a header ``trained,exp1,...,expT``, then one
row per trained experience ``t`` with the accuracy (%) on every experience after training on
``t`` (empty cells for experiences not yet seen, as ``null`` in ``results.json``).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from lifelong.checkpoint import atomic_write_text


def accuracy_csv_name(protocol: str) -> str:
    """The file name of ``protocol``'s accuracy matrix (``accuracy-class-il.csv``)."""
    return f"accuracy-{protocol}.csv"


def accuracy_csv_text(matrix: list[list[float | None]], trained: int) -> str:
    """The CSV text of the first ``trained`` rows of an accuracy matrix (``None``: empty cell)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["trained", *(f"exp{j + 1}" for j in range(len(matrix)))])
    for i, row in enumerate(matrix[:trained]):
        writer.writerow([f"exp{i + 1}", *("" if v is None else repr(float(v)) for v in row)])
    return out.getvalue()


def write_accuracy_csvs(results: dict[str, Any], run_dir: Path) -> list[Path]:
    """Write ``accuracy-<protocol>.csv`` for each protocol of ``results``; return the paths.

    Args:
        results: The content of the run's ``results.json``.
        run_dir: Where the files go.
    """
    paths = []
    for protocol, entry in results["protocols"].items():
        path = run_dir / accuracy_csv_name(protocol)
        atomic_write_text(path, accuracy_csv_text(entry["matrix"], results["experiences_trained"]))
        paths.append(path)
    return paths
