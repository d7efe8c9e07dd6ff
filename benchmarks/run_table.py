"""Run ``lifelong run`` jobs in parallel processes, resumably, and summarise them with compare.

Shared by the benchmark tables (``sarl_table.py``, ``bir_table.py``): each job is one method
configuration and seed in its own run directory; finished runs (``results.json`` with
``completed``) are skipped, interrupted ones start again, and ``lifelong compare`` writes the
mean ± std table and bar plot of the folder at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Job:
    """One run: a label for the log, the ``lifelong run`` arguments and where it writes."""

    label: str
    arguments: tuple[str, ...]
    run_dir: Path


def run_job(job: Job) -> str:
    """Run ``job`` unless its results are already complete; return a log line."""
    results = job.run_dir / "results.json"
    if results.exists() and json.loads(results.read_text()).get("completed"):
        return f"{job.label}: done before"
    if job.run_dir.exists():  # an interrupted run: start it again
        shutil.rmtree(job.run_dir)
    command = [sys.executable, "-m", "lifelong", "run", "--run-dir", str(job.run_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [*command, *job.arguments], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        return f"{job.label}: FAILED\n{done.stderr[-2000:]}"
    protocols = json.loads(results.read_text())["protocols"]
    first = next(iter(protocols))
    return f"{job.label}: {first} {protocols[first]['summary']['average_accuracy']:.2f}%"


def run_jobs(jobs: Sequence[Job], parallel: int, root: Path) -> None:
    """Run ``jobs``, ``parallel`` at a time, printing a line each; then compare ``root``."""
    with ThreadPoolExecutor(parallel) as pool:
        for line in pool.map(run_job, jobs):
            print(line, flush=True)
    compare = [sys.executable, "-m", "lifelong", "compare", str(root), "--out", str(root)]
    subprocess.run(compare, check=True)
