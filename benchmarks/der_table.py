"""Reproduce the MNIST part of the DER paper's result tables (Buzzega et al., NeurIPS 2020).

Runs SGD (fine-tuning), ER and DER++ (optionally DER and JOINT) with buffers 200 and 500 on
seq-mnist (class-IL), perm-mnist and rot-mnist (domain-IL) using the paper presets in
``configs/presets``, over several seeds, and writes a markdown table with our mean ± std beside
the paper's numbers. Finished runs are reused, so an interrupted table resumes.

Usage:
    python benchmarks/der_table.py --data-root ../shared/data/mnist --seeds 0 1 2 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

# Paper values: mean, std. Seq-MNIST from the paper's appendix table (class-IL); P-MNIST and
# R-MNIST from Table 2 (domain-IL). Transcribed by hand: check against the paper before citing.
PAPER: dict[tuple[str, str], tuple[float, float]] = {
    ("seq-mnist", "finetune"): (19.60, 0.04),
    ("seq-mnist", "joint"): (95.57, 0.24),
    ("seq-mnist", "er-200"): (80.43, 1.89),
    ("seq-mnist", "er-500"): (86.12, 1.89),
    ("seq-mnist", "der-200"): (84.55, 1.64),
    ("seq-mnist", "der-500"): (90.54, 1.18),
    ("seq-mnist", "derpp-200"): (85.61, 1.40),
    ("seq-mnist", "derpp-500"): (91.00, 1.49),
    ("perm-mnist", "finetune"): (40.70, 2.33),
    ("perm-mnist", "joint"): (94.33, 0.17),
    ("perm-mnist", "er-200"): (72.37, 0.87),
    ("perm-mnist", "er-500"): (80.60, 0.86),
    ("perm-mnist", "der-200"): (81.74, 1.07),
    ("perm-mnist", "der-500"): (87.29, 0.46),
    ("perm-mnist", "derpp-200"): (83.58, 0.59),
    ("perm-mnist", "derpp-500"): (88.21, 0.39),
    ("rot-mnist", "finetune"): (67.66, 8.53),
    ("rot-mnist", "joint"): (95.76, 0.04),
    ("rot-mnist", "er-200"): (85.01, 1.90),
    ("rot-mnist", "er-500"): (88.91, 1.44),
    ("rot-mnist", "der-200"): (90.04, 2.61),
    ("rot-mnist", "der-500"): (92.24, 1.12),
    ("rot-mnist", "derpp-200"): (90.43, 1.87),
    ("rot-mnist", "derpp-500"): (92.77, 1.05),
}
DATASETS = ("seq-mnist", "perm-mnist", "rot-mnist")
DEFAULT_PRESETS = ("finetune", "er-200", "er-500", "derpp-200", "derpp-500")


def run_one(job: tuple[str, str, int, str, Path]) -> tuple[str, str, int, float, float]:
    """Run one preset and seed (in a worker process); return its final average accuracy and time."""
    dataset, preset, seed, data_root, out = job
    import torch

    from lifelong.config import merge, resolve
    from lifelong.config.presets import load_preset
    from lifelong.data.scenarios import SCENARIOS
    from lifelong.reporting.results import read_results
    from lifelong.running.run import execute

    torch.set_num_threads(1)
    run_dir = out / dataset / preset / f"seed{seed}"
    if (run_dir / "results.json").exists():
        done = read_results(run_dir)
        if done["completed"]:
            return dataset, preset, seed, _final(done), sum(done["train_seconds"])
    raw = merge(SCENARIOS.get(dataset).defaults, load_preset(f"{dataset}/{preset}"))
    raw = merge(raw, {"dataset": {"root": data_root}, "seed": seed, "train": {"progress": False}})
    started = time.perf_counter()
    results = execute(resolve(raw, f"{dataset}/{preset}"), run_dir, tensorboard=False)
    return dataset, preset, seed, _final(results), time.perf_counter() - started


def _final(results: dict[str, object]) -> float:
    protocols = results["protocols"]
    assert isinstance(protocols, dict)
    protocol = "class-il" if "class-il" in protocols else "domain-il"
    return float(protocols[protocol]["summary"]["average_accuracy"])


def table(rows: list[tuple[str, str, int, float, float]], presets: tuple[str, ...]) -> str:
    """Markdown: one row per preset, per dataset ours (mean ± std, n) | paper | difference."""
    by_key: dict[tuple[str, str], list[float]] = {}
    for dataset, preset, _seed, acc, _sec in rows:
        by_key.setdefault((dataset, preset), []).append(acc)
    header = "| method | " + " | ".join(f"{d} ours | {d} paper | Δ" for d in DATASETS) + " |"
    lines = [header, "|" + "---|" * (1 + 3 * len(DATASETS))]
    for preset in presets:
        cells = []
        for dataset in DATASETS:
            values = by_key.get((dataset, preset), [])
            paper = PAPER.get((dataset, preset))
            if not values:
                cells += ["–", f"{paper[0]:.2f} ± {paper[1]:.2f}" if paper else "–", "–"]
                continue
            mean = statistics.mean(values)
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{mean:.2f} ± {std:.2f} (n={len(values)})")
            cells.append(f"{paper[0]:.2f} ± {paper[1]:.2f}" if paper else "–")
            cells.append(f"{mean - paper[0]:+.2f}" if paper else "–")
        lines.append(f"| {preset} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="../shared/data/mnist")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--presets", nargs="+", default=list(DEFAULT_PRESETS))
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument(
        "--jobs", type=int, default=2, help="parallel worker processes (1 thread each)"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/der_table"))
    args = parser.parse_args()
    jobs = [
        (d, p, s, args.data_root, args.out)
        for d in args.datasets
        for p in args.presets
        for s in args.seeds
    ]
    rows = []
    with ProcessPoolExecutor(args.jobs) as pool:
        for row in pool.map(run_one, jobs):
            rows.append(row)
            print(
                f"{row[0]:<11} {row[1]:<10} seed {row[2]}: {row[3]:6.2f}%  ({row[4]:.0f}s)",
                flush=True,
            )
    markdown = table(rows, tuple(args.presets))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(markdown + "\n")
    (args.out / "runs.json").write_text(json.dumps(rows, indent=1))
    print(markdown)


if __name__ == "__main__":
    main()
