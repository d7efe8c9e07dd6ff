"""Prototype losses of SARL (Sarfraz, Arani & Zonooz, ICLR 2025, Eqs. 3-6).

Features are L2-normalised penultimate activations; a class prototype is the mean of its
normalised features. ``MSE`` is the mean over the D feature dimensions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812


def class_means(features: torch.Tensor, labels: torch.Tensor, classes: list[int]) -> torch.Tensor:
    """Mean feature of each class in ``classes`` (each must occur in ``labels``), shape (K, D)."""
    return torch.stack([features[labels == c].mean(0) for c in classes])


def prototype_regularisation(
    features: torch.Tensor, labels: torch.Tensor, prototypes: torch.Tensor, learned: torch.Tensor
) -> torch.Tensor:
    """Pull buffer features of learned classes to their stored prototypes.

    ``sum over c in labels ∩ learned of MSE(mean_{i: y_i = c} g_i, op_c)`` (a sum over classes,
    not a mean, as in the reference code).

    Args:
        features: Normalised buffer features (B, D).
        labels: Their labels (B,).
        prototypes: Stored class prototypes (C, D).
        learned: Bool mask (C,) of classes whose prototype exists.

    Returns:
        Scalar loss (0 when no class qualifies).
    """
    present = [c for c in labels.unique().tolist() if bool(learned[c])]
    if not present:
        return features.new_zeros(())
    means = class_means(features, labels, present)
    return F.mse_loss(means, prototypes[present], reduction="none").mean(1).sum()


def semantic_contrast(
    features: torch.Tensor,
    labels: torch.Tensor,
    prototypes: torch.Tensor,
    learned: torch.Tensor,
    weights: torch.Tensor,
) -> torch.Tensor:
    """Attract new classes to similar prototypes and repel them from dissimilar ones, as a ratio.

    SARL (Sarfraz et al., ICLR 2025), Eq. 5-6; with soft weights, the weighted form of the
    SARL_Optim ``sarl_enhanced`` variant. For each class ``c`` of the batch that is not learned
    yet, ``p_c`` is the batch mean of its features (with gradient). Every other class ``r`` among
    learned ∪ new-in-batch contributes ``d(c, r) = MSE(p_c, p_r)`` (``p_r``: stored prototype if
    learned, batch mean if new)::

        P_c = sum_r w[c, r] d(c, r),   N_c = sum_r (1 - w[c, r]) d(c, r),   loss = sum_c P_c / N_c

    over classes with ``N_c > 0``. SARL's hard groups are ``w = similar.float()`` (0 or 1).

    Args:
        features: Normalised current-batch features (B, D).
        labels: Their labels (B,).
        prototypes: Stored class prototypes (C, D).
        learned: Bool mask (C,) of learned classes.
        weights: Similarity weights (C, C) in [0, 1]; row ``c`` is used for new class ``c``.

    Returns:
        Scalar loss (0 when the batch holds no new class).
    """
    new = [c for c in labels.unique().tolist() if not bool(learned[c])]
    if not new:
        return features.new_zeros(())
    new_means = class_means(features, labels, new)
    old = torch.nonzero(learned).flatten().tolist()
    candidates = torch.cat([prototypes[old], new_means]) if old else new_means
    candidate_ids = old + new
    total = features.new_zeros(())
    for row, c in enumerate(new):
        distances = F.mse_loss(
            new_means[row].expand_as(candidates), candidates, reduction="none"
        ).mean(1)
        others = torch.tensor([r != c for r in candidate_ids], device=features.device)
        w = weights[c, candidate_ids].to(features.device, features.dtype)
        distances = distances[others]
        negative = ((1 - w[others]) * distances).sum()
        if negative > 0:
            total = total + (w[others] * distances).sum() / negative
    return total


def cosine_groups(
    new_prototypes: torch.Tensor,
    new_classes: list[int],
    prototypes: torch.Tensor,
    learned: torch.Tensor,
    threshold: float,
) -> torch.Tensor:
    """Semantic groups: ``similar[c, r] = cos(p_c, p_r) > threshold`` for new ``c``.

    Rows of classes not in ``new_classes`` stay False.

    Returns:
        Bool matrix (C, C).
    """
    num_classes = prototypes.shape[0]
    table = prototypes.clone()
    table[new_classes] = new_prototypes
    known = learned.clone()
    known[new_classes] = True
    cosine = F.cosine_similarity(new_prototypes[:, None, :], table[None, :, :], dim=2, eps=1e-6)
    similar = torch.zeros(num_classes, num_classes, dtype=torch.bool, device=prototypes.device)
    similar[new_classes] = (cosine > threshold) & known[None, :]
    return similar
