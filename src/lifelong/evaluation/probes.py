"""Probes of frozen features: ridge, k-NN and a linear (softmax-regression) classifier.

Spec ``cssl.md`` §5 (Evaluation), the protocol of continual self-supervised learning: freeze the
encoder, take its features (before the projector) in evaluation mode, fit a light classifier on
the training features and report its test accuracy. The defaults are the reference's:

* ridge: scikit-learn ``RidgeClassifier`` (α = 1) on ``StandardScaler``-ed features;
* k-NN: scikit-learn ``KNeighborsClassifier`` (k = 50, Euclidean, uniform votes) on standardized
  features (as in LUMP, Madaan et al., ICLR 2022, which used k = 200);
* linear: a linear layer on L2-normalized features, Adam (lr 5e-2), up to 100 epochs; with a
  validation set, early stopping on validation accuracy (patience 5, then lr /= 3 and the best
  weights restored; stop once lr < 1e-4) and testing with the best weights.

Differences from the reference code (``giacomo-cgn/ocl-self-supervised``): the linear probe
uses every sample (the reference skipped the last partial validation and test batch), starts
from zero weights (no draw from the global generator) and shuffles with the generator it is
given. Accuracies are in percent, like :class:`~lifelong.evaluation.evaluator.Evaluator`.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from lifelong.data.tensors import ImageSet
from lifelong.data.transforms import ImageTransform
from lifelong.errors import ConfigError

log = logging.getLogger(__name__)

KNN_METRICS = ("euclidean", "cosine")


class Features(NamedTuple):
    """Features (N, d) and their int64 labels (N,), on one device."""

    x: torch.Tensor
    y: torch.Tensor


@dataclass(frozen=True)
class ProbeConfig:
    """Which probes run and how (the reference's ``--probing-*`` and ``--knn-k`` options)."""

    ridge: bool = True
    """Run the ridge probe (``--probing-rr``)."""
    knn: bool = False
    """Run the k-NN probe (``--probing-knn``)."""
    linear: bool = True
    """Run the linear probe (``--probing-torch``)."""
    standardize: bool = True
    """Standardize features (fit on the training features) before ridge and k-NN."""
    ridge_alpha: float = 1.0
    """Regularization strength of the ridge probe."""
    knn_k: int = 50
    """Neighbours of the k-NN probe (``--knn-k``)."""
    knn_metric: str = "euclidean"
    """Distance of the k-NN probe: euclidean or cosine."""
    batch_size: int = 512
    """Feature-extraction and linear-probe batch size (``--eval-mb-size``)."""
    linear_lr: float = 5e-2
    """Initial Adam learning rate of the linear probe."""
    linear_epochs: int = 100
    """Epochs of the linear probe (the most, with early stopping on a validation set)."""
    linear_patience: int = 5
    """Epochs without a better validation accuracy before the learning rate drops."""
    linear_lr_decay: float = 3.0
    """Divisor of the learning rate when patience runs out."""
    linear_min_lr: float = 1e-4
    """Training stops once the learning rate falls below this."""

    def __post_init__(self) -> None:
        if self.knn_metric not in KNN_METRICS:
            raise ConfigError(
                f"probe.knn_metric must be one of {', '.join(KNN_METRICS)}, got {self.knn_metric!r}"
            )
        for name in ("knn_k", "batch_size", "linear_epochs", "linear_patience"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"probe.{name} must be positive, got {getattr(self, name)}")
        if self.ridge_alpha < 0 or self.linear_lr <= 0 or self.linear_lr_decay <= 1:
            raise ConfigError(
                "probe.ridge_alpha must be >= 0, probe.linear_lr > 0 and probe.linear_lr_decay > 1"
            )


@torch.no_grad()
def extract_features(
    model: nn.Module,
    images: ImageSet,
    transform: ImageTransform,
    batch_size: int = 512,
    device: torch.device | None = None,
    encode: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Features:
    """Features of every image of ``images``, with ``model`` in evaluation mode.

    Each module's training flag is restored afterwards (modules frozen in evaluation mode stay
    so). Images are normalised (no augmentation) with ``transform``.

    Args:
        model: The network; its modes are switched.
        images: uint8 images and labels.
        transform: Gives the evaluation normalisation.
        batch_size: Images per forward pass (the last batch may be smaller).
        device: Where to run (default: the device of the model's first parameter, else CPU).
        encode: Maps a normalised batch to features (default: ``model`` itself), e.g. a
            backbone's ``features``.

    Returns:
        Features (N, d) and labels, on ``device``.
    """
    if device is None:
        first = next(model.parameters(), None)
        device = torch.device("cpu") if first is None else first.device
    forward = model if encode is None else encode
    modes = [(module, module.training) for module in model.modules()]
    model.train(False)
    try:
        chunks = [
            forward(transform.normalize(images.x[start : start + batch_size].to(device)))
            for start in range(0, len(images), batch_size)
        ]
    finally:
        for module, mode in modes:
            module.training = mode
    return Features(torch.cat(chunks).flatten(1), images.y.to(device))


def _fit_score(
    estimator: Any,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    standardize: bool,
) -> float:
    """Fit a scikit-learn ``estimator`` (after a StandardScaler when asked); test accuracy in %."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, y_train, x_test, y_test = (t.detach().cpu().numpy() for t in data)
    model = make_pipeline(StandardScaler(), estimator) if standardize else estimator
    model.fit(x_train, y_train)
    return 100.0 * float(model.score(x_test, y_test))


def knn_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    k: int = 50,
    metric: str = "euclidean",
    standardize: bool = True,
) -> float:
    """Test accuracy (%) of a k-nearest-neighbour vote (uniform weights) over the training set.

    ``k`` above the number of training samples is lowered to it, with a warning. Features are
    (N, d) tensors, labels int64 (N,).
    """
    if metric not in KNN_METRICS:
        raise ConfigError(f"k-NN metric must be one of {', '.join(KNN_METRICS)}, got {metric!r}")
    if k > len(train_y):
        log.warning("k-NN probe: k=%d > %d training samples; using k=%d", k, *[len(train_y)] * 2)
        k = len(train_y)
    from sklearn.neighbors import KNeighborsClassifier  # scikit-learn loads only for probes

    knn = KNeighborsClassifier(n_neighbors=k, metric=metric)
    return _fit_score(knn, (train_x.float(), train_y, test_x.float(), test_y), standardize)


def ridge_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    alpha: float = 1.0,
    standardize: bool = True,
) -> float:
    """Test accuracy (%) of a ridge classifier (one-vs-all least squares) on the features."""
    from sklearn.linear_model import RidgeClassifier  # scikit-learn loads only for probes

    ridge = RidgeClassifier(alpha=alpha)
    return _fit_score(ridge, (train_x.float(), train_y, test_x.float(), test_y), standardize)


def minibatches(
    n: int, batch_size: int, generator: torch.Generator | None = None
) -> list[torch.Tensor]:
    """Index batches covering ``0 .. n - 1`` once; the last may be smaller (none is dropped).

    Shuffled with ``generator`` when given, in order otherwise.
    """
    order = torch.arange(n) if generator is None else torch.randperm(n, generator=generator)
    return list(order.split(batch_size))


def _accuracy(layer: nn.Linear, data: Features, batch_size: int) -> float:
    """Accuracy (%) of ``layer`` on L2-normalized features, over every sample."""
    correct = 0
    with torch.no_grad():
        for index in minibatches(len(data.y), batch_size):
            index = index.to(data.x.device)
            logits = layer(F.normalize(data.x[index], dim=1))
            correct += int((logits.argmax(dim=1) == data.y[index]).sum())
    return 100.0 * correct / max(1, len(data.y))


def linear_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    cfg: ProbeConfig,
    generator: torch.Generator,
    val: Features | None = None,
) -> float:
    """Test accuracy (%) of a linear softmax classifier trained on L2-normalized features.

    Without ``val`` it trains ``cfg.linear_epochs`` epochs; with ``val`` it stops early as
    described in the module docstring and tests the weights best on validation.

    Args:
        train_x: Training features (N, d).
        train_y: Their int64 labels (N,).
        test_x: Test features (M, d), on the same device.
        test_y: Their labels (M,).
        cfg: Probe settings (``batch_size`` and the ``linear_*`` fields).
        generator: Shuffles the training samples (CPU generator).
        val: Optional validation features for early stopping.
    """
    labels = [train_y, test_y] if val is None else [train_y, test_y, val.y]
    num_classes = 1 + max(int(y.max()) for y in labels if len(y))
    layer = train_linear_layer(Features(train_x, train_y), num_classes, cfg, generator, val)
    return _accuracy(layer, Features(test_x, test_y), cfg.batch_size)


def train_linear_layer(
    train: Features,
    num_classes: int,
    cfg: ProbeConfig,
    generator: torch.Generator,
    val: Features | None = None,
) -> nn.Linear:
    """The linear probe's layer (zero init) trained on L2-normalized ``train`` features.

    Its logits are ``layer(F.normalize(x, dim=1))``. Training is :func:`linear_probe`'s; it runs
    with gradients even when called under inference or no-grad mode.
    """
    with torch.inference_mode(False), torch.enable_grad():
        # clones: features made under inference mode cannot take part in autograd
        data = Features(train.x.detach().clone(), train.y.clone())
        layer = nn.Linear(data.x.shape[1], num_classes).to(data.x.device)
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)
        _train_linear(layer, data, cfg, generator, val)
    return layer


def _train_linear(
    layer: nn.Linear,
    train: Features,
    cfg: ProbeConfig,
    generator: torch.Generator,
    val: Features | None,
) -> None:
    """Adam epochs over every training sample, with the reference's early stopping on ``val``."""
    lr = cfg.linear_lr
    optimizer = torch.optim.Adam(layer.parameters(), lr=lr)
    inputs = F.normalize(train.x, dim=1)
    best, best_state, waited = -1.0, copy.deepcopy(layer.state_dict()), 0
    for _ in range(cfg.linear_epochs):
        for index in minibatches(len(train.y), cfg.batch_size, generator):
            index = index.to(inputs.device)
            loss = F.cross_entropy(layer(inputs[index]), train.y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if val is None:
            continue
        accuracy = _accuracy(layer, val, cfg.batch_size)
        if accuracy > best:
            best, best_state, waited = accuracy, copy.deepcopy(layer.state_dict()), 0
            continue
        waited += 1
        if waited >= cfg.linear_patience:
            lr /= cfg.linear_lr_decay
            if lr < cfg.linear_min_lr:
                break
            layer.load_state_dict(best_state)
            for group in optimizer.param_groups:
                group["lr"] = lr
            waited = 0
    if val is not None:
        layer.load_state_dict(best_state)


def run_probes(
    cfg: ProbeConfig,
    train: Features,
    test: Features,
    generator: torch.Generator,
    val: Features | None = None,
) -> dict[str, float]:
    """Accuracy (%) of each enabled probe, keyed ``ridge``, ``knn`` and ``linear``."""
    results: dict[str, float] = {}
    data = (train.x, train.y, test.x, test.y)
    if cfg.ridge:
        results["ridge"] = ridge_probe(*data, cfg.ridge_alpha, cfg.standardize)
    if cfg.knn:
        results["knn"] = knn_probe(*data, cfg.knn_k, cfg.knn_metric, cfg.standardize)
    if cfg.linear:
        results["linear"] = linear_probe(*data, cfg, generator, val)
    return results
