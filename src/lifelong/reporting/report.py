"""Tables and plots of a run's results (``lifelong report RUN_DIR``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from lifelong.checkpoint import save_figure
from lifelong.reporting.results import matrix_of
from lifelong.reporting.run_details import (
    CONFUSION_PLOT,
    cost_table,
    forgetting_lines,
    last_confusion,
    per_class_table,
    write_confusion_plot,
)

PLOT_NAMES = ("accuracy_matrix.png", "accuracy_curves.png", CONFUSION_PLOT)
"""The plots :func:`write_plots` writes into a run folder (the confusion heatmap when the run
wrote confusion matrices)."""
SUMMARY_NAMES = {
    "average_accuracy": "avg acc",
    "average_incremental_accuracy": "avg inc acc",
    "forgetting": "forgetting",
    "backward_transfer": "BWT",
    "forward_transfer": "FWT",
    "stream_accuracy": "stream acc",
    "top5_accuracy": "top-5 acc",
}


def _fmt(value: float | None) -> str:
    return "  -  " if value is None or math.isnan(value) else f"{value:5.1f}"


def summary_table(results: dict[str, Any]) -> str:
    """One row per protocol with the summary metrics (percent)."""
    header = f"{'protocol':<10} " + " ".join(f"{n:>11}" for n in SUMMARY_NAMES.values())
    lines = [header, "-" * len(header)]
    for protocol, entry in results["protocols"].items():
        cells = " ".join(f"{_fmt(entry['summary'].get(k)):>11}" for k in SUMMARY_NAMES)
        lines.append(f"{protocol:<10} {cells}")
    return "\n".join(lines)


MAX_MATRIX_COLUMNS = 20
"""Longer streams print the average-accuracy curve instead of the whole matrix."""


def curve_table(matrix: np.ndarray, protocol: str) -> str:
    """Average accuracy over the seen experiences after each experience, ten per line."""
    n = matrix.shape[1]
    lines = [
        f"{protocol} average accuracy (%) over the experiences seen, after each of {n} "
        "experiences (the whole matrix is in results.json and the heatmap)"
    ]
    values = [float(np.nanmean(row[: i + 1])) for i, row in enumerate(matrix)]
    for start in range(0, len(values), 10):
        chunk = values[start : start + 10]
        label = f"{start + 1}-{start + len(chunk)}"
        lines.append(f"{label:>9} " + " ".join(f"{_fmt(v):>6}" for v in chunk))
    return "\n".join(lines)


def matrix_table(results: dict[str, Any], protocol: str) -> str:
    """The accuracy matrix of ``protocol``: row i = after training experience i.

    Streams longer than :data:`MAX_MATRIX_COLUMNS` get :func:`curve_table` instead.
    """
    matrix = matrix_of(results, protocol)
    n = matrix.shape[1]
    if n > MAX_MATRIX_COLUMNS:
        return curve_table(matrix[~np.all(np.isnan(matrix), axis=1)], protocol)
    lines = [f"{protocol} accuracy (%) — row: after experience, column: tested experience"]
    lines.append("after " + " ".join(f"{j + 1:>6}" for j in range(n)))
    for i, row in enumerate(matrix):
        if np.all(np.isnan(row)):
            continue
        lines.append(f"{i + 1:>5} " + " ".join(f"{_fmt(v):>6}" for v in row))
    return "\n".join(lines)


def full_report(results: dict[str, Any]) -> str:
    """Summary table, every accuracy matrix, then forgetting, per-class accuracy and cost."""
    config = results.get("config", {})
    title = (
        f"{config.get('method', {}).get('name', '?')} on "
        f"{config.get('dataset', {}).get('name', '?')}"
        f" — {results['experiences_trained']}/{results['num_experiences']} experiences, "
        f"{sum(results['train_seconds']):.1f}s training"
    )
    parts = [title, "", summary_table(results)]
    parts += ["", *(matrix_table(results, p) + "\n" for p in results["protocols"])]
    details = [forgetting_lines(results), per_class_table(results), cost_table(results)]
    parts += [text + "\n" for text in details if text]
    return "\n".join(parts).rstrip() + "\n"


def warm_up_figures() -> None:
    """Import matplotlib's backends and render one empty PNG and PDF page.

    Helper processes that draw at the end of a run call it while the run trains: the imports,
    fonts and caches then load off the run's critical path.
    """
    import io

    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 2))
    figure.subplots().set_title("warm-up")
    figure.savefig(io.BytesIO(), format="png")
    with PdfPages(io.BytesIO()) as pages:
        pages.savefig(figure)


def write_plots(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write ``accuracy_matrix.png``, ``accuracy_curves.png`` and ``confusion_matrix.png``.

    The confusion heatmap only when the run wrote the confusion counts of its last experience
    (runs written before they existed did not).

    Returns:
        The paths written.
    """
    confusion = last_confusion(results, out_dir)  # read (and checked) before anything is drawn
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    protocols = list(results["protocols"])
    fig, axes = plt.subplots(1, len(protocols), figsize=(4.2 * len(protocols), 3.8), squeeze=False)
    for ax, protocol in zip(axes[0], protocols, strict=True):
        matrix = matrix_of(results, protocol)
        image = ax.imshow(matrix, vmin=0, vmax=100, cmap="viridis")
        n = matrix.shape[0]
        if n <= 12:
            for i in range(n):
                for j in range(n):
                    if not np.isnan(matrix[i, j]):
                        color = "white" if matrix[i, j] < 60 else "black"
                        ax.text(
                            j,
                            i,
                            f"{matrix[i, j]:.0f}",
                            ha="center",
                            va="center",
                            fontsize=8,
                            color=color,
                        )
        ax.set_title(protocol)
        ax.set_xlabel("tested experience")
        ax.set_ylabel("after training experience")
        ax.set_xticks(range(n), [str(j + 1) for j in range(n)])
        ax.set_yticks(range(n), [str(i + 1) for i in range(n)])
        fig.colorbar(image, ax=ax, fraction=0.046, label="accuracy (%)")
    fig.tight_layout()
    heatmap = save_figure(fig, out_dir / PLOT_NAMES[0], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for protocol in protocols:
        matrix = matrix_of(results, protocol)
        trained = [i for i in range(matrix.shape[0]) if not np.all(np.isnan(matrix[i]))]
        means = [np.mean(matrix[i, : i + 1]) for i in trained]
        ax.plot([i + 1 for i in trained], means, marker="o", label=protocol)
    ax.set_xlabel("experiences trained")
    ax.set_ylabel("average accuracy on seen experiences (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    curves = save_figure(fig, out_dir / PLOT_NAMES[1], dpi=110)
    plt.close(fig)
    if confusion is None:
        return [heatmap, curves]
    last = results["experiences_trained"]
    return [heatmap, curves, write_confusion_plot(confusion, last, out_dir / CONFUSION_PLOT)]
