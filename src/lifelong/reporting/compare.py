"""Compare finished runs: mean ± std over seeds per configuration, as tables and a bar plot.

A standard deviation is the sample std (n − 1) and needs two runs or more: one run is shown as
its value and ``n=1``, never as ``± 0.00``.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifelong.checkpoint import atomic_write_text, save_figure
from lifelong.config import flatten
from lifelong.errors import RunDirError
from lifelong.reporting.results import read_results
from lifelong.reporting.tables import csv_text

IGNORED = {"seed", "dataset.root", "dataset.download", "train.progress"}


@dataclass(frozen=True)
class Group:
    """Runs that differ only in their seed."""

    dataset: str
    label: str
    protocol: str
    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        """Mean final average accuracy."""
        return statistics.mean(self.values)

    @property
    def std(self) -> float | None:
        """Sample standard deviation (n − 1); None for a single run, which has none."""
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    def cell(self) -> str:
        """``mean ± std (n=N)``, or ``value (n=1)`` for one run."""
        spread = "" if self.std is None else f" ± {self.std:.2f}"
        return f"{self.mean:.2f}{spread} (n={len(self.values)})"


STD_NOTE = (
    "Mean ± sample standard deviation (n − 1) over seeds of the final average accuracy (%); "
    "a configuration with one run (n=1) has no standard deviation."
)
GROUP_COLUMNS = ("dataset", "configuration", "protocol", "n", "mean", "std", "values")
"""The columns of ``comparison.csv`` (``std`` empty for one run; ``values`` joined by ``;``)."""


def group_row(group: Group) -> dict[str, object]:
    """One row of a comparison CSV table for ``group``."""
    return {
        "dataset": group.dataset,
        "configuration": group.label,
        "protocol": group.protocol,
        "n": len(group.values),
        "mean": group.mean,
        "std": group.std,
        "values": ";".join(repr(float(v)) for v in group.values),
    }


def comparison_csv(groups: list[Group]) -> str:
    """CSV (long format): one row per dataset, configuration and protocol."""
    return csv_text(GROUP_COLUMNS, [group_row(g) for g in groups])


def find_runs(paths: list[Path]) -> list[dict[str, Any]]:
    """Completed results under ``paths`` (run directories or folders holding them)."""
    runs = []
    for path in paths:
        for results_file in sorted(path.rglob("results.json")) if path.is_dir() else []:
            results = read_results(results_file.parent)
            if results.get("completed"):
                runs.append(results)
    if not runs:
        raise RunDirError(f"no completed runs (results.json) under {', '.join(map(str, paths))}")
    return runs


def _varying(configs: list[dict[str, Any]], skip: set[str]) -> list[str]:
    """Keys whose values differ between ``configs``.

    Only keys every config has count: a run written before a field existed does not record it,
    and it ran with that field's behaviour before the field was added.
    """
    common = set.intersection(*(set(c) for c in configs)) if configs else set()
    keys = sorted(common - IGNORED - skip)
    return [k for k in keys if len({repr(c[k]) for c in configs}) > 1]


def group_runs(
    runs: list[dict[str, Any]], own_network: frozenset[str] = frozenset()
) -> list[Group]:
    """Group runs by dataset and configuration (seed aside).

    A group is labelled by its method, its backbone when backbones differ between runs, and the
    settings that differ between runs of the same method. Methods in ``own_network`` (GR, BI-R)
    build their own network, so their runs' backbone section is neither shown nor compared.
    """
    flat = [flatten(r["config"]) for r in runs]
    names = {"method.name", "dataset.name", "backbone.name"}
    backbones = {c["backbone.name"] for c in flat if c["method.name"] not in own_network}
    compared = [
        {k: v for k, v in c.items() if not k.startswith("backbone.")}
        if c["method.name"] in own_network
        else c
        for c in flat
    ]
    varying = {
        method: _varying([c for c in compared if c["method.name"] == method], names)
        for method in {c["method.name"] for c in flat}
    }
    grouped: dict[tuple[str, str, str], list[float]] = {}
    for results, config in zip(runs, flat, strict=True):
        method = config["method.name"]
        label = method
        if len(backbones) > 1 and method not in own_network:
            label += f" / {config['backbone.name']}"
        extras = ", ".join(f"{k}={config.get(k)}" for k in varying[method])
        label += f" ({extras})" if extras else ""
        for protocol, entry in results["protocols"].items():
            key = (config["dataset.name"], label, protocol)
            grouped.setdefault(key, []).append(entry["summary"]["average_accuracy"])
    return [Group(d, label, p, tuple(v)) for (d, label, p), v in sorted(grouped.items())]


def comparison_table(groups: list[Group]) -> str:
    """Markdown: one row per dataset and configuration, one column per protocol."""
    protocols = sorted({g.protocol for g in groups})
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for g in groups:
        cells.setdefault((g.dataset, g.label), {})[g.protocol] = g.cell()
    lines = ["| dataset | configuration | " + " | ".join(protocols) + " |"]
    lines.append("|---|---|" + "---|" * len(protocols))
    for (dataset, label), row in cells.items():
        values = " | ".join(row.get(p, "–") for p in protocols)
        lines.append(f"| {dataset} | {label} | {values} |")
    return "\n".join([*lines, "", STD_NOTE]) + "\n"


def comparison_plot(groups: list[Group], path: Path) -> Path:
    """Bar plot of mean final average accuracy, one panel per protocol.

    Error bars show the sample std of groups of two runs or more; a single run has none.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    protocols = sorted({g.protocol for g in groups})
    fig, axes = plt.subplots(1, len(protocols), figsize=(5 * len(protocols), 4), squeeze=False)
    for ax, protocol in zip(axes[0], protocols, strict=True):
        chosen = [g for g in groups if g.protocol == protocol]
        names = [f"{g.label}\n{g.dataset}" for g in chosen]
        ax.bar(
            range(len(chosen)),
            [g.mean for g in chosen],
            yerr=[g.std or 0.0 for g in chosen],
            capsize=4,
        )
        ax.set_xticks(range(len(chosen)), names, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("final average accuracy (%)")
        ax.set_ylim(0, 100)
        ax.set_title(protocol)
        ax.grid(axis="y", alpha=0.3)
    save_figure(fig, path, dpi=110, tight=True)
    plt.close(fig)
    return path


def write_comparison(groups: list[Group], out: Path) -> tuple[str, list[Path]]:
    """Write ``comparison.md``, ``comparison.csv`` and ``comparison.png`` into ``out``.

    Returns:
        The Markdown table and the paths written.
    """
    table = comparison_table(groups)
    paths = [out / "comparison.md", out / "comparison.csv"]
    atomic_write_text(paths[0], table)
    atomic_write_text(paths[1], comparison_csv(groups))
    paths.append(comparison_plot(groups, out / "comparison.png"))
    return table, paths
