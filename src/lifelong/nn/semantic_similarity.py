"""A learned similarity between two class prototypes (SARL_Optim ``sarl_enhanced``, spec §2.1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


class SemanticSimilarity(nn.Module):
    """``S(a, b) = sigmoid(MLP([a; b]))``: 2D → 128 → 64 → 1 with ReLU and dropout 0.1.

    Args:
        feature_dim: Prototype dimension D.
        hidden: Widths of the two hidden layers.
        dropout: Dropout after each hidden layer (active only in train mode).
    """

    def __init__(
        self, feature_dim: int, hidden: tuple[int, int] = (128, 64), dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(2 * feature_dim, hidden[0]),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden[0], hidden[1]),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden[1], 1),
        )

    def logits(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid scores of the pairs ``(a[i], b[i])``: (N, D), (N, D) → (N,)."""
        scores: torch.Tensor = self.layers(torch.cat([a, b], dim=1))
        return scores.squeeze(1)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Similarities in (0, 1) of the pairs ``(a[i], b[i])``: (N, D), (N, D) → (N,)."""
        return torch.sigmoid(self.logits(a, b))


def similarity_targets(prototypes: torch.Tensor, threshold: float) -> torch.Tensor:
    """Training targets of :class:`SemanticSimilarity`: ``cos(p_i, p_j) > threshold`` as 0/1.

    Args:
        prototypes: Learned class prototypes (K, D).
        threshold: SARL's grouping threshold (``sim_thresh``).

    Returns:
        Float matrix (K, K); the diagonal is 1 (a class is similar to itself).
    """
    cosine = F.cosine_similarity(prototypes[:, None, :], prototypes[None, :, :], dim=2, eps=1e-6)
    targets = (cosine > threshold).float()
    targets.fill_diagonal_(1.0)
    return targets


@torch.no_grad()
def soft_semantic_weights(
    similarity: SemanticSimilarity,
    running: torch.Tensor,
    prototypes: torch.Tensor,
    learned: torch.Tensor,
    anchors: list[int],
) -> torch.Tensor:
    """Weights of the semantic ratio from ``S``: ``w[c, r] = S(running_c, p_r)``.

    ``c`` runs over the ``anchors`` (the new classes of the warm-up pass); ``p_r`` is the stored
    prototype of a learned class or the running prototype of an anchor. ``S`` runs without
    dropout (the reference leaves it on, which makes the weights noisy).

    Args:
        similarity: The trained network ``S``.
        running: Running prototypes (C, D) of the current experience's classes.
        prototypes: Stored prototypes (C, D).
        learned: Bool mask (C,) of the classes with a stored prototype.
        anchors: The new classes.

    Returns:
        (C, C) weights, 0 outside the anchor rows and on ``c = r``.
    """
    classes = len(prototypes)
    weights = torch.zeros(classes, classes, device=prototypes.device)
    if not anchors:
        return weights
    candidates = torch.nonzero(learned).flatten().tolist() + anchors
    table = torch.where(learned[:, None], prototypes, running)
    rows_of = torch.tensor(anchors, device=weights.device)
    columns = torch.tensor(candidates, device=weights.device)
    rows = rows_of.repeat_interleave(len(columns))
    pairs = columns.repeat(len(rows_of))
    similarity.train(False)
    weights[rows, pairs] = similarity(running[rows], table[pairs])
    weights[rows_of, rows_of] = 0.0
    return weights


@torch.no_grad()
def replay_importance(
    scores: torch.Tensor, adaptive_temp: float, balance_alpha: float, min_score: float
) -> torch.Tensor:
    """Replay sampling weights of buffer items from their similarity scores (balanced SARL).

    For item ``i``, ``s_i = S(f_i, p_{y_i})`` (its stored feature against its class
    prototype; 0.5 without one). The threshold is adaptive, the mean of ``s`` over the buffer,
    and group membership is soft, ``m_i = sigmoid((s_i - mean(s)) / adaptive_temp)``, giving
    G = 2 groups of sizes ``n_1 = sum m`` and ``n_0 = sum (1 - m)``. Then::

        balance_i = m_i (G / n_1) + (1 - m_i) (G / n_0)
        importance_i = balance_i ** balance_alpha / (max(s_i, min_score) + 1e-6)

    Items far from their class prototype and items of the smaller group come back more often.

    ``min_score`` is ours. Unclamped (``min_score=0``, the formula of SARL_Optim), the trained
    ``S`` scores a few stored items near 0 and replay collapses onto them: on seq-fmnist from the
    third experience on the effective sample size of the weights falls to 2 % of the buffer and
    the 10 % most important items take 99.9 % of the draws (``benchmarks/balanced_replay.py``;
    results in ``benchmarks/RESULTS.md``).

    Args:
        scores: Similarity scores ``s`` (N,) of the stored items.
        adaptive_temp: Temperature of the soft membership.
        balance_alpha: Exponent of the balance factor.
        min_score: Floor on ``s`` before inverting it.

    Returns:
        Non-negative weights (N,).
    """
    membership = torch.sigmoid((scores - scores.mean()) / adaptive_temp)
    groups = 2.0
    high = groups / membership.sum().clamp(min=1e-6)
    low = groups / (1 - membership).sum().clamp(min=1e-6)
    balance = membership * high + (1 - membership) * low
    return balance.pow(balance_alpha) / (scores.clamp(min=min_score) + 1e-6)
