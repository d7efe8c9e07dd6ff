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
