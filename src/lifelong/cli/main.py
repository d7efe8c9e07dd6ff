"""The command line: ``lifelong run | list | report | compare | sweep | reproduce | ...``.

``main(argv)`` returns the exit code.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from lifelong.cli.parser import build_parser, parse_command
from lifelong.errors import UserError, UserInterruptError
from lifelong.running.run_log import OWN_LOGGER, is_own

INTERRUPTED = 130
"""Exit code after Ctrl-C (128 + SIGINT, as shells report it)."""


def log_to_screen(quiet: bool) -> None:
    """Show lifelong's log lines on stderr (INFO, or WARNING when ``quiet``), bare.

    Other packages' lines reach the screen only as errors: their INFO lines and warnings go to
    the run's ``run.log`` (:mod:`lifelong.running.run_log`). Nothing changes when logging is
    set up already (by a caller, or by pytest).
    """
    root = logging.getLogger()
    if root.handlers:
        return
    screen = logging.StreamHandler()
    screen.setFormatter(logging.Formatter("%(message)s"))
    screen.addFilter(lambda record: is_own(record) or record.levelno >= logging.ERROR)
    root.addHandler(screen)
    root.setLevel(logging.WARNING)
    logging.getLogger(OWN_LOGGER).setLevel(logging.WARNING if quiet else logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv``; return the exit code (2 for bad input)."""
    parser = build_parser()
    try:
        args = parse_command(parser, argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    log_to_screen(quiet=args.quiet or getattr(args, "non_verbose", False))  # mammoth's flag too
    try:
        return dispatch(args)
    except UserError as err:
        sys.stderr.write(f"lifelong: error: {err}\n")
        return 2
    except UserInterruptError as stop:
        sys.stderr.write(f"lifelong: interrupted: {stop}\n")
        return INTERRUPTED
    except KeyboardInterrupt:
        sys.stderr.write("lifelong: interrupted; every file written so far is whole\n")
        return INTERRUPTED


def dispatch(args: argparse.Namespace) -> int:
    """Run the parsed command; each command's modules load only when it runs."""
    if args.command == "list":
        from lifelong.cli.describe import list_text

        sys.stdout.write(list_text(args.what))
        return 0
    if args.command == "sweep":
        from lifelong.cli.sweep_command import command_sweep

        return command_sweep(args)
    if args.command == "cssl":
        from lifelong.cli.cssl import command_cssl

        return command_cssl(args)
    if args.command == "reproduce":
        from lifelong.cli.reproduce_command import command_reproduce

        return command_reproduce(args)
    if args.command == "probe":
        from lifelong.cli.probe_command import command_probe

        return command_probe(args)
    if args.command == "bir":
        from lifelong.cli.bir import command_bir

        return command_bir(args)
    from lifelong.cli import commands

    if args.command == "run":
        return commands.command_run(args)
    if args.command == "compare":
        return commands.command_compare(args)
    if args.command == "pretrain":
        return commands.command_pretrain(args)
    return commands.command_report(args)


def entry_point() -> None:
    """Console-script entry point (and ``python -m lifelong``): run, then end the process."""
    end_process(main())


def end_process(code: int) -> NoReturn:
    """Exit with ``code`` without the interpreter's teardown of every loaded module.

    With torch, ``torch._dynamo`` (which ``torch.optim`` loads) and matplotlib loaded, Python's
    finalisation takes about 1 s on the benchmark machine, after all output is written. The exit
    handlers that libraries registered (``atexit``: logging's flush, multiprocessing's joins,
    torch's) still run, and the standard streams are flushed; only the module teardown and the
    final garbage collection are skipped. Every file lifelong writes is closed (and written
    atomically) before :func:`main` returns.
    """
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe, e.g. `| head`
            stream.flush()
    os._exit(code)
