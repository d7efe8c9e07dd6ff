"""Text for ``lifelong list``: registered components with their config fields and docs."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import textwrap
from collections.abc import Mapping
from typing import Any

from lifelong.backbones import BACKBONES
from lifelong.buffers.stream_buffers import STREAM_BUFFERS
from lifelong.config import flatten
from lifelong.config.presets import load_preset, preset_description, preset_names
from lifelong.config.training import TrainConfig
from lifelong.data.scenarios import SCENARIOS, DatasetConfig
from lifelong.methods.base import METHODS
from lifelong.ssl.model import SSL_MODELS
from lifelong.ssl.strategies.base import SSL_STRATEGIES


def field_docs(cls: type[Any]) -> dict[str, str]:
    """The attribute docstrings (the string under each field) of a dataclass and its bases."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, following in itertools.pairwise(body):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[node.target.id] = following.value.value.strip()
    return docs


def describe_fields(cls: type[Any], skip: tuple[str, ...] = ()) -> list[str]:
    """One line per field: name, default and docstring."""
    docs = field_docs(cls)
    lines = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        default = f.default if f.default is not dataclasses.MISSING else "(required)"
        lines.append(f"    {f.name:<24} = {default!s:<12} {docs.get(f.name, '')}")
    return lines


def first_line(obj: Any) -> str:
    """First line of an object's docstring."""
    return (inspect.getdoc(obj) or "").splitlines()[0] if inspect.getdoc(obj) else ""


def configurable_section(header: str, entries: list[tuple[str, str, type[Any]]], width: int) -> str:
    """A header, then per entry its name, one-line description and config fields."""
    lines = [header]
    for name, description, config_cls in entries:
        lines.append(f"  {name:<{width}} {description}")
        lines += describe_fields(config_cls)
    return "\n".join(lines)


def methods_section() -> str:
    """Each method with its config fields, then its variants: "NAME: BASE with ..." and settings."""
    lines = ["methods (--method NAME; fields settable with --set method.FIELD=VALUE):"]
    entries = METHODS.items()
    for name, entry in entries:
        if entry.variant_of is not None:
            continue
        lines.append(f"  {name:<10} {entry.description}")
        lines += describe_fields(entry.config_cls)
        for variant_name, variant in entries:
            if variant.variant_of != name:
                continue
            lines.append(f"    {variant_name} ({variant.description})")
            settings = {**variant.defaults, **variant.fixed}
            shown = ", ".join(f"{k}={_plain_value(v)}" for k, v in settings.items())
            lines.append(
                f"      sets {shown or 'no field'}" + _backbones(variant.backbone_variants)
            )
    return "\n".join(lines)


def _plain_value(value: Any) -> str:
    return str(list(value) if isinstance(value, tuple) else value)


def _backbones(variants: Mapping[str, str]) -> str:
    if not variants:
        return ""
    return "; backbones " + ", ".join(f"{a} → {b}" for a, b in variants.items())


def list_text(what: str) -> str:
    """The text of ``lifelong list WHAT`` (one of ``cli.LIST_CHOICES``)."""
    sections = []
    if what in ("methods", "all"):
        sections.append(methods_section())
    if what in ("datasets", "all"):
        lines = ["datasets (--dataset NAME, --data-root DIR):"]
        for name in SCENARIOS:
            scenario = SCENARIOS.get(name)
            lines.append(f"  {name:<13} {scenario.description}; defaults {scenario.defaults}")
        lines.append("  fields (--set dataset.FIELD=VALUE):")
        lines += describe_fields(DatasetConfig, skip=("name",))
        sections.append("\n".join(lines))
    if what in ("backbones", "all"):
        specs = [(n, b.description, b.config_cls) for n, b in BACKBONES.items()]
        sections.append(configurable_section("backbones (--backbone NAME):", specs, 10))
    if what in ("ssl_models", "all"):
        header = "SSL models of cssl (--set method.ssl_model=NAME; fields as method.ssl_FIELD):"
        models = [(n, m.description, m.config_cls) for n, m in SSL_MODELS.items()]
        sections.append(configurable_section(header, models, 12))
    if what in ("strategies", "all"):
        lines = ["continual-SSL strategies (--set method.strategy=NAME):"]
        lines += [f"  {name:<12} {first_line(SSL_STRATEGIES.get(name))}" for name in SSL_STRATEGIES]
        sections.append("\n".join(lines))
    if what in ("buffers", "all"):
        lines = ["stream buffers of the cssl method (--set method.buffer=NAME):"]
        lines += [f"  {name:<18} {first_line(STREAM_BUFFERS.get(name))}" for name in STREAM_BUFFERS]
        sections.append("\n".join(lines))
    if what in ("train", "all"):
        lines = ["training loop (--set train.FIELD=VALUE):", *describe_fields(TrainConfig)]
        sections.append("\n".join(lines))
    if what in ("presets", "all"):
        lines = ["presets (--preset NAME):"]
        for name in preset_names():
            lines.append(f"  {name:<20} {preset_description(name)}")
            fields = ", ".join(f"{k}={v}" for k, v in flatten(load_preset(name)).items())
            lines.append(f"    {fields}")
        sections.append("\n".join(lines))
    return "\n\n".join(sections) + "\n"
