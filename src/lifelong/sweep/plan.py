"""Sweep files: parse, validate and expand into trials (experiment × grid point × seed).

Every trial's config is resolved by :func:`lifelong.config.layered_config` (the function behind
``lifelong run`` and :class:`lifelong.Experiment`) before anything runs, so a bad file fails at
once with one line naming the file, the place in it and the problem; the trial then runs from
that resolved config. A ``run_from_config.py`` ``config.json`` is translated first
(:mod:`lifelong.sweep.cssl_json`).
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lifelong.config import SECTIONS, TOP_LEVEL, flatten, layered_config, set_key
from lifelong.config.yaml_files import load_json_file, load_yaml_file
from lifelong.errors import ConfigError, RunDirError, UserError
from lifelong.reporting.compare import IGNORED
from lifelong.sweep.cssl_json import cssl_json_sweep, is_cssl_json

SWEEP_KEYS = ("common", "experiments", "hyperparams_search", "seeds", "out")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
Raw = dict[str, Any]
Overrides = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Trial:
    """One run of a sweep: an experiment at one grid point with one seed."""

    experiment: str
    point: tuple[tuple[str, Any], ...]
    seed: int
    run_dir: Path
    config: Raw
    """The resolved config (``RunConfig.to_raw()``): the trial runs from it."""
    cwd: Path

    @property
    def point_label(self) -> str:
        """``key=value, ...`` of the grid point, ``–`` without a grid."""
        return ", ".join(f"{k}={_text(v)}" for k, v in self.point) or "–"

    @property
    def label(self) -> str:
        """Experiment, grid point and seed, for the log."""
        point = f" [{self.point_label}]" if self.point else ""
        return f"{self.experiment}{point} seed {self.seed}"


@dataclass(frozen=True)
class Sweep:
    """A validated sweep file: its trials in order and the output folder."""

    path: Path
    out: Path
    trials: tuple[Trial, ...]


def _text(value: Any) -> str:
    """``value`` as a one-line YAML scalar or flow collection (labels and folder names)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9).strip()
    return text.removesuffix("\n...").strip()


def _fail(path: Path, where: str, message: str) -> ConfigError:
    return ConfigError(f"sweep file {path}: {where}: {message}")


def _load(path: Path) -> Raw:
    read = load_json_file if path.suffix == ".json" else load_yaml_file
    data = read(path, "sweep file")  # bounded, one-line errors (lifelong.config.yaml_files)
    if not isinstance(data, dict):
        raise ConfigError(f"sweep file {path} must hold a mapping with `common`, `experiments`, …")
    if is_cssl_json(data):
        try:
            data = cssl_json_sweep(data)
        except ConfigError as err:
            raise ConfigError(f"sweep file {path} (run_from_config.py format): {err}") from err
    unknown = sorted(set(map(str, data)) - set(SWEEP_KEYS))
    if unknown:
        close = difflib.get_close_matches(unknown[0], SWEEP_KEYS, n=1, cutoff=0.6)
        hint = f": did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"sweep file {path}: unknown top-level key {unknown[0]!r}{hint} "
            f"(allowed: {', '.join(SWEEP_KEYS)})"
        )
    sweep: Raw = data
    return sweep


def _params(path: Path, where: str, params: Any) -> tuple[str | None, Raw]:
    """Validate a parameter mapping; return its preset (if any) and its raw config layer."""
    if params is None:
        return None, {}
    if not isinstance(params, dict):
        raise _fail(path, where, "must be a mapping of config keys")
    preset: str | None = None
    raw: Raw = {}
    for key, value in params.items():
        try:
            if key == "preset":
                preset = str(value)
            elif key == "hyperparams_search":
                raise ConfigError("a grid goes at the top level or inside an experiment")
            elif key == "seed":
                raise ConfigError("`seed` is set per trial from `seeds`: remove it here")
            elif key in SECTIONS:
                if not isinstance(value, dict):
                    raise ConfigError(f"section {key!r} must be a mapping")
                raw = _deep_merge(raw, {key: value})
            elif "." not in str(key) and key not in TOP_LEVEL:
                raise ConfigError(
                    f"key {key!r} needs its section: write SECTION.{key} with SECTION one of "
                    f"{', '.join(SECTIONS)} (`lifelong list` shows every field)"
                )
            else:
                raw = set_key(raw, str(key), value)
        except ConfigError as err:
            raise _fail(path, where, str(err)) from err
    return preset, raw


def _grid(path: Path, where: str, grid: Any) -> dict[str, list[Any]]:
    if grid is None:
        return {}
    if not isinstance(grid, dict) or not grid:
        raise _fail(path, where, "must be a non-empty mapping {dotted.key: [values, ...]}")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise _fail(path, where, f"{key} must be a non-empty list of values, got {values!r}")
        if key == "seed":
            raise _fail(path, where, "search seeds with the top-level `seeds` list instead")
        _params(path, f"{where}: {key}", {key: values[0]})
    return {str(k): v for k, v in grid.items()}


def _experiments(path: Path, entries: Any) -> list[tuple[str, Raw]]:
    if entries is None:
        return [("default", {})]
    if isinstance(entries, dict):
        pairs = [(str(name), body or {}) for name, body in entries.items()]
    elif isinstance(entries, list):
        pairs = []
        for index, body in enumerate(entries):
            if not isinstance(body, dict) or "name" not in body:
                raise _fail(path, f"experiments[{index}]", "must be a mapping with a `name`")
            pairs.append((str(body["name"]), {k: v for k, v in body.items() if k != "name"}))
    else:
        raise _fail(path, "experiments", "must be a mapping name: {overrides} or a list")
    names = [name for name, _ in pairs]
    for name, body in pairs:
        if not NAME.fullmatch(name):
            raise _fail(path, f"experiment {name!r}", "use letters, digits, '.', '_' or '-'")
        if names.count(name) > 1:
            raise _fail(path, f"experiment {name!r}", "the name is used twice")
        if not isinstance(body, dict):
            raise _fail(path, f"experiment {name!r}", "must be a mapping of overrides")
    if not pairs:
        raise _fail(path, "experiments", "is empty")
    return pairs


def _seeds(path: Path, where: str, seeds: Any) -> list[int]:
    ok = isinstance(seeds, list) and seeds and all(type(s) is int for s in seeds)
    if not ok or len(set(seeds)) != len(seeds):
        raise _fail(path, where, f"must be a non-empty list of distinct integers, got {seeds!r}")
    return list(seeds)


def _deep_merge(base: Raw, override: Raw) -> Raw:
    """Merge ``override`` into ``base`` key by key.

    Unlike :func:`lifelong.config.merge` (used between preset layers), a section whose ``name``
    changes keeps the other keys: ``common`` holds parameters of every run.
    """
    out = dict(base)
    for key, value in override.items():
        old = out.get(key)
        out[key] = (
            _deep_merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
        )
    return out


def _overrides(raw: Raw) -> Overrides:
    """``raw`` as the ``(section.key, value)`` override pairs of :func:`layered_config`."""
    pairs: list[tuple[str, Any]] = []
    for key, value in raw.items():
        pairs += (
            [(f"{key}.{k}", v) for k, v in value.items()] if key in SECTIONS else [(key, value)]
        )
    return tuple(pairs)


def _dir_name(point: tuple[tuple[str, Any], ...]) -> str:
    text = re.sub(r"[^A-Za-z0-9._=,+-]", "_", ",".join(f"{k}={_text(v)}" for k, v in point))
    if len(text) > 100:
        text = text[:80] + "-" + hashlib.sha1(text.encode()).hexdigest()[:10]
    return text


@contextmanager
def quiet_logger(name: str) -> Iterator[None]:
    """Silence INFO lines of logger ``name`` (e.g. one "using the paper preset" line per trial)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def load_sweep(path: Path, out: Path | None = None) -> Sweep:
    """Read and validate a sweep file; resolve every trial's config without running it.

    Args:
        path: The YAML sweep file, or a ``run_from_config.py`` ``config.json``.
        out: Output folder overriding the file's ``out``.

    Raises:
        ConfigError: naming the file, the place in it and the problem.
        RunDirError: if a finished run in the output folder has another configuration.
    """
    return plan_sweep(_load(path), path, out)


def plan_sweep(data: Raw, path: Path, out: Path | None = None) -> Sweep:
    """Validate a sweep's mapping and resolve every trial's config without running it.

    :func:`load_sweep` reads the mapping from a file; ``lifelong reproduce`` builds it from a
    ledger row.

    Args:
        data: The sweep (``common``, ``experiments``, ``hyperparams_search``, ``seeds``, ``out``).
        path: Where the sweep came from, named in error messages and the summary's title.
        out: Output folder overriding ``data["out"]``.

    Raises:
        ConfigError: naming ``path``, the place in the sweep and the problem.
        RunDirError: if a finished run in the output folder has another configuration.
    """
    seeds = _seeds(path, "seeds", data.get("seeds", [0]))
    common_preset, common = _params(path, "common", data.get("common"))
    grid = _grid(path, "hyperparams_search", data.get("hyperparams_search"))
    if out is None and not isinstance(data.get("out", ""), str):
        raise _fail(path, "out", "must be a folder path")
    out = (out or Path(data.get("out") or Path("runs") / "sweeps" / path.stem)).resolve()
    trials = []
    for name, body in _experiments(path, data.get("experiments")):
        where = f"experiment {name!r}"
        own = _grid(path, f"{where}: hyperparams_search", body.get("hyperparams_search"))
        own_seeds = _seeds(path, f"{where}: seeds", body["seeds"]) if "seeds" in body else seeds
        rest = {k: v for k, v in body.items() if k not in ("hyperparams_search", "seeds")}
        preset, overrides = _params(path, where, rest)
        points = {**grid, **own}
        for values in itertools.product(*points.values()):
            point = tuple(zip(points, values, strict=True))
            point_preset, layer = _params(path, where, dict(point))
            raw = _deep_merge(_deep_merge(common, overrides), layer)
            chosen_preset = point_preset or preset or common_preset
            folder = out / name / _dir_name(point) if point else out / name
            for seed in own_seeds:
                try:
                    with quiet_logger("lifelong"):
                        layered = layered_config(
                            {"seed": seed}, chosen_preset, None, _overrides(raw)
                        )
                except UserError as err:
                    at = f" at grid point {_text(dict(point))}" if point else ""
                    raise _fail(path, f"{where} (common + overrides){at}", str(err)) from err
                config = layered.config.to_raw()
                trials.append(Trial(name, point, seed, folder / f"seed{seed}", config, Path.cwd()))
    _check_unique(path, trials)
    for trial in trials:
        _check_finished(trial)
    return Sweep(path, out, tuple(trials))


def _check_unique(path: Path, trials: list[Trial]) -> None:
    seen: dict[Path, Trial] = {}
    for trial in trials:
        if trial.run_dir in seen:
            other = seen[trial.run_dir]
            raise _fail(
                path,
                "hyperparams_search",
                f"{trial.label} and {other.label} would share {trial.run_dir}: use distinct values",
            )
        seen[trial.run_dir] = trial


def completed_results(run_dir: Path) -> Raw | None:
    """The results of a finished run in ``run_dir``, or None.

    Finished means: ``results.json`` parses as a JSON object marked ``completed`` with the final
    average accuracy of every protocol (and of every ``validation`` entry) that the summary reads,
    and ``config.yaml`` parses as a mapping equal to the config recorded in the results. A folder
    missing either file, or holding one that does not parse (a run killed while writing, or two
    processes in one folder), is not finished.
    """
    try:
        results = load_json_file(run_dir / "results.json", "results file")
        config = load_yaml_file(run_dir / "config.yaml", "the run's config")
    except ConfigError:
        return None
    if not isinstance(results, dict) or not isinstance(config, dict):
        return None
    if not results.get("completed") or not _has_scores(results):
        return None
    if "config" in results and results["config"] != config:
        return None
    return results


def _has_scores(results: Raw) -> bool:
    """Whether the summary's scores are there: at least one protocol, all numbers.

    Every protocol needs ``summary.average_accuracy``, every validation entry
    ``average_accuracy``.
    """
    protocols, validation = results.get("protocols"), results.get("validation", {})
    if not isinstance(protocols, dict) or not protocols or not isinstance(validation, dict):
        return False
    entries = [e.get("summary") if isinstance(e, dict) else None for e in protocols.values()]
    entries += list(validation.values())
    return all(
        isinstance(e, dict)
        and isinstance(e.get("average_accuracy"), int | float)
        and not isinstance(e.get("average_accuracy"), bool)
        for e in entries
    )


def _check_finished(trial: Trial) -> None:
    """A finished run in a trial's folder must have the trial's configuration.

    As in :mod:`lifelong.reporting.compare`, only fields both configs record count: a run written
    before a field existed ran with that field's earlier behaviour.
    """
    results = completed_results(trial.run_dir)
    if results is None:
        return
    before, now = flatten(results.get("config", {})), flatten(trial.config)
    changed = sorted(k for k in (before.keys() & now.keys()) - IGNORED if before[k] != now[k])
    if changed:
        key = changed[0]
        raise RunDirError(
            f"{trial.run_dir} holds a finished run of another configuration ({key}: "
            f"{before[key]!r} there, {now[key]!r} now): delete it or choose another `out`"
        )
