"""Typed run configuration: merged raw dicts resolved into frozen dataclasses.

:func:`resolve` validates one merged raw config; the order of the layers that are merged into it
is decided in :mod:`lifelong.config.layers`. Unknown keys and ill-typed values fail with a
:class:`ConfigError` that names the key and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass
from typing import Any

import lifelong.components  # noqa: F401  (fills the registries)
from lifelong.backbones import BACKBONES
from lifelong.config.training import TrainConfig
from lifelong.data.scenarios import SCENARIOS, DatasetConfig
from lifelong.errors import ConfigError, quoted
from lifelong.methods.base import METHODS, MethodConfig

Raw = dict[str, Any]
SECTIONS = ("method", "dataset", "backbone", "train")
TOP_LEVEL = {"seed": int, "device": str}
DEFAULT_NAMES = {"method": "er", "dataset": "seq-digits", "backbone": "mlp"}
"""The component each named section uses when the config names none."""
MAX_SEED = 2**63 - 1
"""The largest seed: torch's generators take 64-bit seeds, and the seed is also a step count."""
DEVICE_NAME = re.compile(r"cpu|cuda(:\d{1,4})?")
"""The devices a run can use: the CPU, the current GPU or GPU number N."""
MAX_NAME_BYTES = 255
"""The longest file or folder name most file systems allow."""


@dataclass(frozen=True)
class RunConfig:
    """A fully resolved, validated run configuration."""

    method_name: str
    method: MethodConfig
    dataset: DatasetConfig
    backbone_name: str
    backbone: Any
    train: TrainConfig
    seed: int = 0
    device: str = "cpu"
    preset: str | None = None

    def to_raw(self) -> Raw:
        """The nested-dict form written to ``config.yaml`` (loadable with ``--config``)."""
        return {
            "method": {"name": self.method_name, **_plain(dataclasses.asdict(self.method))},
            "dataset": _plain(dataclasses.asdict(self.dataset)),
            "backbone": {"name": self.backbone_name, **_plain(dataclasses.asdict(self.backbone))},
            "train": _plain(dataclasses.asdict(self.train)),
            "seed": self.seed,
            "device": self.device,
        }


def _plain(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in mapping.items()}


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"method": {"lr": 0.1}}`` → ``{"method.lr": 0.1}`` (lists become tuples)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = tuple(value) if isinstance(value, list) else value
    return out


def merge(base: Raw, override: Raw) -> Raw:
    """Recursively merge ``override`` into a copy of ``base``.

    A section whose ``name`` changes starts over from ``override``: after ``--backbone mlp`` on
    a preset written for ``mobilenet_v1``, the preset's ``width`` belongs to another config
    class and is dropped rather than reported as an unknown key.
    """
    out = dict(base)
    for key, value in override.items():
        old = out.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            renamed = "name" in value and "name" in old and value["name"] != old["name"]
            out[key] = dict(value) if renamed else merge(old, value)
        else:
            out[key] = value
    return out


def section_name(raw: Raw, section: str) -> str:
    """The component that section ``method``, ``dataset`` or ``backbone`` of ``raw`` names.

    Raises:
        ConfigError: if the section is not a mapping or its ``name`` is not a string (a list
            from ``--set method.name=[er]``, a number from ``dataset: {name: 5}``).
    """
    values = raw.get(section, {})
    if not isinstance(values, dict):
        raise ConfigError(
            f"config section {section!r} must be a mapping of its fields (name: ..., ...), "
            f"got {quoted(values)}"
        )
    name = values.get("name", DEFAULT_NAMES[section])
    if not isinstance(name, str):
        example = DEFAULT_NAMES[section]
        raise ConfigError(f"{section}.name must be a name such as {example!r}, got {quoted(name)}")
    return name


def check_seed(seed: int) -> int:
    """``seed`` if it is in ``0..MAX_SEED``; a ConfigError otherwise."""
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed must be between 0 and 2**63-1 ({MAX_SEED}), got {quoted(seed)}")
    return seed


def check_device_name(device: str) -> str:
    """``device`` if it is ``cpu``, ``cuda`` or ``cuda:N`` (whether it exists: at build)."""
    if DEVICE_NAME.fullmatch(device) is None:
        raise ConfigError(f"unknown device {quoted(device)}: use cpu, cuda or cuda:N")
    return device


def check_path_names(path: str, where: str) -> str:
    """``path`` if no name in it is over :data:`MAX_NAME_BYTES` bytes; a ConfigError otherwise."""
    lengths = [len(part.encode("utf-8", "surrogateescape")) for part in path.split("/")]
    if max(lengths) > MAX_NAME_BYTES:
        raise ConfigError(
            f"{where}: a name in {quoted(path)} is over {MAX_NAME_BYTES} bytes long, more than "
            "file systems allow"
        )
    return path


def section_classes(raw: Raw) -> dict[str, type[Any]]:
    """The config dataclass of each section, given the names chosen in ``raw``."""
    method = METHODS.get(section_name(raw, "method"))
    backbone = BACKBONES.get(section_name(raw, "backbone"))
    return {
        "method": method.config_cls,
        "dataset": DatasetConfig,
        "backbone": backbone.config_cls,
        "train": TrainConfig,
    }


def qualify(key: str, raw: Raw) -> str:
    """Turn a bare ``--set`` key (``alpha``) into ``section.key`` when one section has it."""
    if "." in key or key in TOP_LEVEL:
        return key
    if key == "name":
        raise ConfigError("`name` is ambiguous: write method.name, dataset.name or backbone.name")
    owners = [
        s
        for s, cls in section_classes(raw).items()
        if key in {f.name for f in dataclasses.fields(cls)}
    ]
    if len(owners) == 1:
        return f"{owners[0]}.{key}"
    if len(owners) > 1:
        raise ConfigError(
            f"key {key!r} is ambiguous: write one of {', '.join(f'{o}.{key}' for o in owners)}"
        )
    qualified = {
        f.name: f"{s}.{f.name}"
        for s, c in section_classes(raw).items()
        for f in dataclasses.fields(c)
    }
    close = difflib.get_close_matches(key, list(qualified), n=2, cutoff=0.6)
    hint = f": did you mean {' or '.join(repr(qualified[c]) for c in close)}?" if close else ""
    raise ConfigError(
        f"unknown config key {key!r}{hint} (write SECTION.KEY; `lifelong list` shows every field)"
    )


def set_key(raw: Raw, dotted: str, value: Any) -> Raw:
    """Return ``raw`` with ``dotted`` (``section.key`` or a top-level key) set to ``value``."""
    if "." not in dotted:
        if dotted not in TOP_LEVEL:
            raise ConfigError(f"unknown config key {dotted!r}{_suggest(dotted, list(TOP_LEVEL))}")
        return merge(raw, {dotted: value})
    section, key = dotted.split(".", 1)
    if section not in SECTIONS:
        raise ConfigError(f"unknown config section {section!r}{_suggest(section, list(SECTIONS))}")
    return merge(raw, {section: {key: value}})


def _suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=2, cutoff=0.6)
    return f": did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
"""A number written in plain or scientific notation."""


def coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against a field annotation, converting lists to tuples and ints to floats."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return coerce(value, option, where)
            except ConfigError as err:
                errors.append(err)
        raise errors[0]
    if origin is typing.Literal:
        choices = typing.get_args(annotation)
        if value in choices:
            return value
        raise ConfigError(
            f"{where} must be one of {', '.join(map(str, choices))}, got {quoted(value)}"
        )
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be a list, got {quoted(value)} (one value: [{value}])")
        item_type = typing.get_args(annotation)[0]
        return tuple(coerce(v, item_type, where) for v in value)
    if annotation is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if annotation is float and isinstance(value, str) and FLOAT_TEXT.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 reads ``1e-4`` (no dot) as a string
    if annotation is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if annotation in (bool, str) and isinstance(value, annotation):
        return value
    if annotation is Any:
        return value
    name = getattr(annotation, "__name__", str(annotation))
    raise ConfigError(f"{where} must be of type {name}, got {quoted(value)}")


def build_section(cls: type[Any], values: Raw, section: str) -> Any:
    """Instantiate config dataclass ``cls`` from ``values``, rejecting unknown keys."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(
                f"unknown config key '{section}.{key}' for {cls.__name__}{_suggest(key, names)} "
                f"(valid keys: {', '.join(names)})"
            )
        kwargs[key] = coerce(value, hints[key], f"{section}.{key}")
    return cls(**kwargs)


def resolve(raw: Raw, preset: str | None = None) -> RunConfig:
    """Validate a merged raw config and build the typed :class:`RunConfig`.

    The method section starts from the method entry's defaults: a variant (``sarl_enhanced``)
    is its method's config with the variant's settings, and keeps the variant's name.
    """
    unknown = set(raw) - set(SECTIONS) - set(TOP_LEVEL)
    if unknown:
        key = str(sorted(unknown, key=str)[0])
        raise ConfigError(
            f"unknown config key {quoted(key)}{_suggest(key, [*SECTIONS, *TOP_LEVEL])}"
        )
    for section in SECTIONS:
        if not isinstance(raw.get(section, {}), dict):
            raise ConfigError(
                f"config section {section!r} must be a mapping, got {quoted(raw[section])}"
            )
    names = {s: section_name(raw, s) for s in DEFAULT_NAMES}
    classes = section_classes(raw)
    values = {s: {k: v for k, v in raw.get(s, {}).items() if k != "name"} for s in SECTIONS}
    values["dataset"]["name"] = names["dataset"]
    SCENARIOS.get(names["dataset"])
    entry = METHODS.get(names["method"])
    values["method"] = {**entry.defaults, **entry.fixed, **values["method"]}
    typed = {s: build_section(classes[s], values[s], s) for s in SECTIONS}
    entry.check(typed["method"])
    own_schedule = typed["method"].own_lr_schedule()
    if typed["train"].lr_milestones and own_schedule:
        raise ConfigError(
            f"train.lr_milestones and {own_schedule} both decay {names['method']}'s learning "
            "rate: set one of them"
        )
    top = {
        k: coerce(raw.get(k, default), t, k)
        for k, t, default in (("seed", int, 0), ("device", str, "cpu"))
    }
    check_path_names(typed["dataset"].root, "dataset.root")
    return RunConfig(
        method_name=names["method"],
        method=typed["method"],
        dataset=typed["dataset"],
        backbone_name=names["backbone"],
        backbone=typed["backbone"],
        train=typed["train"],
        seed=check_seed(top["seed"]),
        device=check_device_name(top["device"]),
        preset=preset,
    )
