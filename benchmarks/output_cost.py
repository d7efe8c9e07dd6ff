"""What a run's outputs cost: ER on seq-mnist before issue 18, with today's defaults, and all on.

Three ways to run the same ``seq-mnist/er-200`` preset (one epoch, MLP 2 x 100, seed 0), each a
fresh ``lifelong run`` process on one thread, interleaved ``--repeats`` times, median wall time:

* ``before``: the commit before issue 18's outputs (``--before``, default ``77a49d0``), checked
  out into a temporary git worktree and run from its sources: TensorBoard, plots, checkpoints,
  JSON and JSONL only;
* ``defaults``: this checkout with its defaults, which add the CSV tables, the per-class and
  confusion matrices (counted in the evaluation pass) and the cost metrics;
* ``all``: this checkout with every output on: ``--pdf``, ``--csv-log`` and Weights & Biases
  in offline mode (``--wandb``; needs the ``wandb`` extra).

Wall time is the whole process, start-up included, as a user waits for it; one untimed run first
warms the file cache. The issue's target is ``all`` at most 5 % above the defaults, read both
ways: above ``before`` (the defaults when the issue was filed) and above ``defaults`` (this
checkout's). Results also go to ``benchmarks/out/output_cost.json``.

Usage:
    python benchmarks/output_cost.py --data-root ../shared/data/mnist [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN = ["--preset", "seq-mnist/er-200", "--seed", "0", "--no-progress"]
EVERYTHING = ["--pdf", "--csv-log", "--wandb", "output-cost", "--wandb-mode", "offline"]


def timed(command: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one process (its output is discarded; a failure stops the script)."""
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="../shared/data/mnist")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", default="77a49d0", help="the commit before issue 18")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/output_cost.json"))
    args = parser.parse_args()
    data_root = str(Path(args.data_root).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "before"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(old), args.before],
            check=True,
            capture_output=True,
        )
        try:
            base_env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true"}
            base_env["MPLCONFIGDIR"] = str(Path(tmp) / "mpl")
            envs = {
                "before": {**base_env, "PYTHONPATH": str(old / "src")},
                "defaults": {**base_env, "PYTHONPATH": str(REPO / "src")},
                "all": {**base_env, "PYTHONPATH": str(REPO / "src"), "WANDB_MODE": "offline"},
            }
            times: dict[str, list[float]] = {name: [] for name in envs}
            warm = [sys.executable, "-m", "lifelong", "run", *RUN, "--data-root", data_root]
            timed([*warm, "--run-dir", str(Path(tmp) / "warm-up")], envs["defaults"])
            for repeat in range(args.repeats):
                for name, env in envs.items():
                    run_dir = Path(tmp) / f"{name}-{repeat}"
                    command = [sys.executable, "-m", "lifelong", "run", *RUN]
                    command += ["--data-root", data_root, "--run-dir", str(run_dir)]
                    command += EVERYTHING if name == "all" else []
                    seconds = timed(command, {**env, "WANDB_DIR": str(run_dir)})
                    times[name].append(seconds)
                    print(f"{name:<9} repeat {repeat}: {seconds:6.2f} s", flush=True)
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(old)],
                check=False,
                capture_output=True,
            )
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print("| outputs | median wall (s) | runs (s) | vs before | vs defaults |")
    print("|---|---|---|---|---|")
    for name, values in times.items():
        before = medians[name] / medians["before"]
        defaults = medians[name] / medians["defaults"]
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"| {name} | {medians[name]:.2f} | {runs} | {before:.3f} | {defaults:.3f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"times": times, "medians": medians}, indent=1))


if __name__ == "__main__":
    main()
