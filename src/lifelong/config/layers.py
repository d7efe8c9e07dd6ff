"""The one place that decides a run's configuration, for the CLI, the Python API and sweeps.

Layers, lowest first:

1. ``default``: the config dataclasses' defaults;
2. ``scenario NAME``: the scenario's paper defaults (epochs, batch size, backbone), with the
   method's backbone variant (SARL's ``sparse_mlp`` for the scenario's ``mlp``);
3. ``preset NAME``: the named preset, or, when none is named, the paper preset matching
   dataset / method / buffer size (``"none"`` turns that off);
4. ``config file``: a YAML file (a run's ``config.yaml`` reloads as one);
5. ``override``: single fields (command-line flags, ``--set``, the API's keyword fields).

Every input is a plain mapping; the result is the resolved :class:`RunConfig` and the layer
that set each field.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifelong.config.presets import load_preset, matching_preset
from lifelong.config.schema import (
    RunConfig,
    flatten,
    merge,
    qualify,
    resolve,
    section_name,
    set_key,
)
from lifelong.config.yaml_files import load_yaml
from lifelong.data.scenarios import SCENARIOS
from lifelong.methods.base import METHODS

log = logging.getLogger(__name__)

Raw = dict[str, Any]
DEFAULT_LAYER = "default"

REQUEST_KEYS: dict[str, str] = {
    "method": "method.name",
    "dataset": "dataset.name",
    "backbone": "backbone.name",
    "buffer_size": "method.buffer_size",
    "minibatch_size": "method.minibatch_size",
    "lr": "method.lr",
    "alpha": "method.alpha",
    "beta": "method.beta",
    "epochs": "train.epochs",
    "iters": "train.iters",
    "batch_size": "train.batch_size",
    "data_root": "dataset.root",
    "seed": "seed",
    "device": "device",
    "download": "dataset.download",
}
"""The request fields every entry point names alike (``--buffer-size``, ``buffer_size=``)."""


@dataclass(frozen=True)
class Layered:
    """A resolved config and, for each field (``section.key``), the layer that set it."""

    config: RunConfig
    sources: dict[str, str]

    def explain(self) -> str:
        """A table of every field, its value and its layer (``lifelong run --explain-config``)."""
        values = flatten(self.config.to_raw())
        width = max(len(k) for k in values)
        lines = [f"{'field':<{width}}  {'value':<24}  layer"]
        for key, value in values.items():
            lines.append(f"{key:<{width}}  {_show(value):<24}  {self.sources[key]}")
        return "\n".join(lines) + "\n"


def _show(value: Any) -> str:
    return "null" if value is None else str(list(value) if isinstance(value, tuple) else value)


def track(sources: dict[str, str], current: Raw, layer: Raw, label: str) -> None:
    """Record in ``sources`` the fields ``layer`` sets over ``current`` (``merge``'s rules).

    A section whose ``name`` changes starts over, as in :func:`merge`: the fields set below it
    no longer count.
    """
    for section, values in layer.items():
        if isinstance(values, dict):
            old = current.get(section)
            if isinstance(old, dict) and "name" in values and values["name"] != old.get("name"):
                for key in [k for k in sources if k.startswith(f"{section}.")]:
                    del sources[key]
            for key in flatten(values, f"{section}."):
                sources[key] = label
        else:
            sources[section] = label


def request_overrides(request: Mapping[str, Any]) -> Raw:
    """The override layer of the request fields that are set (``None`` and ``False`` are not)."""
    unknown = set(request) - set(REQUEST_KEYS)
    if unknown:
        raise TypeError(f"unknown request fields: {', '.join(sorted(unknown))}")
    raw: Raw = {}
    for name, value in request.items():
        if value is not None and value is not False:
            raw = set_key(raw, REQUEST_KEYS[name], value)
    return raw


def layered_config(
    request: Mapping[str, Any] | None = None,
    preset: str | None = None,
    config_file: Path | None = None,
    overrides: Sequence[tuple[str, Any]] = (),
) -> Layered:
    """Resolve a run's configuration from its layers.

    Args:
        request: The named request fields (:data:`REQUEST_KEYS`), e.g. ``{"method": "er"}``.
        preset: A preset name; ``None`` uses the matching paper preset, ``"none"`` no preset.
        config_file: A YAML config file, above the preset and below the overrides.
        overrides: ``(key, value)`` pairs for any field, applied last; a bare key (``alpha``)
            names the one section that has it.

    Returns:
        The resolved config and the layer of each field.
    """
    file_layer: Raw = load_yaml(config_file) if config_file is not None else {}
    override_layer = request_overrides(request or {})
    explicit = preset if preset not in (None, "none") else None
    explicit_layer = load_preset(explicit) if explicit else {}
    for key, value in overrides:  # a bare key names a section of the run as built so far
        above = merge(merge(explicit_layer, file_layer), override_layer)
        override_layer = set_key(override_layer, qualify(key, with_scenario(above)), value)
    chosen = merge(merge(explicit_layer, file_layer), override_layer)
    dataset = section_name(chosen, "dataset")
    method = section_name(chosen, "method")
    override_layer = memory_alias(override_layer, METHODS.get(method).memory_field)
    if preset is None:
        explicit = matching_preset(dataset, method, chosen.get("method", {}).get("buffer_size"))
        if explicit:
            log.info("using the paper preset %r (pass --preset none for plain defaults)", explicit)
    layers = [
        (f"scenario {dataset}", scenario_layer(dataset, method)),
        (f"preset {explicit}", load_preset(explicit) if explicit else {}),
        ("config file", file_layer),
        ("override", override_layer),
    ]
    merged: Raw = {}
    sources: dict[str, str] = {}
    for label, layer in layers:
        track(sources, merged, layer, label)
        merged = merge(merged, layer)
    config = resolve(merged, explicit)
    fields = flatten(config.to_raw())
    return Layered(config, {k: sources.get(k, DEFAULT_LAYER) for k in fields})


def with_scenario(layer: Raw) -> Raw:
    """``layer`` over the paper defaults of the scenario (and method) it names."""
    dataset, method = section_name(layer, "dataset"), section_name(layer, "method")
    return merge(scenario_layer(dataset, method), layer)


def memory_alias(layer: Raw, memory_field: str) -> Raw:
    """``method.buffer_size`` renamed to the method's own memory field (AR1*'s ``rm_sz``)."""
    section = layer.get("method", {})
    if memory_field == "buffer_size" or "buffer_size" not in section:
        return layer
    renamed = {k: v for k, v in section.items() if k != "buffer_size"}
    return {**layer, "method": {**renamed, memory_field: section["buffer_size"]}}


def scenario_layer(dataset: str, method: str) -> Raw:
    """The scenario's paper defaults, with the method's backbone variant of their backbone."""
    defaults = SCENARIOS.get(dataset).defaults
    backbone = defaults.get("backbone", {}).get("name", "mlp")
    variant = METHODS.get(method).backbone_variants.get(backbone)
    return merge(defaults, {"backbone": {"name": variant}}) if variant else defaults
