"""The decision rule and the results file that ``lifelong reproduce`` writes back.

The results file (YAML) maps a row id to its last reproduction: mean ± sample std over seeds of
the row's protocol, the per-seed values, the date, machine, commit, device and wall time, and
the decision. It is rewritten atomically, one row at a time; the other rows are kept as they are.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from lifelong.checkpoint import atomic_write_text
from lifelong.config.yaml_files import load_yaml_file
from lifelong.errors import ConfigError, quoted
from lifelong.reproduce.ledger import Measured, Row

TOLERANCE = 3.0
"""Points: the floor of the acceptance rule (issue 15; ``benchmarks/der_table.verdict``)."""
HEADER = (
    "# Written by `lifelong reproduce ID` (one entry per ledger row, the last reproduction).\n"
    "# `lifelong reproduce --table` renders it with the ledger; do not edit by hand.\n"
)
FIELDS = (
    "mean", "std", "n", "values", "seeds", "date", "machine", "commit", "device", "wall_seconds",
    "decision",
)  # fmt: skip
OPTIONAL_FIELDS = ("precision", "peak_device_mib")
"""Fields later reproductions add (older entries lack them)."""


def decide(mean: float, row: Row) -> str:
    """The acceptance rule: |ours − paper| ≤ max(paper std, 3 points).

    Returns:
        ``pass`` or ``fail`` against a verified paper value; ``unverified (pass)`` or
        ``unverified (fail)`` against a recalled one; ``no paper value`` when there is none.
    """
    if row.value is None or row.std is None:
        return "no paper value"
    word = "pass" if abs(mean - row.value) <= max(row.std, TOLERANCE) else "fail"
    return word if row.verified else f"unverified ({word})"


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (n − 1; 0 for one value)."""
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


@dataclass(frozen=True)
class Result:
    """One reproduction of a row, as written to the results file."""

    mean: float
    std: float
    n: int
    values: tuple[float, ...]
    seeds: tuple[int, ...]
    date: str
    machine: str
    commit: str
    device: str
    wall_seconds: float
    decision: str
    precision: str = "fp32"
    peak_device_mib: float | None = None

    def measured(self, results_file: Path) -> Measured:
        """The result as a ledger measurement."""
        source = f"lifelong reproduce ({results_file.name})"
        return Measured(self.mean, self.std, self.n, self.date, self.machine, self.commit, source)


def _result(path: Path, row_id: str, raw: Any) -> Result:
    where = f"results file {path}: {row_id}"
    if not isinstance(raw, dict) or not set(FIELDS) <= set(raw) <= {*FIELDS, *OPTIONAL_FIELDS}:
        optional = ", ".join(OPTIONAL_FIELDS)
        raise ConfigError(f"{where}: must be a mapping of {', '.join(FIELDS)} (and {optional})")
    precision = raw.get("precision", "fp32")
    peak = raw.get("peak_device_mib")
    if precision not in ("fp32", "bf16") or not (
        peak is None or (isinstance(peak, int | float) and not isinstance(peak, bool))
    ):
        raise ConfigError(f"{where}: precision must be fp32 or bf16, peak_device_mib a number")
    numbers = [raw["mean"], raw["std"], raw["wall_seconds"], *_list(where, raw["values"])]
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in numbers):
        raise ConfigError(f"{where}: mean, std, wall_seconds and values must be numbers")
    if not all(math.isfinite(v) for v in numbers):
        raise ConfigError(f"{where}: mean, std, wall_seconds and values must be finite")
    seeds = _list(where, raw["seeds"])
    if any(type(s) is not int for s in seeds) or not raw["n"] == len(raw["values"]) == len(seeds):
        raise ConfigError(f"{where}: n, values and seeds must agree ({quoted(raw['n'])})")
    texts = {k: raw[k] for k in ("date", "machine", "commit", "device", "decision")}
    if not all(isinstance(t, str) for t in texts.values()):
        raise ConfigError(f"{where}: date, machine, commit, device and decision must be texts")
    return Result(
        mean=float(raw["mean"]),
        std=float(raw["std"]),
        n=int(raw["n"]),
        values=tuple(float(v) for v in raw["values"]),
        seeds=tuple(seeds),
        wall_seconds=float(raw["wall_seconds"]),
        precision=precision,
        peak_device_mib=None if peak is None else float(peak),
        **texts,
    )


def _list(where: str, value: Any) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: values and seeds must be non-empty lists")
    return value


def read_results(path: Path) -> dict[str, Result]:
    """The results file's entries by row id (an empty mapping when the file does not exist).

    Raises:
        ConfigError: one line naming the file and the entry that is malformed.
    """
    if not path.exists():
        return {}
    data = load_yaml_file(path, "results file")
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ConfigError(f"results file {path} must map row ids to results")
    return {row_id: _result(path, row_id, raw) for row_id, raw in data.items()}


def write_result(path: Path, row_id: str, result: Result) -> None:
    """Record ``result`` for ``row_id`` in the results file (atomically; other rows kept)."""
    entries = read_results(path)
    entries[row_id] = result
    data = {}
    for key in sorted(entries):
        fields = asdict(entries[key])
        fields["values"], fields["seeds"] = list(fields["values"]), list(fields["seeds"])
        if fields["precision"] == "fp32" and fields["peak_device_mib"] is None:
            del fields["precision"], fields["peak_device_mib"]  # a CPU entry as before
        data[key] = fields
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    atomic_write_text(path, HEADER + text)


def latest(row: Row, results: dict[str, Result], results_file: Path) -> Measured | None:
    """The row's newest measurement: the results file's entry, else the ledger's ``measured``."""
    entry = results.get(row.id)
    return entry.measured(results_file) if entry is not None else row.measured


def status(row: Row, measured: Measured | None) -> str:
    """``pass``/``fail``, ``unverified (…)``, ``no paper value`` or ``not measured``."""
    return "not measured" if measured is None else decide(measured.mean, row)
