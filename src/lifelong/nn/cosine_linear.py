"""LUCIR's cosine-normalised classifier: ``sigma * cos(w_k, f)`` with a learnable scale."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


class CosineLinear(nn.Module):
    """Cosine normalisation (Hou et al., CVPR 2019, Eq. 4): ``p_k = sigma * <w̄_k, f̄>``.

    ``w̄_k`` and ``f̄`` are the L2-normalised weight row of class ``k`` and the feature, so every
    class scores in ``[-sigma, sigma]`` whatever its weight's norm. ``sigma`` is one learnable
    scalar (initialised to 1, as in the authors' code). There is no bias. Rows are initialised
    uniformly in ``±1/sqrt(in_features)`` (``nn.Linear``'s range).

    Args:
        in_features: Feature width.
        out_features: Number of classes.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(out_features, in_features).uniform_(-bound, bound))
        self.sigma = nn.Parameter(torch.ones(()))

    def cosine(self, features: torch.Tensor, frozen: torch.Tensor | None = None) -> torch.Tensor:
        """``cos(w_k, f)`` for every class, shape (B, out_features), without ``sigma``.

        Args:
            features: Shape (B, in_features).
            frozen: Optional bool mask (out_features,): those rows get no gradient.
        """
        weight: torch.Tensor = self.weight
        if frozen is not None:
            weight = torch.where(frozen[:, None], weight.detach(), weight)
        return F.linear(F.normalize(features, dim=1), F.normalize(weight, dim=1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``sigma * cos(w_k, f)``, shape (B, out_features)."""
        return self.sigma * self.cosine(features)
