"""Continual-learning metrics as pure functions of the accuracy matrix.

``R[i, j]`` is the accuracy (in %) on the test set of experience ``j`` after training on
experience ``i``; rows not trained yet are NaN. ``initial[j]`` is the accuracy of the
untrained network on experience ``j`` (the baseline of forward transfer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _last_row(matrix: np.ndarray) -> int:
    trained = np.flatnonzero(~np.all(np.isnan(matrix), axis=1))
    if trained.size == 0:
        raise ValueError("the accuracy matrix has no trained row")
    return int(trained[-1])


def average_accuracy(matrix: np.ndarray) -> float:
    """Mean accuracy over experiences ``0..t`` after training experience ``t`` (the last row)."""
    t = _last_row(matrix)
    return float(np.mean(matrix[t, : t + 1]))


def average_incremental_accuracy(matrix: np.ndarray) -> float:
    """Mean over trained rows ``i`` of the average accuracy on experiences ``0..i`` (Rebuffi)."""
    t = _last_row(matrix)
    return float(np.mean([np.mean(matrix[i, : i + 1]) for i in range(t + 1)]))


def forgetting(matrix: np.ndarray) -> float:
    """Average forgetting (Chaudhry et al., 2018): mean over j < t of max_{i<t} R[i,j] - R[t,j].

    NaN when only one experience has been trained.
    """
    t = _last_row(matrix)
    if t == 0:
        return float("nan")
    drops = [np.max(matrix[j:t, j]) - matrix[t, j] for j in range(t)]
    return float(np.mean(drops))


def forgetting_per_experience(matrix: np.ndarray) -> list[float]:
    """Forgetting of each experience j at the last trained row t: max_{i<t} R[i,j] - R[t,j].

    NaN for the experiences not trained before the last one (j >= t).
    """
    t = _last_row(matrix)
    return [
        float(np.max(matrix[j:t, j]) - matrix[t, j]) if j < t else float("nan")
        for j in range(matrix.shape[1])
    ]


def stream_accuracy(matrix: np.ndarray, sizes: np.ndarray) -> float:
    """Accuracy on the union of the seen test sets: the last row weighted by test-set sizes.

    Args:
        matrix: The accuracy matrix.
        sizes: Test examples of each experience (equal sizes give :func:`average_accuracy`).
    """
    t = _last_row(matrix)
    weights = np.asarray(sizes[: t + 1], dtype=float)
    if weights.sum() == 0:
        return float("nan")
    return float(np.sum(matrix[t, : t + 1] * weights) / weights.sum())


def backward_transfer(matrix: np.ndarray) -> float:
    """BWT (Lopez-Paz & Ranzato, 2017): mean over j < t of R[t, j] - R[j, j]."""
    t = _last_row(matrix)
    if t == 0:
        return float("nan")
    return float(np.mean([matrix[t, j] - matrix[j, j] for j in range(t)]))


def forward_transfer(matrix: np.ndarray, initial: np.ndarray) -> float:
    """FWT (Lopez-Paz & Ranzato, 2017): mean over 0 < j <= t of R[j-1, j] - initial[j].

    NaN when fewer than two experiences are trained or future experiences were not evaluated.
    """
    t = _last_row(matrix)
    if t == 0:
        return float("nan")
    values = [matrix[j - 1, j] - initial[j] for j in range(1, t + 1)]
    return float(np.mean(values))


@dataclass(frozen=True)
class Summary:
    """The headline metrics of one protocol."""

    average_accuracy: float
    average_incremental_accuracy: float
    forgetting: float
    backward_transfer: float
    forward_transfer: float
    stream_accuracy: float


def summarize(matrix: np.ndarray, initial: np.ndarray, sizes: np.ndarray | None = None) -> Summary:
    """All metrics of one accuracy matrix (``sizes``: test examples per experience, or equal)."""
    return Summary(
        average_accuracy(matrix),
        average_incremental_accuracy(matrix),
        forgetting(matrix),
        backward_transfer(matrix),
        forward_transfer(matrix, initial),
        stream_accuracy(matrix, np.ones(matrix.shape[1]) if sizes is None else sizes),
    )
