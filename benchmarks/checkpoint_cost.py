"""Checkpoint cost on a long stream: every experience versus the automatic cadence.

A long stream (like CORe50 NICv2-391's 391 experiences) used to write a full checkpoint and
``results.json`` after every experience. The stream here is permuted MNIST with many experiences
on a small MNIST written in the official IDX format (so that evaluation stays cheap and the
checkpoints dominate), with a wide MLP (2 x 3000 hidden units: a 45 MB checkpoint, like a reduced
ResNet-18's 45 MB and MobileNetV1's 32 MB, at a fraction of their compute on a CPU).
This script runs the same short run twice in ONE process: once with
``train.checkpoint_every=1`` (the old behaviour) and once with the default automatic cadence
(``0``: about 20 checkpoints per stream, the last always). It prints the checkpoints written
(each with a ``results.json``), their bytes and the wall time, and whether both runs end with the
same accuracy matrices.

Usage:
    python benchmarks/checkpoint_cost.py [--experiences 100] [--hidden 3000]
"""

from __future__ import annotations

import argparse
import gzip
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import lifelong.running.run
from lifelong.checkpoint import save_checkpoint
from lifelong.config import merge, resolve
from lifelong.running.run import execute


def timed_run(raw: dict[str, Any], every: int, run_dir: Path) -> dict[str, Any]:
    """Run ``raw`` with ``checkpoint_every=every``; count checkpoints and bytes written."""
    written = {"count": 0, "bytes": 0}

    def counting_save(path: Path, payload: dict[str, Any]) -> None:
        save_checkpoint(path, payload)
        written["count"] += 1
        written["bytes"] += path.stat().st_size

    lifelong.running.run.save_checkpoint = counting_save  # type: ignore[assignment]
    try:
        cfg = resolve(merge(raw, {"train": {"checkpoint_every": every}}))
        start = time.perf_counter()
        results = execute(cfg, run_dir, tensorboard=False)
        seconds = time.perf_counter() - start
    finally:
        lifelong.running.run.save_checkpoint = save_checkpoint
    return {**written, "seconds": seconds, "final": results["protocols"]}


def write_small_mnist(root: Path, per_class: int) -> None:
    """Random MNIST-shaped images, ``per_class`` per digit in each split, as gzipped IDX files."""
    rng = np.random.default_rng(0)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix in ("train", "t10k"):
        labels = np.repeat(np.arange(10, dtype=np.uint8), per_class)
        images = rng.integers(0, 256, (labels.size, 28, 28), dtype=np.uint8)
        for kind, array in (("images-idx3-ubyte", images), ("labels-idx1-ubyte", labels)):
            dims = b"".join(d.to_bytes(4, "big") for d in array.shape)
            header = bytes([0, 0, 0x08, array.ndim]) + dims
            (raw / f"{prefix}-{kind}.gz").write_bytes(gzip.compress(header + array.tobytes()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=2, help="images per digit and split")
    parser.add_argument("--experiences", type=int, default=100)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=3000, help="width of the MLP's 2 layers")
    args = parser.parse_args()
    torch.set_num_threads(1)
    raw = {
        "method": {"name": "er", "buffer_size": 200},
        "dataset": {
            "name": "perm-mnist",
            "root": "",
            "n_experiences": args.experiences,
        },
        "backbone": {"name": "mlp", "hidden": [args.hidden, args.hidden]},
        "train": {
            "iters": args.iters,
            "batch_size": 10,
            "progress": False,
            "evaluate_future": False,
        },
    }
    print(f"machine: {platform.processor() or platform.machine()}, 1 thread")
    setting = f"ER, MLP 2 x {args.hidden}, {args.iters} iters"
    print(f"perm-mnist x {args.experiences} experiences, {setting}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        write_small_mnist(Path(tmp) / "mnist", args.per_class)
        raw["dataset"]["root"] = str(Path(tmp) / "mnist")
        for every, label in ((1, "every experience (before)"), (0, "automatic (after)")):
            rows.append((label, timed_run(raw, every, Path(tmp) / str(every))))
    print("| checkpoints | count | checkpoint MB written | wall s |")
    print("|---|---|---|---|")
    for label, row in rows:
        print(f"| {label} | {row['count']} | {row['bytes'] / 1e6:.1f} | {row['seconds']:.1f} |")
    same = rows[0][1]["final"] == rows[1][1]["final"]
    print(f"same accuracy matrices: {same}")


if __name__ == "__main__":
    main()
