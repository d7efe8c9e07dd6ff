"""iCaRL's classification-and-distillation loss and its nearest-mean-of-exemplars classifier.

Rebuffi, Kolesnikov, Sperl & Lampert, "iCaRL: Incremental Classifier and Representation
Learning", CVPR 2017, Algorithms 1 and 3.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812


def icarl_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    old_logits: torch.Tensor | None,
    old_classes: torch.Tensor,
    seen_classes: torch.Tensor,
) -> torch.Tensor:
    """Sigmoid binary cross-entropy with distillation targets on the old classes (Algorithm 3).

    Over the output units of the classes seen so far, the target of unit ``y`` is
    ``sigmoid(old_logits[:, y])`` (the previous network's output) where ``y`` is an old class and
    ``1[label == y]`` where it is a class of the current experience. The loss is the mean of the
    per-unit binary cross-entropies over the B x |seen| elements: the paper sums over classes, the
    DER paper's code averages, and the presets' learning rates were tuned with the average.

    Args:
        logits: Current network outputs, shape (B, K).
        labels: Integer labels, shape (B,).
        old_logits: Previous network outputs on the same inputs (B, K), or None before any
            previous network exists (then every target is one-hot).
        old_classes: Bool mask (K,) of the classes learned before the current experience.
        seen_classes: Bool mask (K,) of the classes seen so far, current ones included.

    Returns:
        Scalar loss.
    """
    targets = F.one_hot(labels, logits.shape[1]).to(logits.dtype)
    if old_logits is not None:
        targets = torch.where(old_classes, torch.sigmoid(old_logits), targets)
    return F.binary_cross_entropy_with_logits(logits[:, seen_classes], targets[:, seen_classes])


def nearest_mean_scores(
    features: torch.Tensor, means: torch.Tensor, has_mean: torch.Tensor
) -> torch.Tensor:
    """Nearest-mean-of-exemplars scores: ``-|| f(x)/|f(x)| - mu_y ||^2`` per class (Algorithm 1).

    The arg-max of the scores is iCaRL's prediction ``argmin_y || phi(x) - mu_y ||``. Classes
    without a mean (no exemplars yet) score the lowest finite value.

    Args:
        features: Penultimate features, shape (B, D); they are L2-normalised here.
        means: Class means of normalised exemplar features, shape (K, D), already normalised.
        has_mean: Bool mask (K,) of the classes whose row of ``means`` is set.

    Returns:
        Scores, shape (B, K).
    """
    distance = torch.cdist(F.normalize(features, dim=1), means).pow(2)
    return (-distance).masked_fill(~has_mean, torch.finfo(distance.dtype).min)
