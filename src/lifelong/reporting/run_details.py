"""What a run's report adds to its accuracy matrices: cost, per-class accuracy, confusion.

Text tables for the terminal (``lifelong run``'s end-of-run report and ``lifelong report``) and
the confusion-matrix heatmap of the last experience (``confusion_matrix.png``, also a page of
the PDF report). Every function reads only what ``results.json`` and ``confusion/after_<k>.csv``
hold, so results written before these fields existed still report (without them).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from lifelong.checkpoint import save_figure
from lifelong.errors import RunDirError
from lifelong.reporting.tables import confusion_path

CONFUSION_PLOT = "confusion_matrix.png"
MAX_TEXT_EXPERIENCES = 20
"""Longer streams print the cost totals only (every experience is in results.json)."""
MAX_TEXT_CLASSES = 100
"""More classes: the per-class accuracies are left to ``per_class_accuracy.csv``."""
MAX_ANNOTATED_CLASSES = 12
"""Heatmaps of up to this many classes print the counts in their cells."""


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def cost_table(results: dict[str, Any]) -> str:
    """The run's cost: totals, then train/eval seconds and images per experience.

    Empty for results written before the cost was recorded.
    """
    cost = results.get("cost")
    if not cost:
        return ""
    device = cost.get("peak_device_mib")
    lines = [
        f"cost: training {_number(cost['train_seconds'], 2)} s, evaluation "
        f"{_number(cost['eval_seconds'], 2)} s, {_number(cost['images_per_second'], 0)} training "
        f"images/s, peak memory {_number(cost['peak_rss_mib'], 0)} MiB (process RSS)"
        + (f", peak GPU memory {_number(device, 0)} MiB" if device is not None else "")
    ]
    train, evaluation = results["train_seconds"], results.get("eval_seconds", [])
    images = results.get("train_images", [])
    if len(train) > MAX_TEXT_EXPERIENCES or not (len(train) == len(evaluation) == len(images)):
        return lines[0]
    lines.append(f"{'experience':>10} {'train s':>9} {'eval s':>9} {'images':>8} {'images/s':>9}")
    for k, (t, e, n) in enumerate(zip(train, evaluation, images, strict=True)):
        rate = n / t if t > 0 else math.nan
        lines.append(f"{k + 1:>10} {t:>9.3f} {e:>9.3f} {n:>8} {_number(rate, 0):>9}")
    return "\n".join(lines)


def forgetting_lines(results: dict[str, Any]) -> str:
    """Forgetting of each experience at the end, one line per protocol (short streams)."""
    lines = []
    for protocol, entry in results["protocols"].items():
        values = entry.get("forgetting_per_experience")
        if values and len(values) <= MAX_TEXT_EXPERIENCES:
            cells = " ".join(f"{_number(v):>6}" for v in values)
            lines.append(f"{protocol} forgetting per experience (%): {cells}")
    return "\n".join(lines)


def per_class_table(results: dict[str, Any]) -> str:
    """Accuracy of every class after the last trained experience, ten classes per line."""
    per_class = results.get("per_class_accuracy")
    if not per_class or not per_class["after"]:
        return ""
    last = per_class["after"][-1]
    title = (
        f"{per_class['protocol']} accuracy per class (%) after experience {len(per_class['after'])}"
    )
    if len(last) > MAX_TEXT_CLASSES:
        return f"{title}: {len(last)} classes, see per_class_accuracy.csv"
    lines = [title]
    for start in range(0, len(last), 10):
        chunk = last[start : start + 10]
        label = f"{start}-{start + len(chunk) - 1}"
        lines.append(f"{label:>9} " + " ".join(f"{_number(v):>6}" for v in chunk))
    return "\n".join(lines)


def read_confusion(path: Path) -> list[list[int]]:
    """Read ``confusion/after_<k>.csv`` (as :func:`lifelong.reporting.tables.confusion_text`).

    Raises:
        RunDirError: When the file is not a square table of counts.
    """
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
        counts = [[int(cell) for cell in row[1:]] for row in rows[1:]]
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as err:
        raise RunDirError(f"{path} is not a confusion matrix of counts ({err})") from err
    if not counts or any(len(row) != len(counts) for row in counts):
        raise RunDirError(f"{path} is not a square confusion matrix: write it again with a run")
    return counts


def confusion_figure(confusion: list[list[int]], title: str) -> Any:
    """A heatmap of row-normalised counts (each true class sums to 1), counts in small cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    counts = np.asarray(confusion, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    k = len(confusion)
    size = min(3.0 + 0.35 * k, 12.0)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    image = ax.imshow(shares, vmin=0, vmax=1, cmap="Blues")
    if k <= MAX_ANNOTATED_CLASSES:
        for i in range(k):
            for j in range(k):
                color = "white" if shares[i, j] > 0.6 else "black"
                text = f"{int(counts[i, j])}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color=color)
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    if k <= 2 * MAX_ANNOTATED_CLASSES:
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class")
    fig.tight_layout()
    return fig


def write_confusion_plot(confusion: list[list[int]], experience: int, path: Path) -> Path:
    """Write the heatmap of the confusion counts after 1-based ``experience`` to ``path``."""
    import matplotlib.pyplot as plt

    fig = confusion_figure(confusion, f"confusion after experience {experience}")
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


def last_confusion(results: dict[str, Any], run_dir: Path) -> list[list[int]] | None:
    """The confusion counts after the run's last trained experience (None if not written)."""
    path = confusion_path(run_dir, results["experiences_trained"])
    return read_confusion(path) if path.exists() else None
