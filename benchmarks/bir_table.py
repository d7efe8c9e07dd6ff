"""Generative replay, BI-R, SI and the feature-exaggeration extensions over seeds (spec ``bir.md``).

Every run goes through the ``lifelong`` command line (one process per run, ``--jobs`` at a time,
one thread each). ``lifelong compare`` then writes the mean ± std table and bar plot of each
scenario. Finished runs are skipped, so an interrupted table resumes.

Scenarios:

* ``split-mnist``: ``seq-mnist``, class-IL, with the BI-R code's split-MNIST settings (presets
  ``seq-mnist/{si,gr,bir,bir_si}``): 5 experiences x 2000 iterations, batch 128, Adam lr 1e-3,
  fully connected 784-400-400. "finetune" is the BI-R code's "None" baseline: the SI network and
  optimiser with ``c = 0``. The extensions run on top of BI-R + SI with the fork's default
  weights, as in the fork.
* ``perm-mnist``: domain-IL, a CPU schedule of ours. The reference runs 100 permutations of
  32x32 MNIST with 2000 iterations, batch 256, lr 1e-4 and 2000-unit layers, which is about
  200,000 steps of a network 15 times larger. Here: 10 permutations of 28x28 MNIST
  (``dataset.n_experiences=10``), 1000 iterations each, batch 128, lr 1e-4, 400-unit layers.
* ``split-mnist-task``: BI-R trained for task-IL as the reference's ``--scenario=task``
  (``method.task_il``: each experience's own output units, one replay per earlier task), with
  and without XdG gating of 80 % of the encoder's hidden units per task (Masse et al. 2018's
  proportion), on the split-MNIST settings above; compare with the task-IL row of the class-IL
  ``bir`` runs of ``split-mnist``.

* ``tinyimg-colour``: BI-R's colour pipeline (the paper's CIFAR-100 protocol) on the
  Tiny-ImageNet subset, as CIFAR is not on this machine. BI-R's conv layers (C3-5x16-bn) are
  pre-trained with ``lifelong pretrain`` on the subset's classes 10-19 (as the paper pre-trains
  on CIFAR-10 for CIFAR-100), then frozen for every method, which learn classes 0-9 class-IL in
  5 experiences of 2 at 32x32 without augmentation: finetune and SI on the ``conv_mlp``
  backbone (conv layers then 2000-2000, Adam lr 1e-4), GR with classifier and generator behind
  the conv layers, BI-R and BI-R + SI with the presets ``seq-cifar100/{bir,bir_si}``. A CPU
  schedule of ours: 200 iterations of batch 128 per experience (the paper: 5000 of 256).

Usage:
    python benchmarks/bir_table.py --scenario split-mnist --seeds 0 1 2 --jobs 2
    python benchmarks/bir_table.py --scenario perm-mnist --seeds 0 1 2 --jobs 2
    python benchmarks/bir_table.py --scenario split-mnist-task --seeds 0 1 2 --jobs 2
    tar xzf ../shared/data/tiny-imagenet-200-sub20.tar.gz -C /tmp/tiny
    python benchmarks/bir_table.py --scenario tinyimg-colour --data-root /tmp/tiny --jobs 2
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from run_table import Job, run_jobs

COMMON = ["--no-progress"]
EXTENSIONS: dict[str, list[str]] = {
    "repulsion": ["--set", "repulsion=true"],
    "recon": [
        "--set", "recon_repulsion=true", "--set", "recon_attraction=true",
        "--set", "recon_rep_aver=true",
    ],
    "contrastive": ["--set", "contrastive=true", "--set", "c_scores=true"],
    "not_hidden": ["--set", "not_hidden=true"],
}  # fmt: skip
SPLIT_MNIST: dict[str, list[str]] = {
    "finetune": ["--preset", "seq-mnist/si", "--set", "c=0"],
    "si": ["--preset", "seq-mnist/si"],
    "gr": ["--preset", "seq-mnist/gr"],
    "bir": ["--preset", "seq-mnist/bir"],
    "bir_si": ["--preset", "seq-mnist/bir_si"],
    **{f"bir_si-{name}": ["--preset", "seq-mnist/bir_si", *on] for name, on in EXTENSIONS.items()},
}  # fmt: skip
PERM_SCHEDULE = [
    "--dataset", "perm-mnist", "--set", "dataset.n_experiences=10", "--iters", "1000",
    "--batch-size", "128", "--lr", "0.0001",
]  # fmt: skip
PERM_MNIST: dict[str, list[str]] = {
    "finetune": [
        "--preset", "seq-mnist/si", *PERM_SCHEDULE, "--set", "c=0",
    ],
    "si": ["--preset", "seq-mnist/si", *PERM_SCHEDULE, "--set", "c=10"],
    "gr": ["--preset", "seq-mnist/gr", *PERM_SCHEDULE],
    "bir": ["--preset", "seq-mnist/bir", *PERM_SCHEDULE],
    "bir_si": ["--preset", "seq-mnist/bir_si", *PERM_SCHEDULE, "--set", "si_c=1"],
}  # fmt: skip
SPLIT_MNIST_TASK: dict[str, list[str]] = {
    "bir_task": ["--preset", "seq-mnist/bir", "--set", "task_il=true"],
    "bir_task_xdg": ["--preset", "seq-mnist/bir", "--set", "task_il=true", "--set", "xdg_prop=0.8"],
}  # fmt: skip
CONV_FILE = Path("benchmarks/out/bir_colour/conv-tinyimg-10-19.pt")
"""BI-R's conv layers pre-trained on the subset's classes 10-19 (``--pretrain`` writes it)."""
PRETRAIN = [
    "pretrain", "--dataset", "seq-tinyimg", "--classes", *map(str, range(10, 20)),
    "--image-size", "32", "--epochs", "50", "--out", str(CONV_FILE),
]  # fmt: skip
"""``lifelong pretrain`` arguments (the BI-R code's Adam lr 1e-4, batch 256, crop + flip)."""
COLOUR_SCHEDULE = [
    "--dataset", "seq-tinyimg", "--set", f"dataset.classes=[{','.join(map(str, range(10)))}]",
    "--set", "dataset.classes_per_experience=2", "--set", "dataset.image_size=32",
    "--set", "dataset.shuffle_classes=false", "--set", "dataset.augment=false",
    "--iters", "200", "--batch-size", "128", "--lr", "0.0001",
]  # fmt: skip
FROZEN_BACKBONE = [
    "--backbone", "conv_mlp", "--set", f"backbone.pretrained={CONV_FILE}",
    "--set", "backbone.freeze_conv=true",
]  # fmt: skip
FROZEN_CONV = ["--set", f"pretrained_conv={CONV_FILE}"]
TINYIMG_COLOUR: dict[str, list[str]] = {
    "finetune": [
        "--method", "si", *FROZEN_BACKBONE, *COLOUR_SCHEDULE, "--set", "optimizer=adam",
        "--set", "c=0",
    ],
    "si": [
        "--method", "si", *FROZEN_BACKBONE, *COLOUR_SCHEDULE, "--set", "optimizer=adam",
        "--set", "c=1",
    ],
    "gr": [
        "--method", "gr", *COLOUR_SCHEDULE, *FROZEN_CONV, "--set", "conv_depth=5",
        "--set", "fc_units=2000", "--set", "h_dim=2000",
    ],
    "bir": ["--preset", "seq-cifar100/bir", *COLOUR_SCHEDULE, *FROZEN_CONV],
    "bir_si": ["--preset", "seq-cifar100/bir_si", *COLOUR_SCHEDULE, *FROZEN_CONV],
}  # fmt: skip
SCENARIOS = {
    "split-mnist": SPLIT_MNIST,
    "perm-mnist": PERM_MNIST,
    "split-mnist-task": SPLIT_MNIST_TASK,
    "tinyimg-colour": TINYIMG_COLOUR,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="split-mnist", choices=list(SCENARIOS))
    parser.add_argument("--data-root", default="../shared/data/mnist")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=None, help="default: all")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/bir"))
    parser.add_argument(
        "--pretrain", action="store_true", help="tinyimg-colour: pre-train the conv layers first"
    )
    args = parser.parse_args()
    if args.scenario == "tinyimg-colour" and (args.pretrain or not CONV_FILE.exists()):
        pretrain = [sys.executable, "-m", "lifelong", *PRETRAIN, "--data-root", args.data_root]
        subprocess.run([*pretrain, "--no-progress"], check=True)
    table = SCENARIOS[args.scenario]
    methods = args.methods or list(table)
    root = args.out / args.scenario
    jobs = [
        Job(
            f"{method} seed {seed}",
            (*table[method], "--data-root", args.data_root, "--seed", str(seed), *COMMON),
            root / f"{method}-seed{seed}",
        )
        for seed in args.seeds
        for method in methods
    ]
    run_jobs(jobs, args.jobs, root)


if __name__ == "__main__":
    main()
