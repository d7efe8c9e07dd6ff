"""The GPU speed suite of issue 19: DER++ on seq-cifar10 and AR1* on CORe50 NICv2-391.

* DER++ with the DER paper's seq-cifar10 settings (``configs/presets/seq-cifar10/derpp-500``:
  ResNet-18, 5 experiences × 50 epochs, batch 32 + 32 + 32 replayed). Target: ≤ 10 min on an
  H100/H200-class GPU.
* AR1* on the CORe50 NICv2-391 preset (``configs/presets/core50-nicv2-391/ar1_star``). Target:
  ≤ 6 min at 77 ± 1 % (needs the real CORe50 and the ImageNet MobileNetV1 weights).

Each runs once in this process with ``--device`` (default ``cuda``), ``--precision`` (default
``bf16``: ``torch.autocast``) and optionally ``--compile``; the script prints wall time, training
images per second and the peak device memory of each, and writes them to
``benchmarks/out/gpu_suite.json``. The loop keeps each experience's images on the device,
augments there and reads losses every ``log_every`` steps only.

Without CIFAR-10 on the machine, ``--synthetic-cifar10`` writes random images in the official
python-pickle layout (50,000 + 10,000, the real sizes) to a temporary folder: the speed is the
real workload's, the accuracy means nothing. ``--epochs`` shortens the schedule; ``--smoke``
checks the whole path on a CPU in about a minute (``--device cpu --synthetic-cifar10 --smoke``:
four classes, one epoch, a narrow ResNet-18; its numbers mean nothing). The AR1* row runs only
with ``--core50-root``.

Usage (on the GPU machine):
    python benchmarks/gpu_suite.py --cifar10-root /data/cifar10 --core50-root /data/core50 \\
        --mobilenet-weights /data/mobilenet_v1_imagenet.pth
    python benchmarks/gpu_suite.py --synthetic-cifar10 --compile
"""

from __future__ import annotations

import argparse
import json
import pickle
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PRESETS = REPO / "configs" / "presets"
CIFAR10_TRAIN, CIFAR10_TEST = 50_000, 10_000


def write_synthetic_cifar10(root: Path, seed: int = 0) -> None:
    """Random images and labels in CIFAR-10's official layout under ``root``."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sizes = {f"data_batch_{i}": CIFAR10_TRAIN // 5 for i in range(1, 6)}
    sizes["test_batch"] = CIFAR10_TEST
    for name, n in sizes.items():
        content = {
            b"data": rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8),
            b"labels": rng.integers(0, 10, n).tolist(),
        }
        (folder / name).write_bytes(pickle.dumps(content, protocol=2))
    names = [f"class_{i}".encode() for i in range(10)]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}, protocol=2))


def preset(name: str) -> dict[str, Any]:
    """A preset's raw fields."""
    import yaml

    raw: dict[str, Any] = yaml.safe_load((PRESETS / f"{name}.yaml").read_text())
    return raw


def timed_run(raw: dict[str, Any], name: str, run_dir: Path) -> dict[str, Any]:
    """Run ``raw`` and return its wall time, images per second, peak memory and accuracy."""
    import torch

    from lifelong.config import resolve
    from lifelong.running.run import execute

    device = torch.device(raw["device"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    results = execute(resolve(raw, name), run_dir, tensorboard=False)
    wall = time.perf_counter() - started
    train_seconds = sum(results["train_seconds"])
    images = sum(results["train_images"])
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    protocols = results["protocols"]
    protocol = "class-il" if "class-il" in protocols else "domain-il"
    return {
        "wall_seconds": wall,
        "train_seconds": train_seconds,
        "train_images_per_second": images / train_seconds,
        "peak_device_mib": peak,
        "protocol": protocol,
        "final_average_accuracy": protocols[protocol]["summary"]["average_accuracy"],
    }


def configure(raw: dict[str, Any], args: argparse.Namespace, root: str) -> dict[str, Any]:
    """The suite's settings over a preset: device, precision, compile, data, schedule."""
    raw = {**raw, "device": args.device, "seed": 0}
    raw["dataset"] = {**raw["dataset"], "root": root}
    train = {**raw.get("train", {}), "precision": args.precision, "compile": args.compile}
    if args.epochs is not None:
        train["epochs"] = args.epochs
    raw["train"] = {**train, "progress": False}
    if args.smoke:
        raw["train"]["epochs"] = 1
        raw["dataset"] = {**raw["dataset"], "classes": [0, 1, 2, 3], "classes_per_experience": 2}
        raw["dataset"]["test_subsample"] = 5
        raw["backbone"] = {**raw["backbone"], "nf": 20}
    return raw


def main() -> None:
    """Run the suite and print one line per workload."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    parser.add_argument("--compile", action="store_true", help="torch.compile the network")
    parser.add_argument("--cifar10-root", help="folder holding cifar-10-batches-py/")
    parser.add_argument("--synthetic-cifar10", action="store_true")
    parser.add_argument("--core50-root", help="folder holding CORe50 (the AR1* row)")
    parser.add_argument("--mobilenet-weights", help="ImageNet MobileNetV1 weights for AR1*")
    parser.add_argument("--epochs", type=int, help="epochs per experience instead of the preset's")
    parser.add_argument("--smoke", action="store_true", help="4 classes, 1 epoch, narrow ResNet")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/out/gpu_suite.json")
    args = parser.parse_args()
    if args.cifar10_root is None and not args.synthetic_cifar10:
        parser.error("give --cifar10-root PATH or --synthetic-cifar10")
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        cifar_root = args.cifar10_root
        if cifar_root is None:
            cifar_root = str(Path(scratch) / "cifar10")
            write_synthetic_cifar10(Path(cifar_root))
        raw = configure(preset("seq-cifar10/derpp-500"), args, cifar_root)
        rows["derpp seq-cifar10"] = timed_run(raw, "seq-cifar10/derpp-500", Path(scratch) / "d")
        if args.core50_root is not None:
            raw = configure(preset("core50-nicv2-391/ar1_star"), args, args.core50_root)
            if args.mobilenet_weights is not None:
                raw["backbone"] = {**raw["backbone"], "pretrained": args.mobilenet_weights}
            rows["ar1_star core50-nicv2-391"] = timed_run(
                raw, "core50-nicv2-391/ar1_star", Path(scratch) / "a"
            )
    import torch

    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    for name, row in rows.items():
        peak = "-" if row["peak_device_mib"] is None else f"{row['peak_device_mib']:.0f} MiB"
        print(
            f"{name}: {row['wall_seconds']:.1f} s wall, {row['train_images_per_second']:.0f} "
            f"training images/s, peak device memory {peak}, {row['protocol']} "
            f"{row['final_average_accuracy']:.2f} % ({device_name}, {args.precision}"
            f"{', compiled' if args.compile else ''})"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"device": device_name, "precision": args.precision, "compile": args.compile}
    meta["synthetic_cifar10"] = args.synthetic_cifar10
    meta["python"] = platform.python_version()
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
