"""Confusion matrices and per-class accuracy as pure functions of predictions and labels.

The evaluator counts them in the evaluation pass that computes the accuracy matrix (no second
pass over the test sets): :class:`PredictionTally` adds each test batch's predictions.
"""

from __future__ import annotations

import math

import torch

TOP_K = 5
TOP_K_MIN_CLASSES = 10
"""Top-5 accuracy is reported for streams of more than this many classes."""


def confusion_matrix(
    predictions: torch.Tensor, labels: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """Counts (K, K), int64: entry ``[i, j]`` is the number of examples of class i predicted j.

    Args:
        predictions: Predicted classes (N,), in ``0 .. num_classes - 1``.
        labels: True classes (N,), in the same range.
        num_classes: K.
    """
    index = labels.long() * num_classes + predictions.long()
    counts = torch.bincount(index, minlength=num_classes * num_classes)
    return counts.view(num_classes, num_classes)


def per_class_accuracy(confusion: torch.Tensor) -> list[float]:
    """Accuracy (%) of each true class (a row of ``confusion``); NaN for a class never tested."""
    totals = confusion.sum(dim=1).tolist()
    correct = confusion.diagonal().tolist()
    return [100.0 * c / n if n else math.nan for c, n in zip(correct, totals, strict=True)]


def top_k_correct(logits: torch.Tensor, labels: torch.Tensor, k: int = TOP_K) -> torch.Tensor:
    """How many examples have their label among the ``k`` highest logits (a 0-d tensor)."""
    top = logits.topk(min(k, logits.shape[1]), dim=1).indices
    return (top == labels[:, None]).any(dim=1).sum()


class PredictionTally:
    """Confusion counts (and top-5 hits) accumulated on the device over test batches.

    Args:
        num_classes: Output units of the model (K).
        device: Where the counts live (no host synchronisation until :meth:`confusion`).
    """

    def __init__(self, num_classes: int, device: torch.device) -> None:
        self.num_classes = num_classes
        self._counts = torch.zeros(num_classes * num_classes, dtype=torch.long, device=device)
        self._top_k = torch.zeros((), dtype=torch.long, device=device)
        self.examples = 0

    @property
    def counts_top_k(self) -> bool:
        """Whether top-5 accuracy is counted (more than ten classes)."""
        return self.num_classes > TOP_K_MIN_CLASSES

    def add(self, logits: torch.Tensor, predictions: torch.Tensor, labels: torch.Tensor) -> None:
        """Count one batch: its logits (N, K), argmax predictions (N,) and labels (N,)."""
        self._counts += confusion_matrix(predictions, labels, self.num_classes).view(-1)
        if self.counts_top_k:
            self._top_k += top_k_correct(logits, labels)
        self.examples += len(labels)

    def confusion(self) -> torch.Tensor:
        """The (K, K) confusion counts so far, on the CPU."""
        return self._counts.view(self.num_classes, self.num_classes).cpu()

    def top_k_accuracy(self) -> float:
        """Top-5 accuracy (%) so far; NaN with ten classes or fewer, or nothing counted."""
        if not self.counts_top_k or not self.examples:
            return math.nan
        return 100.0 * int(self._top_k) / self.examples
