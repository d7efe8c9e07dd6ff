"""The ``lifelong`` command line (``main`` returns the exit code; ``entry_point`` exits).

The config helpers of :mod:`lifelong.cli.flags` load on first use, so ``lifelong --help`` does not
import the training stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lifelong.cli.main import entry_point, main
from lifelong.cli.parser import FLAGS, build_parser, parse_command

if TYPE_CHECKING:
    from lifelong.cli.flags import (
        config_from_args,
        layered_from_args,
        parse_field_flags,
        parse_value,
    )

_FROM_FLAGS = ("config_from_args", "layered_from_args", "parse_field_flags", "parse_value")
__all__ = [
    "FLAGS",
    "build_parser",
    "config_from_args",
    "entry_point",
    "layered_from_args",
    "main",
    "parse_command",
    "parse_field_flags",
    "parse_value",
]


def __getattr__(name: str) -> Any:
    if name in _FROM_FLAGS:
        from lifelong.cli import flags

        return getattr(flags, name)
    raise AttributeError(f"module 'lifelong.cli' has no attribute {name!r}")
