"""From parsed ``lifelong run`` flags to a resolved config, through :mod:`lifelong.config`.

Field flags (``--op_weight 0.1``) and ``--set KEY=VALUE`` become overrides; the request flags
(``--method``, ``--dataset``, ...) become the request. Nothing here layers anything itself.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from lifelong.cli.parser import FLAGS
from lifelong.config import Layered, RunConfig, layered_config
from lifelong.config.yaml_files import parse_yaml
from lifelong.errors import ConfigError


def parse_field_flags(tokens: Sequence[str]) -> list[tuple[str, Any]]:
    """``--FIELD VALUE [VALUE ...]`` flags for any config field, as ``--set`` pairs.

    ``--op_weight 0.1`` → ``("op_weight", 0.1)``; several values make a list
    (``--kw 0.8 0.8``); no value means ``true``; ``--FIELD=VALUE`` works too. Values are YAML
    scalars, as with ``--set``.
    """
    pairs: list[tuple[str, Any]] = []
    for token in tokens:
        if token.startswith("--"):
            name, _, text = token[2:].partition("=")
            if not name:
                raise ConfigError(f"cannot read the argument {token!r}")
            pairs.append((name.replace("-", "_"), [text] if text else []))
        elif pairs:
            pairs[-1][1].append(token)
        else:
            raise ConfigError(f"unexpected argument {token!r}: flags start with --")
    return [(name, _field_value(name, texts)) for name, texts in pairs]


def _field_value(name: str, texts: list[str]) -> Any:
    values = [parse_value(f"--{name}", t) for t in texts]
    return True if not values else values[0] if len(values) == 1 else values


def parse_value(where: str, text: str) -> Any:
    """A flag's value text as a YAML scalar or list (``""`` stays an empty string).

    Parsed with the same bounded loader as config files, so an alias bomb in ``--set`` is one
    line, not a hang.
    """
    return parse_yaml(text, f"the value of {where}") if text else ""


def parse_set(items: list[str]) -> list[tuple[str, Any]]:
    """Parse ``--set key=value`` items; values are YAML scalars or lists."""
    pairs = []
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        key, text = item.split("=", 1)
        pairs.append((key.strip(), parse_value(f"--set {key}", text)))
    return pairs


def layered_from_args(
    args: argparse.Namespace, first_overrides: Sequence[tuple[str, Any]] = ()
) -> Layered:
    """The run's config and each field's layer, from the flags (see :mod:`lifelong.config`).

    Args:
        args: Parsed ``lifelong run`` arguments.
        first_overrides: Overrides applied before the field flags and ``--set`` (which win),
            e.g. those of the mammoth flags.
    """
    request = {field: getattr(args, field) for field in FLAGS}
    request["download"] = args.download
    overrides = [*first_overrides, *parse_field_flags(args.field_flags), *parse_set(args.set)]
    return layered_config(request, args.preset, args.config, overrides)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The resolved config of ``lifelong run`` flags (the same function as the Python API)."""
    return layered_from_args(args).config
