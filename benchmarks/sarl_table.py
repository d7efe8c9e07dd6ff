"""SARL, its SARL_Optim variants and SARL's lineage against ER and DER++, on a short CPU schedule.

Every method runs with the same schedule through the ``lifelong`` command line (one process
per run, ``--jobs`` at a time, one thread each), then ``lifelong compare`` writes the mean ± std
table and bar plot. Finished runs are skipped, so an interrupted table resumes.

The shared settings are ours: the SARL paper has no MNIST-family numbers, and its Tiny-ImageNet
schedule (100 epochs, full ResNet-18 width) does not fit a CPU. ``SETTINGS`` holds them per
dataset:

* MNIST family: 2 epochs per experience, batch 10, replay minibatch 10, buffer 200, lr 0.03.
* ``seq-tinyimg`` (any subset): 2 epochs per experience, batch 32, replay 32 (the paper's),
  buffer 200, lr 0.03, images resized once to 32×32, and the reduced ResNet-18 at width
  ``nf = 20`` (GEM's reduced ResNet-18) instead of the paper's 64: about 1/40 of the arithmetic
  per image, so a SARL run on the 20-class subset takes about 10 minutes on one core.

``warmup_epochs`` is 0, so SARL's distillation and semantic terms run in the second epoch of each
later experience. Each method runs on its own backbone kind: sparse (k-WTA) for SARL,
``sarl_enhanced`` and SCoMMER, GELU for the GELU variants.

``--methods lineage`` runs issue 16's methods (ER-ACE, GDumb, LUCIR, BiC, CLS-ER, SCoMMER, RPC
and the three X-DERs) beside ER, DER++ and SARL on the same schedule. Each keeps its own fields
from its ``seq-mnist/<method>-200`` preset (the published or adapted values cited there), except
lr, buffer size and replay minibatch, which are the shared ones; GDumb also keeps its lr and
batch, since it trains only on its memory with its own schedule. On ``seq-tinyimg``
``TINYIMG_FIELDS`` lowers the costliest of them (GDumb's passes, X-DER's SupCon views).

Usage:
    python benchmarks/sarl_table.py --dataset seq-fmnist \
        --data-root ../shared/data/fashion-mnist --seeds 0 1 2 --jobs 2
    tar xzf ../shared/data/tiny-imagenet-200-sub20.tar.gz -C /tmp/tiny
    python benchmarks/sarl_table.py --dataset seq-tinyimg --data-root /tmp/tiny --jobs 2
    python benchmarks/sarl_table.py --dataset seq-fmnist \
        --data-root ../shared/data/fashion-mnist --methods lineage --out benchmarks/out/lineage
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lifelong.config.presets import load_preset
from run_table import Job, run_jobs

COMMON = ["--preset", "none", "--buffer-size", "200", "--lr", "0.03", "--no-progress"]
MNIST_LIKE = ["--epochs", "2", "--batch-size", "10", "--minibatch-size", "10"]
SETTINGS: dict[str, list[str]] = {
    "seq-mnist": MNIST_LIKE,
    "seq-fmnist": MNIST_LIKE,
    "seq-tinyimg": [
        "--epochs", "2", "--batch-size", "32", "--minibatch-size", "32",
        "--set", "backbone.nf=20", "--set", "dataset.image_size=32",
    ],
}  # fmt: skip
SARL_FAMILY = ["--set", "warmup_epochs=0"]
METHODS: dict[str, list[str]] = {
    "er": [],
    "derpp": ["--alpha", "0.2", "--beta", "1.0"],
    "sarl": SARL_FAMILY,
    "sarl_enhanced": SARL_FAMILY,
    "sarl_enhanced_gelu": SARL_FAMILY,
    "sarl_enhanced_gelu_balanced": SARL_FAMILY,
}
LINEAGE = (
    "er", "derpp", "sarl", "er_ace", "gdumb", "lucir", "bic", "cls_er", "scommer", "rpc",
    "xder", "xder_rpc", "xder_ce",
)  # fmt: skip
"""``--methods lineage``: issue 16's methods beside ER, DER++ and SARL."""
SHARED_FIELDS = frozenset({"name", "lr", "buffer_size", "minibatch_size"})
"""Method fields the shared schedule sets; the others come from the method's seq-mnist preset."""
OWN_SCHEDULE = {"gdumb": frozenset({"name", "buffer_size"})}
"""Methods that train with their own lr and batch: only these fields are shared."""
PRESET_OF = {"xder_rpc": "xder", "xder_ce": "xder"}
"""Variants without presets of their own take their base method's."""
FIXED_IN_VARIANT = {
    "xder_rpc": frozenset({"lambd", "simclr_temp", "simclr_batch_size", "simclr_num_aug"}),
    "xder_ce": frozenset({"lambd", "simclr_temp", "simclr_batch_size", "simclr_num_aug"}),
}
"""Fields of the ``xder`` preset that the variants fix (SupCon off) and so do not take."""
TINYIMG_FIELDS: dict[str, list[str]] = {
    "gdumb": ["--set", "method.epochs_on_memory=32"],
    "xder": ["--set", "method.simclr_num_aug=2", "--set", "method.simclr_batch_size=32"],
}
"""CPU savings on ``seq-tinyimg`` (ours): GDumb's 32 passes over its memory after each experience
instead of 128 (1.6 x ER's image passes instead of 6.4 x); X-DER's SupCon on 2 views of 32 buffer
+ 32 stream images instead of 4 views of 64 + 32 (about 3 x ER's arithmetic per step, not 7 x)."""


def preset_fields(method: str, dataset: str) -> list[str]:
    """``--set`` flags for ``method``'s own fields, from its ``seq-mnist/<method>-200`` preset."""
    if method in METHODS:
        return METHODS[method]
    preset = load_preset(f"seq-mnist/{PRESET_OF.get(method, method)}-200")
    shared = OWN_SCHEDULE.get(method, SHARED_FIELDS) | FIXED_IN_VARIANT.get(method, frozenset())
    fields = {k: v for k, v in preset["method"].items() if k not in shared}
    flags = [part for k, v in fields.items() for part in ("--set", f"method.{k}={json.dumps(v)}")]
    if dataset != "seq-tinyimg" and "kw" in preset.get("backbone", {}):
        flags += ["--set", f"backbone.kw={json.dumps(preset['backbone']['kw'])}"]
    if dataset == "seq-tinyimg":
        flags += TINYIMG_FIELDS.get(method, [])
    return flags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="seq-fmnist", choices=list(SETTINGS))
    parser.add_argument("--data-root", default="../shared/data/fashion-mnist")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--methods", nargs="+", default=list(METHODS), choices=[*METHODS, *LINEAGE, "lineage"]
    )
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/sarl"))
    args = parser.parse_args()
    root = args.out / args.dataset
    methods = [m for name in args.methods for m in (LINEAGE if name == "lineage" else (name,))]
    jobs = [
        Job(
            f"{method} seed {seed}",
            (
                "--method", method, "--dataset", args.dataset, "--data-root", args.data_root,
                "--seed", str(seed), *COMMON, *SETTINGS[args.dataset],
                *preset_fields(method, args.dataset),
            ),
            root / f"{method}-seed{seed}",
        )
        for method in dict.fromkeys(methods)
        for seed in args.seeds
    ]  # fmt: skip
    run_jobs(jobs, args.jobs, root)


if __name__ == "__main__":
    main()
