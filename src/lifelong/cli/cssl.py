"""``lifelong cssl``: the continual-SSL library's ``main.py`` flags, translated to a lifelong run.

(Being written in this session: the sub-command exists so the parser and dispatch are wired.)
"""

from __future__ import annotations

import argparse
from typing import Any

from lifelong.errors import ConfigError


def add_cssl_parser(sub: Any) -> None:
    """Add the ``cssl`` sub-command to the ``lifelong`` sub-parsers ``sub``."""
    sub.add_parser("cssl", help="run with the continual-SSL library's main.py flags")


def command_cssl(args: argparse.Namespace) -> int:
    """``lifelong cssl ...``."""
    raise ConfigError("lifelong cssl is not finished yet")
