"""Cost of one training step of every DER-paper baseline relative to ER, in ONE process.

Seq-MNIST, MLP 2 x 100, one thread. Each method is built with its seq-mnist paper preset at one
buffer size (methods without a preset there use their defaults), then all of them train the same
warm-up batches of experiences 0-3 (so memories, buffers, Fisher matrices and anchors exist),
and finally the same timed batches of experience 4 are fed to each method in turn, interleaved
batch by batch, so a change of machine load hits every method alike. The table gives the median
``observe`` time over ER's, and the time of the work each method does at an experience boundary
(``after_experience``: EWC's Fisher, iCaRL's herding, HAL's anchors, ...) in ER steps.

Usage:
    python benchmarks/method_step_cost.py --data-root ../shared/data/mnist --buffer 200
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import yaml

import lifelong.components  # noqa: F401  (fills the registries)
from lifelong.backbones import BACKBONES
from lifelong.backbones.mlp import MLPConfig
from lifelong.data.catalog import build_stream
from lifelong.data.scenarios import DatasetConfig
from lifelong.data.stream import Stream
from lifelong.methods.base import METHODS, Method, MethodContext
from lifelong.running.train import batches

PRESETS = Path(__file__).resolve().parents[1] / "configs" / "presets" / "seq-mnist"
METHOD_NAMES = (
    "er", "finetune", "der", "derpp", "ewc", "ewc_online", "si", "lwf", "lwf_mc", "agem", "gem",
    "gss", "icarl", "fdr", "hal", "mer",
)  # fmt: skip


def preset_fields(name: str, buffer: int) -> dict[str, Any]:
    """The method section of ``name``'s seq-mnist preset (buffer ``buffer``), or no fields."""
    for candidate in (PRESETS / f"{name}-{buffer}.yaml", PRESETS / f"{name}.yaml"):
        if candidate.is_file():
            fields = dict(yaml.safe_load(candidate.read_text())["method"])
            fields.pop("name")
            return fields
    return (
        {"buffer_size": buffer}
        if "buffer_size" in METHODS.get(name).config_cls.__dataclass_fields__
        else {}
    )


def build(name: str, stream: Stream, buffer: int) -> Method:
    """``name`` on a fresh MLP 2 x 100 (seed 0)."""
    torch.manual_seed(0)
    net = BACKBONES.get("mlp").build(
        MLPConfig(hidden=(100, 100)), stream.image_shape, stream.num_classes
    )
    ctx = MethodContext(
        net, stream.num_classes, stream.image_shape, stream.transform, torch.device("cpu"),
        torch.Generator().manual_seed(0),
    )  # fmt: skip
    entry = METHODS.get(name)
    return entry.build(entry.make_config(preset_fields(name, buffer)), ctx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="../shared/data/mnist")
    parser.add_argument("--buffer", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--warm-steps", type=int, default=30, help="steps per warm-up experience")
    parser.add_argument("--timed-steps", type=int, default=40)
    parser.add_argument("--methods", nargs="+", default=list(METHOD_NAMES))
    args = parser.parse_args()
    torch.set_num_threads(1)
    cpu = torch.device("cpu")
    stream = build_stream(DatasetConfig(name="seq-mnist", root=args.data_root), 0)
    methods = {name: build(name, stream, args.buffer) for name in args.methods}
    boundary: dict[str, list[float]] = {name: [] for name in methods}
    for t in range(4):
        order = torch.Generator().manual_seed(t)
        data = list(batches(stream[t].train, args.warm_steps, args.batch_size, 4,
                            stream.transform, False, order, cpu, t))  # fmt: skip
        for name, method in methods.items():
            method.train()
            method.before_experience(stream[t])
            for batch in data:
                method.observe(batch)
            start = time.perf_counter()
            method.after_experience(stream[t])
            boundary[name].append(time.perf_counter() - start)
    for method in methods.values():
        method.before_experience(stream[4])
    timed = list(batches(stream[4].train, args.timed_steps, args.batch_size, 4, stream.transform,
                         False, torch.Generator().manual_seed(9), cpu, 4))  # fmt: skip
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    for batch in timed:
        for name, method in methods.items():
            start = time.perf_counter()
            method.observe(batch)
            seconds[name].append(time.perf_counter() - start)
    er = statistics.median(seconds["er"]) if "er" in seconds else 1.0
    print(f"seq-mnist, buffer {args.buffer}, batch {args.batch_size}, one thread; ER = 1")
    print("| method | step / ER step | boundary work / ER step (mean of 4) |")
    print("|---|---|---|")
    for name in methods:
        step = statistics.median(seconds[name]) / er
        edge = statistics.mean(boundary[name]) / er
        print(f"| {name} | {step:.2f} | {edge:.0f} |")


if __name__ == "__main__":
    main()
