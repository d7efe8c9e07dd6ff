"""``lifelong sweep FILE``: plan the trials, run them, write the summary."""

from __future__ import annotations

import argparse
import logging
import sys

from lifelong.errors import ConfigError
from lifelong.reporting.wandb_sink import WandbTarget, require_wandb

log = logging.getLogger("lifelong")


def command_sweep(args: argparse.Namespace) -> int:
    """``lifelong sweep FILE``: plan, run the trials, write the summary; return the exit code.

    Exit code 0 when every trial finished, 1 when a trial failed or was skipped because another
    process holds its folder ("running elsewhere", listed in the summary), 2 for a bad file. On
    SIGINT or SIGTERM the running trials are stopped, one line goes to stderr and the exit code
    is 128 + the signal number; running the same command again continues the sweep.
    """
    from lifelong.sweep import (
        SweepStoppedError,
        check_backend,
        completed_results,
        load_sweep,
        raise_on_termination,
        run_sweep,
        write_summary,
    )
    from lifelong.sweep.lock import is_locked

    if args.jobs < 1:
        raise ConfigError(f"--jobs must be 1 or more, got {args.jobs}")
    wandb = sweep_wandb_target(args)
    sweep = load_sweep(args.file, args.out)
    check_backend(args.backend)
    if args.dry_run:
        for trial in sweep.trials:
            done = " (finished before)" if completed_results(trial.run_dir) else ""
            done = " (running elsewhere)" if is_locked(trial.run_dir) else done
            sys.stdout.write(f"{trial.label}: {trial.run_dir}{done}\n")
        sys.stdout.write(f"{len(sweep.trials)} trials; nothing run (--dry-run)\n")
        return 0
    log.info("sweep %s: %d trials in %s", args.file, len(sweep.trials), sweep.out)
    restore_signals = raise_on_termination()
    try:
        outcomes = run_sweep(
            sweep, args.jobs, args.backend, tensorboard=not args.no_tensorboard, wandb=wandb
        )
    except SweepStoppedError as err:
        sys.stderr.write(
            f"lifelong: sweep stopped ({err}): its running trials were stopped; run the same "
            "command again to continue\n"
        )
        return 128 + err.signal_number
    finally:
        restore_signals()
    text, path = write_summary(sweep, outcomes)
    failed = sum(attempt.status == "failed" for _trial, attempt in outcomes)
    elsewhere = sum(attempt.status == "running elsewhere" for _trial, attempt in outcomes)
    sys.stdout.write(text + f"\nwrote {path}\n")
    if failed:
        sys.stderr.write(f"lifelong: {failed} of {len(outcomes)} trials failed (see {path})\n")
    if elsewhere:
        sys.stderr.write(
            f"lifelong: {elsewhere} of {len(outcomes)} trials are running elsewhere (their folder "
            f"is locked by another process) and were skipped (see {path})\n"
        )
    return 1 if failed or elsewhere else 0


def sweep_wandb_target(args: argparse.Namespace) -> WandbTarget | None:
    """The W&B project every trial logs to (``--wandb``), checked before any trial starts.

    Raises:
        ConfigError: for ``--wandb-mode`` without ``--wandb``, or ``--wandb`` without wandb.
    """
    if args.wandb is None:
        if args.wandb_mode is not None:
            raise ConfigError("--wandb-mode needs a project: add --wandb PROJECT")
        return None
    target = WandbTarget(args.wandb, args.wandb_mode or "online")
    require_wandb()
    return target
