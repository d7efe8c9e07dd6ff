"""Start-up: from process start to the first training step, against a bare ``import torch``.

Each row is a fresh process, interleaved ``--repeats`` times (median kept), one thread:

* ``import torch``: ``python -c "import torch"``, the floor every PyTorch library pays;
* ``lifelong --help`` and ``lifelong list``: the command line without a run;
* first ER step: ``lifelong run --preset seq-mnist/er-200`` until ER's first ``observe`` call
  (the process stops there), so the row holds the imports, the config, the MNIST load and the
  model and optimizer, and nothing of the training.

Times are from just before the process is started to the moment it reports (a wall-clock stamp
written by the child), so the interpreter's own start is included. Issue 19's target is the
first step within ``import torch`` + 1 s.

Usage:
    python benchmarks/startup.py --data-root ../shared/data/mnist [--repeats 5]
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
TORCH = "import torch, time; print(time.time())"
FIRST_STEP = """
import os, sys, time
from lifelong.methods.er import ER

def first_observe(self, batch):
    print(time.time(), flush=True)
    os._exit(0)

ER.observe = first_observe
from lifelong.cli.main import main
main(sys.argv[1:])
"""


def stamp(command: list[str], env: dict[str, str]) -> float:
    """Seconds from starting ``command`` to the wall-clock stamp it prints (or to its exit)."""
    start = time.time()
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    lines = out.stdout.strip().splitlines()
    try:
        return float(lines[-1]) - start
    except (IndexError, ValueError):
        return time.time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="../shared/data/mnist")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/out/startup.json")
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        run = ["run", "--preset", "seq-mnist/er-200", "--no-progress", "--data-root"]
        run += [str(Path(args.data_root).resolve()), "--run-dir"]
        rows = {
            "import torch": lambda _: [python, "-c", TORCH],
            "lifelong --help": lambda _: [python, "-m", "lifelong", "--help"],
            "lifelong list": lambda _: [python, "-m", "lifelong", "list"],
            "first ER step (seq-mnist)": lambda k: [
                python, "-c", FIRST_STEP, *run, str(Path(tmp) / f"run{k}")
            ],
        }  # fmt: skip
        times: dict[str, list[float]] = {name: [] for name in rows}
        stamp(rows["first ER step (seq-mnist)"](-1), env)  # warm the file cache
        for k in range(args.repeats):
            for name, command in rows.items():
                times[name].append(stamp(command(k), env))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print("| process | median (s) | runs (s) | over `import torch` (s) |")
    print("|---|---|---|---|")
    for name, values in times.items():
        runs = ", ".join(f"{v:.2f}" for v in values)
        over = medians[name] - medians["import torch"]
        print(f"| {name} | {medians[name]:.2f} | {runs} | {over:+.2f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"times": times, "medians": medians}, indent=1))


if __name__ == "__main__":
    main()
