"""Run ``lifelong run`` jobs in parallel processes, resumably, and summarise them with compare.

Shared by the benchmark tables (``sarl_table.py``, ``bir_table.py``, ``ar1_table.py``): each job
is one method configuration and seed in its own run directory. The runs go through
:func:`lifelong.sweep.run_once`, the runner of ``lifelong sweep``: finished runs (``results.json``
with ``completed``) are skipped, interrupted ones start again, each run's output is kept in its
``trial.log``, and ``lifelong compare`` writes the mean ± std table and bar plot of the folder at
the end.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from lifelong.sweep import run_once


@dataclass(frozen=True)
class Job:
    """One run: a label for the log, the ``lifelong run`` arguments and where it writes."""

    label: str
    arguments: tuple[str, ...]
    run_dir: Path


def run_job(job: Job) -> str:
    """Run ``job`` (one thread) unless its results are already complete; return a log line."""
    attempt = run_once(job.arguments, job.run_dir, one_thread=True)
    if attempt.status == "failed":
        return f"{job.label}: FAILED: {attempt.error} (log: {job.run_dir / 'trial.log'})"
    if attempt.status == "running elsewhere":
        return f"{job.label}: skipped, another process is running it ({attempt.error})"
    if attempt.status == "done before":
        return f"{job.label}: done before"
    first = next(iter(attempt.accuracy))
    return f"{job.label}: {first} {attempt.accuracy[first]:.2f}%"


def run_jobs(jobs: Sequence[Job], parallel: int, root: Path) -> None:
    """Run ``jobs``, ``parallel`` at a time, printing a line each; then compare ``root``."""
    with ThreadPoolExecutor(parallel) as pool:
        for line in pool.map(run_job, jobs):
            print(line, flush=True)
    compare = [sys.executable, "-m", "lifelong", "compare", str(root), "--out", str(root)]
    subprocess.run(compare, check=True)
