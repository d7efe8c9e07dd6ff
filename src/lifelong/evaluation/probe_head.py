"""A probe fitted on a frozen encoder's features that answers ``predict``: ridge, k-NN or linear.

The continual-SSL protocol (spec ``cssl.md`` §5) measures an encoder by a light classifier fitted
on its frozen features. :class:`FittedProbe` keeps a class-balanced uniform sample of the
training images seen so far (uint8, in its extra state so checkpoints carry it), re-extracts
their features with the current encoder whenever it is fitted, and gives class scores for new
features:

* ``ridge``: scikit-learn's ``RidgeClassifier`` (one-vs-all least squares on ±1 targets, α = 1)
  on ``StandardScaler``-ed features, solved in closed form here and folded, standardisation
  included, into a linear layer: ``W' = W / σ``, ``b' = b − W' μ``;
* ``linear``: the linear probe of :mod:`lifelong.evaluation.probes` on L2-normalised features;
  with ``val_ratio`` > 0 (the reference's ``--probing-val-ratio`` 0.1) that fraction of each
  class's kept images is held out and the probe stops early on their accuracy (patience 5, then
  the learning rate drops; the weights best on validation are kept), else it trains its full
  number of epochs;
* ``knn``: a k-nearest-neighbour vote on standardised features; the scores are vote counts.

Ridge and linear write their weights into the linear layer they are given (the backbone's
classification head, which self-supervised training never uses), so a checkpoint holds the
fitted probe as ordinary parameters. A class never seen gets the ridge solution of an all-negative
target: zero weights and bias −1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from lifelong.data.tensors import ImageSet
from lifelong.data.transforms import ImageTransform
from lifelong.evaluation.probe_names import ProbeKind
from lifelong.evaluation.probes import Features, ProbeConfig, extract_features, train_linear_layer


def standardization(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and scale of ``StandardScaler`` (population std; ~0 std → scale 1)."""
    mean = x.mean(dim=0)
    std = x.std(dim=0, unbiased=False)
    tiny = 10 * torch.finfo(x.dtype).eps
    return mean, torch.where(std < tiny, torch.ones_like(std), std)


def fit_ridge(
    features: torch.Tensor, labels: torch.Tensor, num_classes: int, alpha: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A ridge classifier on standardised features, folded to act on the raw features.

    Solves ``(XᵀX + αI) W = XᵀT`` on centred standardised features X and centred targets T
    (+1 for the sample's class, −1 elsewhere), in float64, as scikit-learn's
    ``make_pipeline(StandardScaler(), RidgeClassifier(alpha))``.

    Args:
        features: Training features (N, d).
        labels: Their int64 labels (N,), in ``0 .. num_classes - 1``.
        num_classes: Number of output scores K.
        alpha: Regularisation strength.

    Returns:
        ``(weight (K, d), bias (K,))`` in float32 such that ``features @ weight.T + bias`` is the
        classifier's decision function.
    """
    x = features.double()
    mean, scale = standardization(x)
    x = (x - mean) / scale
    targets = -torch.ones(len(labels), num_classes, dtype=x.dtype, device=x.device)
    targets[torch.arange(len(labels), device=x.device), labels] = 1.0
    x_mean, t_mean = x.mean(dim=0), targets.mean(dim=0)
    xc, tc = x - x_mean, targets - t_mean
    gram = xc.T @ xc + alpha * torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    coef = torch.linalg.solve(gram, xc.T @ tc)  # (d, K)
    intercept = t_mean - x_mean @ coef
    weight = (coef / scale[:, None]).T
    bias = intercept - weight @ mean
    return weight.float(), bias.float()


def balanced_sample(labels: torch.Tensor, keys: torch.Tensor, per_class: int) -> torch.Tensor:
    """Indices of the ``per_class`` items of smallest key in each class (bottom-k sampling).

    With keys drawn uniformly once per item, this is a uniform sample without replacement of each
    class's items, and items keep their place as more arrive.
    """
    order = keys.argsort()
    order = order[labels[order].argsort(stable=True)]  # by label, then by key
    sorted_labels = labels[order]
    first = torch.searchsorted(sorted_labels, sorted_labels, right=False)
    rank = torch.arange(len(order)) - first
    return order[rank < per_class].sort().values


def validation_split(labels: torch.Tensor, keys: torch.Tensor, ratio: float) -> torch.Tensor:
    """Mask of the ``floor(ratio * n_c)`` items of largest key in each class c (class-balanced).

    With uniform keys this is a uniform sample of each class; a class too small for one held-out
    item keeps all its items for training.
    """
    order = (-keys).argsort()
    order = order[labels[order].argsort(stable=True)]  # by label, then by key, largest first
    sorted_labels = labels[order]
    first = torch.searchsorted(sorted_labels, sorted_labels, right=False)
    last = torch.searchsorted(sorted_labels, sorted_labels, right=True)
    rank = torch.arange(len(order)) - first
    held = torch.zeros(len(labels), dtype=torch.bool)
    held[order] = rank < ((last - first) * ratio).floor().long()
    return held


class FittedProbe(nn.Module):
    """Class scores from frozen features, fitted on a sample of the training images seen so far.

    Args:
        kind: ``ridge``, ``knn`` or ``linear``.
        num_classes: Number of scores per sample.
        per_class: Training images kept per class (a uniform sample of those seen).
        cfg: Probe settings (``ridge_alpha``, ``knn_k``, ``batch_size``, the linear fields).
        device: Where features are extracted and k-NN references are held.
        val_ratio: Linear probe only: fraction of each class's kept images held out for early
            stopping (0: none).
    """

    def __init__(
        self,
        kind: ProbeKind,
        num_classes: int,
        per_class: int,
        cfg: ProbeConfig,
        device: torch.device,
        val_ratio: float = 0.0,
    ) -> None:
        super().__init__()
        self.val_ratio = val_ratio
        self.kind = kind
        self.num_classes = num_classes
        self.per_class = per_class
        self.cfg = cfg
        self.device = device
        self.images = ImageSet(torch.zeros(0, 1, 1, 1, dtype=torch.uint8), torch.zeros(0).long())
        self.keys = torch.zeros(0)
        self.reference = Features(torch.zeros(0, 0, device=device), torch.zeros(0).long())
        self.mean = self.scale = torch.zeros(0, device=device)

    def add(self, images: ImageSet, generator: torch.Generator) -> None:
        """Offer training images; each class keeps a uniform sample of ``per_class`` of its own."""
        keys = torch.rand(len(images), generator=generator)
        if len(self.images):
            images = ImageSet.concat([self.images, images])
            keys = torch.cat([self.keys, keys])
        keep = balanced_sample(images.y, keys, self.per_class)
        self.images, self.keys = images.select(keep), keys[keep]

    def fit(
        self,
        encoder: nn.Module,
        encode: Callable[[torch.Tensor], torch.Tensor],
        transform: ImageTransform,
        head: nn.Linear,
        generator: torch.Generator,
    ) -> None:
        """Extract the kept images' features with ``encode`` (``encoder`` in eval mode) and fit.

        Ridge and linear probes write their weights into ``head``; k-NN keeps the standardised
        features as references.
        """
        if not len(self.images):
            return
        train = extract_features(
            encoder, self.images, transform, self.cfg.batch_size, self.device, encode
        )
        if self.kind == "knn":
            self.mean, self.scale = (t.float() for t in standardization(train.x.double()))
            self.reference = Features((train.x - self.mean) / self.scale, train.y)
            return
        if self.kind == "ridge":
            weight, bias = fit_ridge(train.x, train.y, self.num_classes, self.cfg.ridge_alpha)
        else:
            val = None
            held = validation_split(self.images.y, self.keys, self.val_ratio).to(train.y.device)
            if held.any() and not held.all():
                val = Features(train.x[held], train.y[held])
                train = Features(train.x[~held], train.y[~held])
            layer = train_linear_layer(train, self.num_classes, self.cfg, generator, val)
            weight, bias = layer.weight.detach(), layer.bias.detach()
        if head.bias is None or head.weight.shape != weight.shape:
            raise ValueError(f"the probe needs a Linear head with bias of shape {weight.shape}")
        with torch.no_grad():
            head.weight.copy_(weight)
            head.bias.copy_(bias)

    def scores(self, features: torch.Tensor, head: nn.Linear) -> torch.Tensor:
        """Class scores (B, num_classes) of features (B, d)."""
        if self.kind == "ridge":
            out: torch.Tensor = head(features)
            return out
        if self.kind == "linear":
            out = head(F.normalize(features, dim=1))
            return out
        votes = torch.zeros(len(features), self.num_classes, device=features.device)
        if not len(self.reference.y):
            return votes
        query = (features - self.mean) / self.scale
        k = min(self.cfg.knn_k, len(self.reference.y))
        nearest = torch.cdist(query, self.reference.x).topk(k, largest=False).indices
        ones = torch.ones(nearest.shape, device=features.device)
        return votes.scatter_add_(1, self.reference.y[nearest], ones)

    def get_extra_state(self) -> dict[str, Any]:
        """The kept images with their labels and keys, and the k-NN references."""
        return {
            "x": self.images.x,
            "y": self.images.y,
            "keys": self.keys,
            "reference_x": self.reference.x,
            "reference_y": self.reference.y,
            "mean": self.mean,
            "scale": self.scale,
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_extra_state` returned."""
        self.images, self.keys = ImageSet(state["x"], state["y"]), state["keys"]
        device = self.device
        self.reference = Features(state["reference_x"].to(device), state["reference_y"].to(device))
        self.mean, self.scale = state["mean"].to(device), state["scale"].to(device)
