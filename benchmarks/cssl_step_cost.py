"""Continual-SSL step cost: seconds per training step of each SSL model × strategy, one process.

Every model × strategy pair of the Fashion-MNIST benchmark (``configs/sweeps/cssl-fmnist.yaml``:
slim ResNet-9, stream minibatch 16, replay minibatch 16, buffer 200, projector 256 / predictor
64, one pass) is built on the same stream and timed in ONE process, one after the other, so the
ratios to finetuning (strategy ``none``) of the same model compare like with like. Each pair first
trains ``--warmup`` steps on experience 1 (filling the buffers), then the experience-2 boundary
runs (CaSSLe freezes its copy) and ``--steps`` steps of experience 2 are timed; this is repeated
``--repeats`` times, alternating over the pairs, and the minimum kept.

Usage:
    python benchmarks/cssl_step_cost.py --data-root ../shared/data/fashion-mnist [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from lifelong.config import RunConfig, resolve
from lifelong.methods.cssl import CSSL
from lifelong.running.run import build
from lifelong.running.train import batches

MODELS = ("simsiam", "byol")
STRATEGIES = ("none", "er", "lump", "minred", "cassle", "aep", "arp", "apre")


def config(data_root: str, model: str, strategy: str) -> RunConfig:
    """The benchmark sweep's settings for one pair."""
    method = {
        "name": "cssl", "ssl_model": model, "strategy": strategy, "passes": 1,
        "buffer_size": 200, "replay_batch_size": 16, "ssl_dim_proj": 256, "ssl_dim_pred": 64,
    }  # fmt: skip
    raw = {
        "method": method,
        "dataset": {"name": "seq-fmnist", "root": data_root, "test_subsample": 5},
        "backbone": {"name": "slim_resnet9"},
        "train": {"iters": 100, "batch_size": 16},
    }
    return resolve(raw, preset="none")


def time_pair(cfg: RunConfig, warmup: int, steps: int) -> float:
    """Seconds per step of experience 2 after ``warmup`` steps of experience 1."""
    built = build(cfg)
    method, stream, generator = built.method, built.stream, built.generator
    assert isinstance(method, CSSL)
    device = torch.device("cpu")
    method.train()
    method.before_experience(stream[0])
    for batch in batches(
        stream[0].train, warmup, 16, 8, stream.transform, False, generator, device, 0
    ):
        method.observe(batch)
    method.before_experience(stream[1])
    timed = list(
        batches(stream[1].train, steps, 16, 8, stream.transform, False, generator, device, 1)
    )
    start = time.perf_counter()
    for batch in timed:
        method.observe(batch)
    return (time.perf_counter() - start) / steps


def main() -> None:
    """Time every pair and print the table (also written as JSON with ``--out``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="../shared/data/fashion-mnist")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/cssl_step_cost.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pairs = [(m, s) for m in MODELS for s in STRATEGIES]
    best: dict[tuple[str, str], float] = {}
    for _ in range(args.repeats):
        for model, strategy in pairs:
            cfg = config(args.data_root, model, strategy)
            seconds = time_pair(cfg, args.warmup, args.steps)
            best[model, strategy] = min(seconds, best.get((model, strategy), float("inf")))
    print(f"{platform.processor() or platform.machine()}, {args.threads} thread(s)")
    print("| model | strategy | s / step | × none |")
    print("|---|---|---|---|")
    for model, strategy in pairs:
        ratio = best[model, strategy] / best[model, "none"]
        print(f"| {model} | {strategy} | {best[model, strategy]:.3f} | {ratio:.2f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    records = [{"model": m, "strategy": s, "seconds_per_step": best[m, s]} for m, s in pairs]
    args.out.write_text(json.dumps(records, indent=2) + "\n")


if __name__ == "__main__":
    main()
