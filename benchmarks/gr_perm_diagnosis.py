"""Why generative replay ends below finetuning on our permuted-MNIST schedule (issue 20).

Runs, on ``bir_table.py``'s ``perm-mnist`` schedule (10 permutations, 1000 iterations each),
GR as the BI-R code's ``--replay=generative`` (hard labels), GR with distillation (the previous
classifier's soft targets, ``distill``), and BI-R; then reads each finished run's checkpoint and
measures, per permutation:

* the generator's reconstruction error (BCE per pixel) on 1,000 test images of that
  permutation, which says which permutations the generator still models;
* how sure the final classifier is of the final generator's samples (mean max-softmax over
  1,000 samples, and the histogram of the labels it gives them) beside how sure it is of real
  test images of each permutation: replay labelled with confident answers on samples that look
  like no permutation teaches wrong answers;
* the classifier's accuracy on each permutation (the run's own last accuracy row).

Usage:
    python benchmarks/gr_perm_diagnosis.py --seeds 0 --jobs 1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from bir_table import PERM_MNIST
from lifelong.generative.internal_replay import vae_of
from lifelong.generative.replay import from_pixels, to_pixels
from lifelong.losses.vae import reconstruction_bce
from lifelong.methods.bir import BIR
from lifelong.methods.gr import GR
from lifelong.running.run import build, load_run_config, restore
from run_table import Job, run_jobs

ROWS = {
    "gr": PERM_MNIST["gr"],
    "gr_distill": [*PERM_MNIST["gr"], "--set", "distill=true"],
    "bir": PERM_MNIST["bir"],
}
TEST_IMAGES = 1000
SAMPLES = 1000


@torch.no_grad()
def diagnose(run_dir: Path) -> dict[str, object]:
    """Per-permutation generator reconstruction error and classifier confidence of a run."""
    cfg = load_run_config(run_dir)
    built = build(cfg)
    restore(built, run_dir / "checkpoint.pt")
    method = built.method.eval()
    stream, g = built.stream, torch.Generator().manual_seed(0)
    if isinstance(method, GR):
        vae, classify = method.vae, method.net
    elif isinstance(method, BIR):
        vae, classify = vae_of(method.net), method.net
    else:
        raise SystemExit(f"{run_dir}: not a gr or bir run")
    recon, confidence_real = [], []
    for experience in stream:
        x = stream.transform.normalize(experience.test.x[:TEST_IMAGES])
        _, mu, _ = vae.encode(x)
        context = experience.test.y[:TEST_IMAGES] if isinstance(method, BIR) else None
        decoded = vae.decode(mu, context)
        recon.append(float(reconstruction_bce(decoded, to_pixels(x, stream.transform))))
        confidence_real.append(float(torch.softmax(classify(x), 1).max(1).values.mean()))
    classes = torch.arange(stream.num_classes)
    pixels, _ = vae.sample(SAMPLES, classes, g)
    probabilities = torch.softmax(classify(from_pixels(pixels, stream.transform)), 1)
    labels = probabilities.argmax(1).bincount(minlength=stream.num_classes)
    results = json.loads((run_dir / "results.json").read_text())
    last_row = results["protocols"]["domain-il"]["matrix"][-1]
    return {
        "accuracy_per_permutation": last_row,
        "generator_recon_bce_per_permutation": recon,
        "classifier_confidence_real": confidence_real,
        "classifier_confidence_generated": float(probabilities.max(1).values.mean()),
        "generated_label_histogram": labels.tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="../shared/data/mnist")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/gr_perm_diagnosis"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    jobs = [
        Job(
            f"{row} seed {seed}",
            (
                *arguments,
                "--data-root",
                str(Path(args.data_root).resolve()),
                "--seed",
                str(seed),
                "--no-progress",
            ),
            args.out / f"{row}-seed{seed}",
        )
        for seed in args.seeds
        for row, arguments in ROWS.items()
        if row in args.rows
    ]
    run_jobs(jobs, args.jobs, args.out)
    report = {job.run_dir.name: diagnose(job.run_dir) for job in jobs}
    (args.out / "diagnosis.json").write_text(json.dumps(report, indent=2) + "\n")
    for name, entry in report.items():
        print(name)
        for key, value in entry.items():
            shown = [round(v, 3) for v in value] if isinstance(value, list) else value
            print(f"  {key}: {shown}")


if __name__ == "__main__":
    main()
