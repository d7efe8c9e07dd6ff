"""Herding exemplar selection of iCaRL (Rebuffi et al., CVPR 2017, Algorithm 4)."""

from __future__ import annotations

import torch


def herding_order(features: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of ``k`` examples chosen greedily so that their mean approaches the class mean.

    With ``mu = mean_i f_i`` and ``S`` the sum of the ``i - 1`` examples chosen so far, step
    ``i`` picks ``argmin_j || mu - (S + f_j) / i ||`` over the examples not chosen yet (ties go
    to the lowest index). The order is a priority: iCaRL shrinks an exemplar set by keeping its
    first ``m`` entries. Pass L2-normalised features, as iCaRL does; the function does not
    normalise.

    Args:
        features: Features of one class, shape (N, D).
        k: Number of examples to choose; at most N are returned.

    Returns:
        int64 indices into ``features``, shape (min(k, N),), in selection order.
    """
    n = features.shape[0]
    k = min(k, n)
    mean = features.mean(0)
    running = torch.zeros_like(mean)
    available = torch.ones(n, dtype=torch.bool, device=features.device)
    chosen: list[int] = []
    for i in range(1, k + 1):
        cost = (mean - (running + features) / i).norm(dim=1)
        cost = cost.masked_fill(~available, float("inf"))
        index = int(cost.argmin())
        chosen.append(index)
        available[index] = False
        running = running + features[index]
    return torch.tensor(chosen, dtype=torch.int64, device=features.device)
