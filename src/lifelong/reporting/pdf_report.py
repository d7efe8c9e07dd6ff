"""A run's PDF report, like the BI-R code's ``--pdf``: accuracies, losses and generated samples.

Pages: test accuracy of every experience after each trained experience (one page per protocol,
with the average over the experiences seen so far), the step-log loss curves with experience
boundaries, and, for methods that generate inputs (:class:`Generates`), a grid of generated
samples per class. ``lifelong run --pdf`` writes it at the end of a run; ``lifelong report RUN
--pdf`` writes it for a finished run (rebuilding a generative method from its checkpoint).
"""

from __future__ import annotations

import io
import itertools
import json
import math
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from lifelong.checkpoint import atomic_write_bytes
from lifelong.reporting.results import matrix_of
from lifelong.reporting.run_details import confusion_figure, cost_table

REPORT_NAME = "report.pdf"
NOT_LOSSES = {"kind", "step", "experience", "epoch", "lr", "seconds"}
"""Keys of a step record that are not loss terms."""


@runtime_checkable
class Generates(Protocol):
    """A method that can generate inputs of the classes it has learned (generative replay)."""

    def generate(
        self, per_class: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``per_class`` generated images of each learned class: ``(x (N, C, H, W), y (N,))``.

        None when the method generates no images (BI-R's internal replay generates conv
        features; the reference skips the samples page then, too).
        """
        ...


def read_steps(metrics: Path) -> list[dict[str, Any]]:
    """The step records of a run's ``metrics.jsonl`` (empty when the file is missing)."""
    if not metrics.exists():
        return []
    records = (json.loads(line) for line in metrics.read_text().splitlines() if line.strip())
    return [record for record in records if record.get("kind") == "step"]


def generated_samples(
    method: torch.nn.Module, per_class: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Samples from ``method`` when it generates (in evaluation mode, no gradients), else None."""
    if not isinstance(method, Generates):
        return None
    was_training = method.training
    method.train(False)
    with torch.no_grad():
        samples = method.generate(per_class, torch.Generator().manual_seed(seed))
    method.train(was_training)
    if samples is None:
        return None
    x, y = samples
    return x.cpu(), y.cpu()


def write_pdf(
    results: dict[str, Any],
    steps: list[dict[str, Any]],
    out_path: Path,
    samples: tuple[torch.Tensor, torch.Tensor] | None = None,
    confusion: list[list[int]] | None = None,
) -> Path:
    """Write the report to ``out_path`` and return it.

    Args:
        results: A run's ``results.json`` content.
        steps: Its step records (see :func:`read_steps`).
        out_path: Where to write the PDF.
        samples: Generated ``(x, y)`` to show per class, or None.
        confusion: The confusion counts after the last trained experience, or None.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    buffer = io.BytesIO()
    with PdfPages(buffer) as pdf:
        for protocol in results["protocols"]:
            pdf.savefig(_accuracy_page(plt, matrix_of(results, protocol), protocol))
        if steps:
            pdf.savefig(_loss_page(plt, steps))
        if samples is not None and samples[0].dim() == 4:
            pdf.savefig(_samples_page(plt, *samples))
        if confusion:
            title = f"confusion after experience {results['experiences_trained']}"
            pdf.savefig(confusion_figure(confusion, title))
        if cost_table(results):
            pdf.savefig(_text_page(plt, "cost", cost_table(results)))
        plt.close("all")
    atomic_write_bytes(out_path, buffer.getvalue())
    return out_path


def _accuracy_page(plt: Any, matrix: np.ndarray, protocol: str) -> Any:
    """Accuracy of every experience after each trained one, and the average over seen ones."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    trained = [i for i in range(matrix.shape[0]) if not np.all(np.isnan(matrix[i]))]
    x = [i + 1 for i in trained]
    for j in range(matrix.shape[1]):
        ax.plot(x, [matrix[i, j] for i in trained], marker=".", alpha=0.6, label=f"exp {j + 1}")
    ax.plot(x, [np.mean(matrix[i, : i + 1]) for i in trained], "k-", linewidth=2.5, label="average")
    ax.set(xlabel="experiences trained", ylabel="test accuracy (%)", ylim=(0, 100))
    ax.set_title(f"{protocol}: accuracy per experience over training")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2 if matrix.shape[1] > 10 else 1, loc="lower left")
    fig.tight_layout()
    return fig


def _loss_page(plt: Any, steps: list[dict[str, Any]]) -> Any:
    """The logged loss and its terms over steps; dashed lines where an experience starts."""
    names = sorted({key for record in steps for key in record} - NOT_LOSSES)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in names:
        points = [(r["step"], r[name]) for r in steps if name in r and math.isfinite(r[name])]
        if points:
            ax.plot(
                *zip(*points, strict=True), label=name, linewidth=1.2 if name == "loss" else 0.8
            )
    starts = [r["step"] for a, r in itertools.pairwise(steps) if r["experience"] != a["experience"]]
    for step in starts:
        ax.axvline(step, color="grey", linestyle="--", linewidth=0.6)
    values = [r[n] for r in steps for n in names if n in r]
    if values and min(values) > 0:
        ax.set_yscale("log")
    ax.set(xlabel="step", ylabel="loss (mean over the logging interval)")
    ax.set_title("losses")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _samples_page(plt: Any, x: torch.Tensor, y: torch.Tensor) -> Any:
    """One row of generated samples per class, each image scaled to its own range."""
    classes = sorted(set(y.tolist()))
    per_class = max(int((y == c).sum()) for c in classes)
    fig, axes = plt.subplots(
        len(classes),
        per_class,
        figsize=(per_class * 0.8, len(classes) * 0.8 + 0.6),
        squeeze=False,
    )
    for row, label in enumerate(classes):
        images = x[y == label]
        for col in range(per_class):
            ax = axes[row][col]
            ax.axis("off")
            if col < len(images):
                image = images[col].float()
                image = (image - image.min()) / (image.max() - image.min()).clamp(min=1e-8)
                shown = image[0].numpy() if image.shape[0] == 1 else image.permute(1, 2, 0).numpy()
                ax.imshow(shown, cmap="gray" if image.shape[0] == 1 else None)
        axes[row][0].set_title(f"class {label}", fontsize=6, loc="left")
    fig.suptitle("generated samples per class")
    fig.tight_layout()
    return fig


def _text_page(plt: Any, title: str, text: str) -> Any:
    """A page holding ``text`` in a fixed-width font (the cost table)."""
    fig = plt.figure(figsize=(8.5, 4.5))
    fig.text(0.03, 0.92, title, fontsize=12, weight="bold")
    fig.text(0.03, 0.85, text, family="monospace", fontsize=7.5, va="top")
    return fig
