"""A ``run_from_config.py`` ``config.json`` of the continual-SSL library, as a sweep.

The JSON holds ``common_params`` (``main.py`` options of every experiment), ``experiments`` (a
list of option mappings, each optionally with ``name``, ``hyperparams_search`` and
``multiple_runs: {"seeds": [...]}``) and, here also at the top level, ``hyperparams_search``.
Each experiment's options overlay the common ones key by key, as in the reference, and go
through the table of ``lifelong cssl`` (:func:`lifelong.sweep.cssl_options.translate`); the grid
values are translated one by one. The result is the mapping of a YAML sweep file, which
:func:`lifelong.sweep.plan.load_sweep` then resolves like any other.
"""

from __future__ import annotations

import logging
from typing import Any

from lifelong.config import REQUEST_KEYS
from lifelong.errors import ConfigError
from lifelong.sweep.cssl_options import REFERENCE_DEFAULTS, translate, translate_value

log = logging.getLogger(__name__)
Raw = dict[str, Any]
JSON_KEYS = ("common_params", "experiments", "hyperparams_search")
RUNNER_KEYS = ("max_process", "config_path")
"""Options of ``run_from_config.py`` itself: ``lifelong sweep --jobs`` decides instead."""


def is_cssl_json(data: Any) -> bool:
    """Whether a loaded sweep file is a ``run_from_config.py`` config (it has ``common_params``)."""
    return isinstance(data, dict) and "common_params" in data


def _options(where: str, params: Any) -> Raw:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ConfigError(f"{where}: must be a mapping of main.py options")
    return {str(k).replace("-", "_"): v for k, v in params.items()}


def _grid(where: str, grid: Any) -> Raw:
    """A grid of ``main.py`` options as a grid of lifelong config fields."""
    if grid is None:
        return {}
    if not isinstance(grid, dict) or not grid:
        raise ConfigError(f"{where}: hyperparams_search must be a non-empty mapping")
    fields: Raw = {}
    for name, values in _options(where, grid).items():
        if name in ("seed", "num_exps"):
            raise ConfigError(f"{where}: cannot search over {name} (use multiple_runs for seeds)")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: {name} must be a non-empty list of values")
        translated = [translate_value(name, value) for value in values]
        target = translated[0][0]
        if not target or any(value is None for _target, value in translated):
            raise ConfigError(f"{where}: {name} sets nothing in lifelong; it cannot be searched")
        fields[_dotted(target)] = [value for _target, value in translated]
    return fields


def _dotted(target: str) -> str:
    return REQUEST_KEYS.get(target, target)


def _experiment(index: int, common: Raw, body: Any) -> tuple[str, Raw]:
    """The name and the sweep-file body of one experiment."""
    where = f"experiments[{index}]"
    options = {**common, **_options(where, body)}
    grid = _grid(where, options.pop("hyperparams_search", None))
    runs = options.pop("multiple_runs", None)
    suffix = options.pop("name", None)
    for key in RUNNER_KEYS:
        options.pop(key, None)
    seed = options.pop("seed", REFERENCE_DEFAULTS["seed"])
    if runs is not None and (not isinstance(runs, dict) or "seeds" not in runs):
        raise ConfigError(f"{where}: multiple_runs must be a mapping with `seeds`")
    seeds = runs["seeds"] if runs is not None else [int(seed)]
    if grid and runs is not None:
        raise ConfigError(f"{where}: hyperparams_search with multiple_runs is not supported")
    try:
        fields = translate(options).as_fields()
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from err
    fields.pop("seed", None)
    name = f"{options.get('strategy', 'no_strategy')}_{options.get('model', 'simsiam')}"
    body_out: Raw = {"method.name": "cssl", **fields, "seeds": seeds}
    if grid:
        body_out["hyperparams_search"] = grid
    return name + (f"_{suffix}" if suffix else ""), body_out


def cssl_json_sweep(data: Raw) -> Raw:
    """The sweep-file mapping (``experiments``, grids, ``out``) of a ``config.json``.

    Raises:
        ConfigError: for unknown keys, refused options (naming the lifelong equivalent) or
            malformed grids, naming the experiment.
    """
    unknown = sorted(set(map(str, data)) - set(JSON_KEYS))
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} (allowed: {', '.join(JSON_KEYS)})")
    common = _options("common_params", data.get("common_params"))
    out = common.pop("save_folder", None)
    ignored = [key for key in RUNNER_KEYS if key in common]
    if ignored:
        log.warning("%s ignored: lifelong sweep --jobs N sets the parallelism", ", ".join(ignored))
    entries = data.get("experiments") or [{}]
    if not isinstance(entries, list):
        raise ConfigError("experiments: must be a list of option mappings")
    experiments: Raw = {}
    for index, body in enumerate(entries):
        name, body_out = _experiment(index, common, body)
        experiments[name if name not in experiments else f"{name}_{index}"] = body_out
    sweep: Raw = {"experiments": experiments}
    top_grid = _grid("hyperparams_search", data.get("hyperparams_search"))
    if top_grid:
        sweep["hyperparams_search"] = top_grid
    if out is not None:
        sweep["out"] = str(out)
    return sweep
