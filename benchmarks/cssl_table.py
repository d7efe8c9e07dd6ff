"""Continual-SSL benchmark table: each strategy against finetuning, per SSL model, with CPU time.

Reads the run directories a continual-SSL sweep wrote (``configs/sweeps/cssl-fmnist.yaml`` or
``cssl-tinyimg.yaml``, laid out as ``OUT/<model>/method.strategy=<name>/seed<N>``) and prints a
markdown table per SSL model: the final joint probe accuracy (class-IL, every test image of the
stream; mean ± sample std over seeds), the average accuracy over the stream (mean over t of the
probe accuracy on experiences 0..t after experience t), forgetting, the difference to finetuning
(strategy ``none``) in units of the larger of the two seed-to-seed stds, and the training time
per step (training seconds of the run over its steps; probing excluded). A sweep's
``random_encoder`` experiment (``train_encoder: false``) is printed first as the reference point,
and a ``<model>_iid`` experiment (``iid: true``) as the model's last row, its ceiling.

    python benchmarks/cssl_table.py benchmarks/out/cssl-fmnist [--markdown FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

STRATEGIES = ("none", "er", "lump", "minred", "cassle", "aep", "arp", "apre")
IID_SUFFIX = "_iid"
"""A sweep's ``<model>_iid`` experiment: strategy none on the IID stream (``iid: true``)."""
CEILING = "IID ceiling (none, iid)"
"""The row label of that experiment, the table's upper bound."""


@dataclass(frozen=True)
class Cell:
    """One strategy of one SSL model over seeds."""

    final: list[float]
    stream: list[float]
    forgetting: list[float]
    seconds_per_step: list[float]

    @staticmethod
    def mean_std(values: list[float]) -> tuple[float, float]:
        """Mean and sample std (0 for a single value)."""
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return statistics.fmean(values), std


def read_cell(folder: Path) -> Cell | None:
    """Collect the finished seeds under ``folder`` (None when there are none)."""
    final, stream, forgetting, per_step = [], [], [], []
    for results_file in sorted(folder.glob("seed*/results.json")):
        results = json.loads(results_file.read_text())
        if not results.get("completed"):
            continue
        summary = results["protocols"]["class-il"]["summary"]
        final.append(summary["average_accuracy"])
        stream.append(summary["average_incremental_accuracy"])
        forgetting.append(summary["forgetting"])
        per_step.append(sum(results["train_seconds"]) / results["steps"])
    return Cell(final, stream, forgetting, per_step) if final else None


def format_model(name: str, cells: dict[str, Cell]) -> list[str]:
    """The markdown rows of one SSL model."""
    lines = [
        f"**{name}**",
        "",
        "| strategy | final probe acc. | stream avg. acc. | forgetting | Δ final vs none "
        "(in stds) | s / step | seeds |",
        "|---|---|---|---|---|---|---|",
    ]
    base = cells.get("none")
    for strategy, cell in cells.items():
        final, final_std = Cell.mean_std(cell.final)
        stream, stream_std = Cell.mean_std(cell.stream)
        forget, forget_std = Cell.mean_std(cell.forgetting)
        step, _ = Cell.mean_std(cell.seconds_per_step)
        delta = "–"
        if base is not None and strategy != "none":
            base_mean, base_std = Cell.mean_std(base.final)
            scale = max(final_std, base_std)
            ratio = f" ({(final - base_mean) / scale:+.1f})" if scale > 0 else ""
            delta = f"{final - base_mean:+.2f}{ratio}"
        lines.append(
            f"| {strategy} | {final:.2f} ± {final_std:.2f} | {stream:.2f} ± {stream_std:.2f} | "
            f"{forget:.2f} ± {forget_std:.2f} | {delta} | {step:.3f} | {len(cell.final)} |"
        )
    return [*lines, ""]


def main() -> None:
    """Print (and optionally write) the table of a sweep's output folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the sweep's output folder")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    lines: list[str] = []
    random_encoder = read_cell(args.out / "random_encoder")
    if random_encoder is not None:
        final, std = Cell.mean_std(random_encoder.final)
        lines += [
            f"Random encoder, never trained (`train_encoder: false`): final probe accuracy "
            f"{final:.2f} ± {std:.2f} ({len(random_encoder.final)} seeds).",
            "",
        ]
    folders = [p.name for p in args.out.iterdir() if p.is_dir() and p.name != "random_encoder"]
    for model in sorted({name.removesuffix(IID_SUFFIX) for name in folders}):
        cells = {}
        for strategy in STRATEGIES:
            cell = read_cell(args.out / model / f"method.strategy={strategy}")
            if cell is not None:
                cells[strategy] = cell
        ceiling = read_cell(args.out / f"{model}{IID_SUFFIX}")
        if ceiling is not None:
            cells[CEILING] = ceiling
        if cells:
            lines += format_model(model, cells)
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
