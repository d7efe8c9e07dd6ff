"""SARL's passes outside the training step: feature sums, BN re-estimation, ``S``'s update.

Functions of the network and the data they are given; :class:`~lifelong.methods.sarl.SARL`
calls them at its epoch and experience boundaries and, for the learned similarity, after steps.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from lifelong.data.tensors import ImageSet
from lifelong.nn.semantic_similarity import SemanticSimilarity, similarity_targets


@torch.no_grad()
def feature_sums(
    net: nn.Module,
    data: ImageSet,
    augment: Callable[[torch.Tensor], torch.Tensor],
    num_classes: int,
    batch_size: int,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class sums (C, d) and counts (C,) of normalised features of augmented ``data``.

    The network runs in eval mode; the caller restores its mode.
    """
    net.train(False)
    sums = torch.zeros(num_classes, int(net.head.in_features), device=device)  # type: ignore[union-attr, arg-type]
    counts = torch.zeros(num_classes, device=device)
    for start in range(0, len(data), batch_size):
        x = data.x[start : start + batch_size].to(device)
        y = data.y[start : start + batch_size].to(device)
        features = F.normalize(net.features(augment(x)), dim=1)  # type: ignore[operator]
        sums.index_add_(0, y, features)
        counts.index_add_(0, y, torch.ones_like(y, dtype=counts.dtype))
    return sums, counts


@torch.no_grad()
def recalibrate_batch_norm(
    net: nn.Module,
    stored: torch.Tensor,
    augment: Callable[[torch.Tensor], torch.Tensor],
    batch_size: int,
    generator: torch.Generator,
) -> None:
    """Forward the augmented ``stored`` inputs in train mode, no step: only BN statistics change."""
    if len(stored) == 0:
        return
    net.train()
    order = torch.randperm(len(stored), generator=generator)
    for chunk in order.split(batch_size):
        net(augment(stored[chunk.to(stored.device)]))


@torch.no_grad()
def similarity_scores(
    similarity: SemanticSimilarity,
    features: torch.Tensor,
    labels: torch.Tensor,
    prototypes: torch.Tensor,
    learned: torch.Tensor,
) -> torch.Tensor:
    """``S(feature, prototype of its class)`` for stored items of learned classes, else 0.5."""
    known = learned[labels]
    scores = torch.full((len(labels),), 0.5, device=features.device)
    if bool(known.any()):
        similarity.train(False)
        scores[known] = similarity(features[known], prototypes[labels[known]])
    return scores


def similarity_step(
    similarity: SemanticSimilarity,
    optimizer: torch.optim.Optimizer,
    prototypes: torch.Tensor,
    threshold: float,
    max_pairs: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """One optimiser step of ``S`` on pairs of the learned ``prototypes`` (k, d); the BCE before.

    Every ordered pair (self-pairs included) when there are at most ``max_pairs``, else
    ``max_pairs`` random ones; the target of a pair is 1 when its cosine exceeds ``threshold``.
    """
    targets = similarity_targets(prototypes, threshold)
    k = len(prototypes)
    if k * k <= max_pairs:
        pairs = torch.cartesian_prod(torch.arange(k), torch.arange(k)).T
    else:
        pairs = torch.randint(0, k, (2, max_pairs), generator=generator)
    first, second = pairs.to(prototypes.device)
    similarity.train()
    loss = F.binary_cross_entropy_with_logits(
        similarity.logits(prototypes[first], prototypes[second]), targets[first, second]
    )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()
