"""AR1* with latent replay against native replay and CWR*, on the NIC Tiny-ImageNet-subset stream.

Three runs per seed through the ``lifelong`` command line (one process per run, one thread
each), then ``lifelong compare``, and a table of final accuracy and training time per
experience read from each run's ``results.json``:

* ``ar1_star`` with latent replay at MobileNetV1's ``conv5_4/dw`` (the reference's layer);
* ``ar1_star`` with native replay: the same memory size, patterns stored as images and passed
  through the frozen lower layers again at every replay;
* ``cwr_star``: the same network, no replay, only the head trains after the first experience.

The settings are ours, for a CPU and no pre-trained weights (the reference starts from ImageNet
weights, so it freezes the lower layers from the start and uses lr 0.001 / 5e-5, 4 epochs):
the stream cut into a first experience of 5 classes x 250 images and 35 one-class chunks of 250
(``dataset.nic_chunk=250``), images resized to 32×32, MobileNetV1 at width 0.5 trained from
scratch with its lower layers in the first experience (``train_lower``), norm momentum 0.1
(0.01 leaves the running statistics unconverged after the first experience's few steps),
8 epochs per experience, batch 128, lr 0.05 in the first experience and 0.0025 afterwards
(the reference's ratio of 20), batch-renorm momentum 0.01 afterwards (the reference's 5e-5
suits its lr of 5e-5; with our 50 times larger rate the running statistics of the trained
layers fall behind their weights and evaluation collapses to chance, as a first run showed),
memory 1,500 patterns.

By default the images are not augmented, as in the reference protocol (CORe50 has no
augmentation). Then the frozen lower layers give the same activations in every epoch, and
latent and native replay train on the same patterns: their accuracies should agree, and only
the cost differs. ``--augment`` keeps Tiny-ImageNet's random crop and flip: native replay then
draws a fresh augmentation of each stored image at every replay, while a latent pattern is the
activation of the one augmentation it was stored with.

``--held-out-pretraining`` is closer to the reference's protocol, where the lower layers come
from ImageNet, classes disjoint from CORe50's: the subset's classes 10-19 pre-train the network
(``finetune`` on one experience of those classes, 30 epochs, lr 0.05, batch 64, random crop and
flip), and the NIC stream is cut from classes 0-9 only (``dataset.classes``). Every run then
loads the pre-training run's checkpoint (``backbone.pretrained``) and keeps the layers below
``conv5_4/dw`` frozen from the start (``train_lower=false``), as ar1-pytorch does.

Usage:
    tar xzf ../shared/data/tiny-imagenet-200-sub20.tar.gz -C /tmp/tiny
    python benchmarks/ar1_table.py --data-root /tmp/tiny --seeds 0 --jobs 2
    python benchmarks/ar1_table.py --data-root /tmp/tiny --held-out-pretraining
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from run_table import Job, run_job, run_jobs

COMMON = [
    "--dataset", "nic-tinyimg", "--set", "dataset.image_size=32", "--set", "dataset.nic_chunk=250",
    "--backbone", "mobilenet_v1", "--set", "backbone.width=0.5",
    "--set", "backbone.norm_momentum=0.1", "--epochs", "8", "--batch-size", "128",
    "--lr", "0.05", "--set", "inc_update_rate=0.01", "--no-progress",
]  # fmt: skip
METHODS: dict[str, list[str]] = {
    "ar1_star-latent": ["--method", "ar1_star", "--set", "replay=latent"],
    "ar1_star-native": ["--method", "ar1_star", "--set", "replay=input"],
    "cwr_star": ["--method", "cwr_star"],
}


STREAM_CLASSES = "[0,1,2,3,4,5,6,7,8,9]"
PRETRAIN_CLASSES = "[10,11,12,13,14,15,16,17,18,19]"
PRETRAIN = [
    "--method", "finetune", "--dataset", "seq-tinyimg",
    "--set", f"dataset.classes={PRETRAIN_CLASSES}", "--set", "dataset.classes_per_experience=10",
    "--set", "dataset.image_size=32", "--backbone", "mobilenet_v1", "--set", "backbone.width=0.5",
    "--set", "backbone.norm_momentum=0.1",
    "--epochs", "30", "--batch-size", "64", "--lr", "0.05", "--no-progress",
]  # fmt: skip


def pretrain(data_root: str, out: Path) -> Path:
    """Pre-train MobileNetV1 on the held-out classes 10-19; return its checkpoint."""
    run_dir = out / "pretrain-held-out"
    job = Job("pre-training on classes 10-19", (*PRETRAIN, "--data-root", data_root), run_dir)
    print(run_job(job), flush=True)
    return run_dir / "checkpoint.pt"


def summary(root: Path) -> str:
    """Markdown rows: final accuracy and mean training seconds per experience of each run."""
    lines = ["| run | final class-IL accuracy | train s / experience (first, later mean) |"]
    lines.append("|---|---|---|")
    for results_file in sorted(root.glob("*/results.json")):
        results = json.loads(results_file.read_text())
        seconds = results["train_seconds"]
        accuracy = results["protocols"]["class-il"]["summary"]["average_accuracy"]
        later = sum(seconds[1:]) / max(1, len(seconds) - 1)
        lines.append(
            f"| {results_file.parent.name} | {accuracy:.2f} | {seconds[0]:.1f}, {later:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="/tmp/tiny")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--augment", action="store_true", help="keep Tiny-ImageNet's crop and flip (default: off)"
    )
    parser.add_argument("--inc-lr", default="0.0025", help="lr from the second experience on")
    parser.add_argument(
        "--held-out-pretraining",
        action="store_true",
        help="pre-train on classes 10-19, then learn the NIC stream of classes 0-9",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/ar1"))
    args = parser.parse_args()
    root = args.out / ("nic-tinyimg" if args.augment else "nic-tinyimg-plain")
    if args.inc_lr != "0.0025":
        root = root.with_name(f"{root.name}-inc_lr{args.inc_lr}")
    common = [*COMMON, "--set", f"inc_lr={args.inc_lr}"]
    common += [] if args.augment else ["--set", "dataset.augment=false"]
    if args.held_out_pretraining:
        checkpoint = pretrain(args.data_root, args.out)
        root = root.with_name(root.name + "-held-out-pretrained")
        common += ["--set", f"dataset.classes={STREAM_CLASSES}", "--set", "train_lower=false"]
        common += ["--set", f"backbone.pretrained={checkpoint}"]
    jobs = [
        Job(
            f"{method} seed {seed}",
            (*METHODS[method], *common, "--data-root", args.data_root, "--seed", str(seed)),
            root / f"{method}-seed{seed}",
        )
        for seed in args.seeds
        for method in args.methods
    ]
    run_jobs(jobs, args.jobs, root)
    print(summary(root))


if __name__ == "__main__":
    main()
