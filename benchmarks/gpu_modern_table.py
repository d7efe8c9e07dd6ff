"""Issue 16's methods beside ER, DER++ and SARL on seq-cifar10, seq-cifar100 and seq-tinyimg (GPU).

The day a GPU is available this table is one command: every ``configs/presets/<dataset>/<method>-
<buffer>.yaml`` that exists for the methods below (the papers' or authors' published settings,
cited in each preset) runs over the seeds, one run at a time on the device, resumably (finished
runs are read back, an interrupted one starts again), and the script prints our class-IL mean ±
std beside the published number with the acceptance rule of issues 15 and 16 (within the
published std or 3 points, whichever is larger). Each run also reports its wall time and peak
device memory in ``runs.json``.

Data: CIFAR-10 / CIFAR-100 in the official python-pickle layout and Tiny-ImageNet in its official
folder layout, one ``--data-root`` each (``--download`` fetches CIFAR where allowed).

``--smoke`` checks the whole path on a CPU in a few minutes (``SMOKE``: one epoch on four classes
in two experiences, 32×32 images, a narrow ResNet-18, every 5th test image), on whichever
datasets have a root (e.g. the Tiny-ImageNet subset in ``../shared/data``); its numbers mean
nothing.

Usage (on the GPU machine):
    python benchmarks/gpu_modern_table.py --device cuda \\
        --root seq-cifar10=/data/cifar10 --root seq-cifar100=/data/cifar100 \\
        --root seq-tinyimg=/data/tiny-imagenet-200 --seeds 0 1 2
    python benchmarks/gpu_modern_table.py --smoke --root seq-tinyimg=/tmp/tiny --seeds 0
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from der_table import existing_presets, run_config, table

DATASETS = ("seq-cifar10", "seq-cifar100", "seq-tinyimg")
METHODS = (
    "er", "derpp", "sarl", "er_ace", "gdumb", "lucir", "bic", "cls_er", "scommer", "rpc",
    "xder", "xder_rpc", "xder_ce",
)  # fmt: skip
BUFFERS = (200, 500)
_V, _U = True, False  # verified against the source's own text / recalled or secondary
SMOKE: dict[str, object] = {
    "train": {"epochs": 1},
    "dataset": {"classes": [0, 1, 2, 3], "classes_per_experience": 2, "test_subsample": 5},
    "backbone": {"nf": 20},
}
"""``--smoke`` overrides of every preset: a minute per run on a CPU."""
PUBLISHED: dict[tuple[str, str], tuple[float, float, bool]] = {}
"""Published class-IL accuracy (mean, std, verified) per (dataset, preset), from each preset's
header; the source of each number is cited there."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root",
        action="append",
        default=[],
        metavar="DATASET=PATH",
        help="data folder of one dataset (repeat); datasets without one are left out",
    )
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--buffers", type=int, nargs="+", default=list(BUFFERS))
    parser.add_argument("--download", action="store_true", help="fetch CIFAR if missing")
    parser.add_argument("--smoke", action="store_true", help="a minute per run on the CPU")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/gpu_modern"))
    args = parser.parse_args()
    roots = dict(part.split("=", 1) for part in args.root)
    unknown = set(roots) - set(DATASETS)
    if unknown or not roots:
        parser.error(f"--root takes one of {', '.join(DATASETS)} as DATASET=PATH")
    device = "cpu" if args.smoke else args.device
    out = args.out / ("smoke" if args.smoke else "full")
    jobs = [
        (dataset, f"{method}-{buffer}")
        for dataset in DATASETS
        if dataset in roots
        for method in args.methods
        for buffer in args.buffers
        if f"{method}-{buffer}" in existing_presets(dataset)
    ]
    missing = [
        f"{d}/{m}-{b}"
        for d in DATASETS
        if d in roots
        for m in args.methods
        for b in args.buffers
        if f"{m}-{b}" not in existing_presets(d)
    ]
    if missing:
        print("no preset, left out: " + ", ".join(missing), flush=True)
    rows, costs = [], []
    for dataset, preset in jobs:
        for seed in args.seeds:
            run_dir = out / dataset / preset / f"seed{seed}"
            accuracy, seconds, peak = run_preset(
                dataset, preset, seed, roots[dataset], device, args, run_dir
            )
            rows.append((dataset, preset, seed, accuracy, seconds))
            costs.append({"dataset": dataset, "preset": preset, "seed": seed, "peak_gb": peak})
            print(
                f"{dataset:<12} {preset:<16} seed {seed}: {accuracy:6.2f}%  "
                f"({seconds:.0f}s, peak device memory {peak:.2f} GB)",
                flush=True,
            )
    presets = tuple(dict.fromkeys(p for _, p in jobs))
    datasets = tuple(d for d in DATASETS if d in roots)
    markdown = table(rows, presets, PUBLISHED, datasets)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(markdown + "\n")
    (out / "runs.json").write_text(json.dumps({"rows": rows, "costs": costs}, indent=1))
    print(markdown)


def run_preset(
    dataset: str,
    preset: str,
    seed: int,
    root: str,
    device: str,
    args: argparse.Namespace,
    run_dir: Path,
) -> tuple[float, float, float]:
    """One preset and seed on ``device``; returns accuracy, wall seconds and peak device GB."""
    import torch

    from lifelong.config import merge
    from lifelong.config.presets import load_preset
    from lifelong.data.scenarios import SCENARIOS

    raw = merge(SCENARIOS.get(dataset).defaults, load_preset(f"{dataset}/{preset}"))
    overrides: dict[str, object] = {
        "dataset": {"root": root, "download": args.download},
        "seed": seed,
        "device": device,
        "train": {"progress": False},
    }
    raw = merge(raw, overrides)
    if args.smoke:
        smoke = merge(SMOKE, {"dataset": {"image_size": 32}} if dataset == "seq-tinyimg" else {})
        raw = merge(raw, smoke)
    on_gpu = device.startswith("cuda")
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    accuracy, _train_seconds = run_config(raw, f"{dataset}/{preset}", run_dir)
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated() / 2**30 if on_gpu else 0.0
    return accuracy, seconds, peak


if __name__ == "__main__":
    main()
