"""``lifelong sweep FILE``: plan the trials, run them, write the summary."""

from __future__ import annotations

import argparse
import logging
import sys

from lifelong.errors import ConfigError

log = logging.getLogger("lifelong")


def command_sweep(args: argparse.Namespace) -> int:
    """``lifelong sweep FILE``: exit code 0, or 1 when a trial failed (2 for a bad file)."""
    from lifelong.sweep import (
        check_backend,
        completed_results,
        load_sweep,
        run_sweep,
        write_summary,
    )

    if args.jobs < 1:
        raise ConfigError(f"--jobs must be 1 or more, got {args.jobs}")
    sweep = load_sweep(args.file, args.out)
    check_backend(args.backend)
    if args.dry_run:
        for trial in sweep.trials:
            done = " (finished before)" if completed_results(trial.run_dir) else ""
            sys.stdout.write(f"{trial.label}: {trial.run_dir}{done}\n")
        sys.stdout.write(f"{len(sweep.trials)} trials; nothing run (--dry-run)\n")
        return 0
    log.info("sweep %s: %d trials in %s", args.file, len(sweep.trials), sweep.out)
    outcomes = run_sweep(sweep, args.jobs, args.backend, tensorboard=not args.no_tensorboard)
    text, path = write_summary(sweep, outcomes)
    failed = sum(attempt.status == "failed" for _trial, attempt in outcomes)
    sys.stdout.write(text + f"\nwrote {path}\n")
    if failed:
        sys.stderr.write(f"lifelong: {failed} of {len(outcomes)} trials failed (see {path})\n")
    return 1 if failed else 0
