"""SARL and its SARL_Optim variants against ER and DER++, over seeds, on a short CPU schedule.

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
later experience. Each method runs on its own backbone kind: sparse (k-WTA) for SARL and
``sarl_enhanced``, GELU for the GELU variants.

Usage:
    python benchmarks/sarl_table.py --dataset seq-fmnist \
        --data-root ../shared/data/fashion-mnist --seeds 0 1 2 --jobs 2
    tar xzf ../shared/data/tiny-imagenet-200-sub20.tar.gz -C /tmp/tiny
    python benchmarks/sarl_table.py --dataset seq-tinyimg --data-root /tmp/tiny --jobs 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="seq-fmnist", choices=list(SETTINGS))
    parser.add_argument("--data-root", default="../shared/data/fashion-mnist")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/sarl"))
    args = parser.parse_args()
    root = args.out / args.dataset
    jobs = [
        Job(
            f"{method} seed {seed}",
            (
                "--method", method, "--dataset", args.dataset, "--data-root", args.data_root,
                "--seed", str(seed), *COMMON, *SETTINGS[args.dataset], *METHODS[method],
            ),
            root / f"{method}-seed{seed}",
        )
        for method in args.methods
        for seed in args.seeds
    ]  # fmt: skip
    run_jobs(jobs, args.jobs, root)


if __name__ == "__main__":
    main()
