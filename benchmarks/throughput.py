"""Throughput: the library's end-to-end training time against the bare compute floor.

For each workload, in ONE process on the same machine:

* end-to-end: ``lifelong.running.train.fit`` with everything a real run does per step and
  per experience boundary (batch gathering and normalisation/augmentation, reservoir sampling
  and insertion, step logging to ``metrics.jsonl`` and TensorBoard, NaN checks, evaluation
  after every experience, a checkpoint and ``results.json`` at every boundary). Dataset
  decoding and the final plots are one-time costs, reported separately, not included.
* compute floor: the same number of optimiser steps of the same network on pre-loaded,
  pre-normalised tensors of the same batch shape (current batch + replayed minibatch):
  ``zero_grad, forward, cross-entropy, backward, step`` and nothing else.

The ratio end-to-end / floor is what the library costs on top of the arithmetic. Each side is
timed ``--repeats`` times (alternating) and the minimum is kept.

Usage:
    python benchmarks/throughput.py --data-root ../shared/data/mnist [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812

from lifelong.config import RunConfig, merge, resolve
from lifelong.config.presets import load_preset
from lifelong.data.catalog import CIFAR10
from lifelong.data.scenarios import SCENARIOS
from lifelong.data.stream import Experience, Stream
from lifelong.data.tensors import ImageSet
from lifelong.running.run import Built, build, train_into
from lifelong.running.train import FitState


def end_to_end(cfg: RunConfig, built: Built, run_dir: Path) -> tuple[float, int]:
    """Time the run loop with logging and per-boundary checkpoints; return (seconds, steps)."""
    start = time.perf_counter()
    state = train_into(built, cfg, run_dir, FitState())
    return time.perf_counter() - start, state.step


def compute_floor(cfg: RunConfig, stream: Stream, steps: int, rows: int) -> float:
    """Time ``steps`` bare SGD steps of a fresh copy of the network on pre-loaded tensors."""
    built = build(cfg, stream)
    net, optimizer = built.method.net, built.method.optimizer
    data = stream[0].train
    pool = 64
    index = torch.randint(0, len(data), (pool, rows))
    xs = [stream.transform.normalize(data.x[i]) for i in index]
    ys = [data.y[i] for i in index]
    net.train()
    start = time.perf_counter()
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(xs[step % pool]), ys[step % pool])
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def synthetic_cifar_stream(per_class: int, seed: int) -> Stream:
    """CIFAR-10-shaped random data: 5 experiences x 2 classes, 3x32x32 uint8, crop + flip."""
    generator = torch.Generator().manual_seed(seed)
    experiences = []
    for t in range(5):
        classes = (2 * t, 2 * t + 1)
        y = torch.tensor(classes).repeat_interleave(per_class)
        train = ImageSet(
            torch.randint(0, 256, (len(y), 3, 32, 32), generator=generator, dtype=torch.uint8), y
        )
        test = ImageSet(train.x[: len(y) // 4].clone(), y[: len(y) // 4].clone())
        experiences.append(Experience(t, classes, train, test))
    return Stream(
        "cifar10-shaped", tuple(experiences), 10, "class-il", CIFAR10, tuple(map(str, range(10)))
    )


def measure(name: str, cfg: RunConfig, stream: Stream | None, repeats: int) -> dict[str, object]:
    """Alternate end-to-end and floor runs; keep the fastest of each."""
    e2e_times, floor_times = [], []
    setup = 0.0
    steps = 0
    for _ in range(repeats):
        start = time.perf_counter()
        built = build(cfg, stream)
        setup = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as tmp:
            seconds, steps = end_to_end(cfg, built, Path(tmp))
        e2e_times.append(seconds)
        rows = cfg.train.batch_size + getattr(cfg.method, "minibatch_size", 0)
        floor_times.append(compute_floor(cfg, built.stream, steps, rows))
    e2e, floor = min(e2e_times), min(floor_times)
    return {
        "workload": name,
        "steps": steps,
        "end_to_end_s": round(e2e, 3),
        "floor_s": round(floor, 3),
        "ratio": round(e2e / floor, 3),
        "setup_s": round(setup, 3),
        "all_end_to_end_s": [round(t, 3) for t in e2e_times],
        "all_floor_s": [round(t, 3) for t in floor_times],
    }


def mnist_config(data_root: str) -> RunConfig:
    raw = merge(SCENARIOS.get("seq-mnist").defaults, load_preset("seq-mnist/er-200"))
    return resolve(merge(raw, {"dataset": {"root": data_root}, "train": {"progress": False}}))


def cifar_config(steps_per_experience: int) -> RunConfig:
    raw = {
        "method": {"name": "er", "lr": 0.1, "buffer_size": 200, "minibatch_size": 32},
        "dataset": {"name": "seq-digits"},
        "backbone": {"name": "resnet18"},
        "train": {
            "epochs": 1,
            "iters": steps_per_experience,
            "batch_size": 32,
            "progress": False,
            "log_every": 10,
        },
    }
    return resolve(raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="../shared/data/mnist")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--resnet-steps", type=int, default=4, help="ResNet steps per experience")
    parser.add_argument("--skip-resnet", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/throughput.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [
        measure(
            "ER seq-mnist MLP (batch 10 + replay 10)",
            mnist_config(args.data_root),
            None,
            args.repeats,
        )
    ]
    if not args.skip_resnet:
        cfg = cifar_config(args.resnet_steps)
        rows.append(
            measure(
                "ER ResNet-18 CIFAR-10-shaped (batch 32 + replay 32)",
                cfg,
                synthetic_cifar_stream(50, 0),
                args.repeats,
            )
        )
    threads = torch.get_num_threads()
    machine = (
        f"{platform.machine()} {platform.processor()} torch {torch.__version__}, {threads} threads"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    print(f"machine: {machine}")
    print("| workload | steps | end-to-end (s) | floor (s) | ratio |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['workload']} | {row['steps']} | {row['end_to_end_s']} | "
            f"{row['floor_s']} | {row['ratio']} |"
        )


if __name__ == "__main__":
    main()
