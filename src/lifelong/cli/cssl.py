"""``lifelong cssl``: the continual-SSL library's ``main.py`` flags, translated to a lifelong run.

``python main.py --model byol --strategy replay --mb-passes 3`` becomes
``lifelong cssl --model byol --strategy replay --mb-passes 3``: the flags keep their reference
meaning (``--model`` is the SSL model, not the lifelong method) and go through one table,
:data:`lifelong.sweep.cssl_options.OPTIONS`, into the request and overrides of
:func:`lifelong.config.layered_config` for the method ``cssl``; the run is then the one
``lifelong run --method cssl`` builds from them. A flag with no meaning in lifelong ends with one
line naming the equivalent (exit code 2) before anything is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifelong.sweep.cssl_options import OPTIONS, flag, translate

log = logging.getLogger("lifelong")


def add_cssl_parser(sub: Any) -> None:
    """Add the ``cssl`` sub-command to the ``lifelong`` sub-parsers ``sub``."""
    cssl = sub.add_parser(
        "cssl",
        help="run with the continual-SSL library's main.py flags",
        allow_abbrev=False,
        description="The flags of the continual-SSL library's main.py (each also with "
        "underscores), translated to `lifelong run --method cssl`.",
    )
    for name, entry in OPTIONS.items():
        spellings = sorted({flag(name), "--" + name})
        if entry.is_flag or (entry.refusal and not entry.only):  # `--x` alone: `--x True`
            cssl.add_argument(*spellings, dest=name, nargs="?", const="True", help=entry.help)
        else:
            cssl.add_argument(*spellings, dest=name, metavar="VALUE", help=entry.help)
    cssl.set_defaults(**dict.fromkeys(OPTIONS))
    cssl.add_argument("--run-dir", "--run_dir", dest="lifelong_run_dir", type=Path)
    cssl.add_argument("--set", dest="lifelong_set", action="append", default=[], metavar="K=V")
    cssl.add_argument("--no-progress", action="store_true", help="hide progress bars")
    cssl.add_argument("--no-tensorboard", action="store_true", help="write no TensorBoard events")
    cssl.add_argument(
        "--explain-config",
        action="store_true",
        help="print every config field, its value and the layer that set it, then stop",
    )


if TYPE_CHECKING:
    from lifelong.config import Layered


def cssl_layered(args: argparse.Namespace) -> Layered:
    """The run's config and each field's layer, from the ``main.py`` flags in ``args``."""
    given = {name: getattr(args, name) for name in OPTIONS if getattr(args, name) is not None}
    translation = translate(given)
    from lifelong.cli.flags import parse_set  # the config schema loads only for a run
    from lifelong.config import layered_config

    overrides = [*translation.overrides, *parse_set(args.lifelong_set)]
    return layered_config({"method": "cssl", **translation.request}, None, None, overrides)


def command_cssl(args: argparse.Namespace) -> int:
    """``lifelong cssl [main.py flags]``: train, write the run directory, print the report."""
    from lifelong.cli.commands import run_and_report
    from lifelong.running.run_dir import claim_run_dir, default_run_dir

    layered = cssl_layered(args)
    if args.explain_config:
        sys.stdout.write(layered.explain())
        return 0
    cfg = layered.config
    if args.no_progress:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, progress=False))
    run_dir = args.lifelong_run_dir or claim_run_dir(default_run_dir(cfg))
    run_and_report(cfg, run_dir, tensorboard=not args.no_tensorboard)
    sys.stdout.write(f"\nrun directory: {run_dir}\n")
    return 0
