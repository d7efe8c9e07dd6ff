"""The ledger: one row per paper number the library claims to reproduce, validated on reading.

A ledger is a YAML file holding ``rows:``, a list of mappings. Each row names the paper and
table, the paper's value and std (``null`` where no number was published or none was available
to us), whether that value was ``verified`` (read from the paper's or the authors' own text, not
recalled), the preset and scenario that reproduce it, the seeds and protocol, the compute it
needs, and our measured value (``measured``: mean, std, n, date, machine, commit, source) or
``not_measured`` with the reason. Every mistake in a row is one :class:`ConfigError` naming the
file, the row and the field.
"""

from __future__ import annotations

import datetime
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifelong.config.presets import preset_names
from lifelong.config.yaml_files import load_yaml_file
from lifelong.errors import ConfigError, quoted

DEFAULT_LEDGER = Path(__file__).resolve().parent / "ledger.yaml"
"""The shipped ledger (``benchmarks/ledger.yaml`` in a clone, linked into the package)."""
PROTOCOLS = ("class-il", "task-il", "domain-il")
DEVICES = ("cpu", "gpu")
ROW_ID = re.compile(r"[a-z0-9][a-z0-9._-]*")
REQUIRED = (
    "id", "paper", "table", "value", "std", "verified", "source", "scenario", "preset",
    "protocol", "seeds", "compute",
)  # fmt: skip
OPTIONAL = ("measured", "not_measured", "overrides", "smoke")
MEASURED_KEYS = ("mean", "std", "n", "date", "machine", "commit", "source")
COMPUTE_KEYS = ("device", "minutes_per_seed", "note")
Overrides = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Measured:
    """One measurement of a row: mean ± sample std over ``n`` seeds, and where it was taken."""

    mean: float
    std: float
    n: int
    date: str
    machine: str
    commit: str
    source: str
    """Where the number is written down (a section of ``benchmarks/RESULTS.md``, or a run)."""


@dataclass(frozen=True)
class Row:
    """One claim: a paper's number, how to reproduce it and what we measured."""

    id: str
    paper: str
    table: str
    value: float | None
    std: float | None
    verified: bool
    source: str
    """Where the paper value comes from, or why there is none."""
    scenario: str
    preset: str
    protocol: str
    seeds: tuple[int, ...]
    device: str
    """``cpu`` or ``gpu``: where the full row is meant to run (``--gpu-rows`` runs the latter)."""
    minutes_per_seed: float | None
    compute_note: str
    measured: Measured | None
    not_measured: str
    overrides: Overrides = ()
    """Config fields (dotted keys) on top of the preset, for the full run and the smoke run."""
    smoke: Overrides = ()
    """Extra fields for ``--smoke`` only (e.g. fewer passes of a method's own inner loop)."""


class _Where:
    """Builds the one-line errors of one row."""

    def __init__(self, path: Path, label: str) -> None:
        self.path, self.label = path, label

    def error(self, field: str, message: str) -> ConfigError:
        return ConfigError(f"ledger {self.path}: {self.label}: {field}: {message}")


def _number(where: _Where, field: str, value: Any, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise where.error(field, f"must be a number, got {quoted(value)}")
    if value != value or value in (float("inf"), float("-inf")) or value < 0:
        raise where.error(field, f"must be a finite number ≥ 0, got {quoted(value)}")
    return float(value)


def _text(where: _Where, field: str, value: Any) -> str:
    if isinstance(value, datetime.date):
        return value.isoformat()
    if not isinstance(value, str) or not value.strip():
        raise where.error(field, f"must be a non-empty text, got {quoted(value)}")
    return value


def check_seeds(seeds: Any, what: str = "seeds") -> tuple[int, ...]:
    """``seeds`` as a tuple of distinct integers ≥ 0; a ConfigError naming ``what`` otherwise."""
    ok = isinstance(seeds, list | tuple) and seeds and all(type(s) is int for s in seeds)
    if not ok or len(set(seeds)) != len(seeds) or min(seeds) < 0 or max(seeds) >= 2**32:
        raise ConfigError(
            f"{what} must be a non-empty list of distinct integers in 0..2**32-1, "
            f"got {quoted(seeds)}"
        )
    return tuple(seeds)


def _overrides(where: _Where, field: str, value: Any) -> Overrides:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise where.error(field, f"must be a mapping of dotted config keys, got {quoted(value)}")
    for key in value:
        if not isinstance(key, str) or "." not in key:
            raise where.error(field, f"{quoted(key)} must be a dotted key such as method.lr")
        if key.split(".", 1)[0] == "dataset" and key.split(".", 1)[1] in ("name", "root"):
            raise where.error(field, f"{key} is set by the row's scenario and --data-root")
    return tuple(value.items())


def _measured(where: _Where, value: Any) -> Measured:
    if not isinstance(value, dict):
        raise where.error("measured", "must be a mapping (mean, std, n, date, machine, ...)")
    _keys(where, "measured", value, MEASURED_KEYS, MEASURED_KEYS)
    n = value["n"]
    if type(n) is not int or n < 1:
        raise where.error("measured.n", f"must be a whole number ≥ 1, got {quoted(n)}")
    mean = _number(where, "measured.mean", value["mean"])
    std = _number(where, "measured.std", value["std"])
    assert mean is not None and std is not None
    texts = [_text(where, f"measured.{k}", value[k]) for k in MEASURED_KEYS[3:]]
    return Measured(mean, std, n, *texts)


def _keys(
    where: _Where,
    field: str,
    value: Mapping[Any, Any],
    required: tuple[str, ...],
    allowed: tuple[str, ...],
) -> None:
    for key in value:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise where.error(field, f"unknown key {quoted(key)}{hint}")
    missing = [k for k in required if k not in value]
    if missing:
        raise where.error(field, f"missing {', '.join(missing)}")


def _compute(where: _Where, value: Any) -> tuple[str, float | None, str]:
    if not isinstance(value, dict):
        raise where.error("compute", "must be a mapping (device, minutes_per_seed, note)")
    _keys(where, "compute", value, ("device", "note"), COMPUTE_KEYS)
    if value["device"] not in DEVICES:
        raise where.error(
            "compute.device", f"must be one of {DEVICES}, got {quoted(value['device'])}"
        )
    minutes = _number(where, "compute.minutes_per_seed", value.get("minutes_per_seed"), True)
    return value["device"], minutes, _text(where, "compute.note", value["note"])


def parse_row(raw: Any, where: _Where, presets: set[str]) -> Row:
    """Validate one row of the ledger."""
    if not isinstance(raw, dict):
        raise where.error("row", f"must be a mapping, got {quoted(raw)}")
    _keys(where, "row", raw, REQUIRED, REQUIRED + OPTIONAL)
    if not isinstance(raw["id"], str) or not ROW_ID.fullmatch(raw["id"]):
        raise where.error("id", f"use lower-case letters, digits, '.', '_', '-'; got {raw['id']!r}")
    value = _number(where, "value", raw["value"], allow_none=True)
    std = _number(where, "std", raw["std"], allow_none=True)
    if (value is None) != (std is None):
        raise where.error("std", "give the value and its std, or null for both")
    if not isinstance(raw["verified"], bool) or (raw["verified"] and value is None):
        raise where.error("verified", "must be true or false (true needs a value)")
    if raw["preset"] not in presets:
        close = difflib.get_close_matches(str(raw["preset"]), sorted(presets), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise where.error("preset", f"no preset {quoted(raw['preset'])}{hint}")
    if str(raw["preset"]).split("/", 1)[0] != raw["scenario"]:
        raise where.error("scenario", f"{quoted(raw['scenario'])} is not the preset's scenario")
    if raw["protocol"] not in PROTOCOLS:
        raise where.error("protocol", f"must be one of {PROTOCOLS}, got {quoted(raw['protocol'])}")
    try:
        seeds = check_seeds(raw["seeds"])
    except ConfigError as err:
        raise where.error("seeds", str(err).removeprefix("seeds ")) from err
    if ("measured" in raw) == ("not_measured" in raw):
        raise where.error("measured", "give either `measured` or `not_measured: REASON`")
    measured = _measured(where, raw["measured"]) if "measured" in raw else None
    reason = _text(where, "not_measured", raw["not_measured"]) if measured is None else ""
    device, minutes, note = _compute(where, raw["compute"])
    texts = [_text(where, k, raw[k]) for k in ("paper", "table", "source")]
    return Row(
        raw["id"], texts[0], texts[1], value, std, raw["verified"], texts[2], raw["scenario"],
        raw["preset"], raw["protocol"], seeds, device, minutes, note, measured, reason,
        _overrides(where, "overrides", raw.get("overrides")),
        _overrides(where, "smoke", raw.get("smoke")),
    )  # fmt: skip


def load_ledger(path: Path = DEFAULT_LEDGER) -> tuple[Row, ...]:
    """Read and validate a ledger file.

    Raises:
        ConfigError: one line naming the file, the row (id or position) and the field.
    """
    data = load_yaml_file(path, "ledger")
    if not isinstance(data, dict) or set(data) != {"rows"} or not isinstance(data["rows"], list):
        raise ConfigError(f"ledger {path} must hold one key, `rows:`, with a list of rows")
    presets = set(preset_names())
    rows: list[Row] = []
    for index, raw in enumerate(data["rows"]):
        name = raw.get("id") if isinstance(raw, dict) else None
        label = f"row {name!r}" if isinstance(name, str) else f"row {index + 1}"
        row = parse_row(raw, _Where(path, label), presets)
        if any(r.id == row.id for r in rows):
            raise _Where(path, label).error("id", "is used by an earlier row")
        rows.append(row)
    if not rows:
        raise ConfigError(f"ledger {path} has no rows")
    return tuple(rows)


def find_row(rows: tuple[Row, ...], row_id: str, path: Path) -> Row:
    """The row called ``row_id``; a ConfigError with the closest ids otherwise."""
    for row in rows:
        if row.id == row_id:
            return row
    close = difflib.get_close_matches(row_id, [r.id for r in rows], n=3, cutoff=0.5)
    hint = f": did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ConfigError(
        f"no row {quoted(row_id)} in the ledger {path}{hint} (`lifelong reproduce --list`)"
    )
