"""SARL and its SARL_Optim variants against ER and DER++ on an MNIST-family scenario.

Every method runs with the same short schedule through the ``lifelong`` command line (one process
per run, ``--jobs`` at a time, one thread each), then ``lifelong compare`` writes the mean ± std
table and bar plot. Finished runs are skipped, so an interrupted table resumes.

The shared settings are ours, as the SARL paper has no MNIST-family numbers. They are 2 epochs
per experience, batch 10, replay minibatch 10, buffer 200 and lr 0.03. ``warmup_epochs`` is 0, so
SARL's distillation and semantic terms run in the second epoch. SARL and ``sarl_enhanced`` run on
the sparse MLP and the GELU variants on the GELU MLP, the methods' own backbone kinds.

Usage:
    python benchmarks/sarl_table.py --dataset seq-fmnist \
        --data-root ../shared/data/fashion-mnist --seeds 0 1 2 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

COMMON = [
    "--preset", "none", "--epochs", "2", "--batch-size", "10", "--minibatch-size", "10",
    "--buffer-size", "200", "--lr", "0.03", "--no-progress",
]  # fmt: skip
SARL_FAMILY = ["--set", "warmup_epochs=0"]
METHODS: dict[str, list[str]] = {
    "er": [],
    "derpp": ["--alpha", "0.2", "--beta", "1.0"],
    "sarl": SARL_FAMILY,
    "sarl_enhanced": SARL_FAMILY,
    "sarl_enhanced_gelu": SARL_FAMILY,
    "sarl_enhanced_gelu_balanced": SARL_FAMILY,
}


def run_one(job: tuple[str, str, int, str, Path]) -> str:
    """Run one method and seed unless its results are already complete; return a log line."""
    dataset, method, seed, data_root, run_dir = job
    results = run_dir / "results.json"
    if results.exists() and json.loads(results.read_text()).get("completed"):
        return f"{method} seed {seed}: done before"
    if run_dir.exists():  # an interrupted run: start it again
        subprocess.run(["rm", "-rf", str(run_dir)], check=True)
    command = [
        sys.executable, "-m", "lifelong", "run", "--method", method, "--dataset", dataset,
        "--data-root", data_root, "--seed", str(seed), "--run-dir", str(run_dir),
        *COMMON, *METHODS[method],
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        return f"{method} seed {seed}: FAILED\n{done.stderr[-2000:]}"
    summary = json.loads(results.read_text())["protocols"]["class-il"]["summary"]
    return f"{method} seed {seed}: {summary['average_accuracy']:.2f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="seq-fmnist")
    parser.add_argument("--data-root", default="../shared/data/fashion-mnist")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/sarl"))
    args = parser.parse_args()
    root = args.out / args.dataset
    jobs = [
        (args.dataset, method, seed, args.data_root, root / f"{method}-seed{seed}")
        for method in args.methods
        for seed in args.seeds
    ]
    with ThreadPoolExecutor(args.jobs) as pool:
        for line in pool.map(run_one, jobs):
            print(line, flush=True)
    compare = [sys.executable, "-m", "lifelong", "compare", str(root), "--out", str(root)]
    subprocess.run(compare, check=True)


if __name__ == "__main__":
    main()
