"""LUCIR's loss terms (Hou et al., CVPR 2019): the less-forget constraint and margin ranking."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812


def less_forget_weight(lambda_base: float, old: int, new: int) -> float:
    """The adaptive weight ``lambda = lambda_base sqrt(|C_old| / |C_new|)`` (Eq. 7)."""
    return lambda_base * math.sqrt(old / new)


def less_forget_loss(features: torch.Tensor, old_features: torch.Tensor) -> torch.Tensor:
    """The less-forget constraint ``L_dis^G`` (Eq. 6): ``mean_b (1 - cos(f̄*(x_b), f̄(x_b)))``.

    Args:
        features: Current features, shape (B, D).
        old_features: The previous model's features of the same inputs, shape (B, D).

    Returns:
        Scalar loss (the batch mean, without the weight ``lambda``).
    """
    return (1 - F.cosine_similarity(features, old_features.detach(), dim=1)).mean()


def margin_ranking_loss(
    cosines: torch.Tensor,
    labels: torch.Tensor,
    old: torch.Tensor,
    new: torch.Tensor,
    k: int,
    margin: float,
) -> torch.Tensor:
    """The inter-class separation ``L_mr`` (Eq. 8) on the old-class examples of a batch.

    For each example ``b`` of an old class and each of the ``k`` highest new-class scores
    ``<θ̄_k, f̄(x_b)>``: ``max(0, m - <θ̄_y, f̄(x_b)> + <θ̄_k, f̄(x_b)>)``, averaged over the
    ``n_old * k`` pairs (the authors' code; the paper writes a sum). ``k`` is capped by the
    number of new classes.

    Args:
        cosines: Cosine scores without the scale ``sigma``, shape (B, K).
        labels: Labels (B,).
        old: Bool mask (K,) of the old classes.
        new: Bool mask (K,) of the new classes.
        k: Number of hardest new classes.
        margin: The margin ``m``.

    Returns:
        Scalar loss; zero (with a graph) when the batch has no old-class example.
    """
    rows = old[labels]
    if not bool(rows.any()) or not bool(new.any()):
        return cosines.sum() * 0.0
    scores = cosines[rows]
    truth = scores.gather(1, labels[rows][:, None])
    hardest = scores[:, new].topk(min(k, int(new.sum())), dim=1).values
    return F.relu(margin - truth + hardest).mean()
