"""The ``lifelong`` command line (``main`` returns the exit code; ``entry_point`` exits)."""

from lifelong.cli.flags import config_from_args, layered_from_args, parse_field_flags, parse_value
from lifelong.cli.main import entry_point, main
from lifelong.cli.parser import FLAGS, build_parser, parse_command

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
