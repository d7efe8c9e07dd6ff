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

Usage:
    python benchmarks/bir_table.py --scenario split-mnist --seeds 0 1 2 --jobs 2
    python benchmarks/bir_table.py --scenario perm-mnist --seeds 0 1 2 --jobs 2
    python benchmarks/bir_table.py --scenario split-mnist-task --seeds 0 1 2 --jobs 2
"""

from __future__ import annotations

import argparse
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
SCENARIOS = {
    "split-mnist": SPLIT_MNIST,
    "perm-mnist": PERM_MNIST,
    "split-mnist-task": SPLIT_MNIST_TASK,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="split-mnist", choices=list(SCENARIOS))
    parser.add_argument("--data-root", default="../shared/data/mnist")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=None, help="default: all")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/bir"))
    args = parser.parse_args()
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
