"""Probes of frozen features (ridge, k-NN, linear) and feature extraction in evaluation mode."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from lifelong.data.tensors import ImageSet
from lifelong.data.transforms import ImageTransform
from lifelong.errors import ConfigError
from lifelong.evaluation.probes import (
    Features,
    ProbeConfig,
    extract_features,
    knn_probe,
    linear_probe,
    minibatches,
    ridge_probe,
    run_probes,
)


def _points(values: list[list[float]]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def _labels(values: list[int]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.int64)


# Six training points on a line (second coordinate 0):
#   x:     0   1   3   4   5   10
#   class: 0   0   1   1   1   0
# Test points 2.2 (class 1), 1.6 (class 0), 8 (class 1). Distances from 8: 10 → 2, 5 → 3, 4 → 4.
# k=1: 2.2 → 3 (class 1, right), 1.6 → 1 (class 0, right), 8 → 10 (class 0, wrong): 2/3.
# k=3: 2.2 → {3, 1, 4} → 1; 1.6 → {1, 3, 0} → 0; 8 → {10, 5, 4} → 1: all right.
LINE_TRAIN = _points([[0, 0], [1, 0], [3, 0], [4, 0], [5, 0], [10, 0]])
LINE_TRAIN_Y = _labels([0, 0, 1, 1, 1, 0])
LINE_TEST = _points([[2.2, 0], [1.6, 0], [8, 0]])
LINE_TEST_Y = _labels([1, 0, 1])


def test_knn_probe_matches_the_hand_computed_votes() -> None:
    data = (LINE_TRAIN, LINE_TRAIN_Y, LINE_TEST, LINE_TEST_Y)
    assert knn_probe(*data, k=1, standardize=False) == pytest.approx(200 / 3)
    assert knn_probe(*data, k=3, standardize=False) == pytest.approx(100.0)


def test_knn_probe_cosine_metric_compares_directions() -> None:
    # (1, 1) is nearest to (1, 0.5) in Euclidean distance but points the same way as (10, 10)
    train_x, train_y = _points([[10, 10], [1, 0.5]]), _labels([0, 1])
    test_x, test_y = _points([[1, 1]]), _labels([0])
    data = (train_x, train_y, test_x, test_y)
    assert knn_probe(*data, k=1, metric="euclidean", standardize=False) == 0.0
    assert knn_probe(*data, k=1, metric="cosine", standardize=False) == 100.0


def test_knn_probe_standardizes_with_training_statistics() -> None:
    """With standardization a per-dimension rescaling changes nothing; without it, it does."""
    g = torch.Generator().manual_seed(0)
    train_x, test_x = torch.randn(40, 2, generator=g), torch.randn(30, 2, generator=g)
    train_y = (train_x[:, 0] + 0.5 * train_x[:, 1] > 0).long()
    test_y = (test_x[:, 0] + 0.5 * test_x[:, 1] > 0).long()
    scale = torch.tensor([1.0, 100.0])
    plain = (train_x, train_y, test_x, test_y)
    scaled = (train_x * scale, train_y, test_x * scale, test_y)
    assert knn_probe(*plain, k=3) == knn_probe(*scaled, k=3)
    assert knn_probe(*plain, k=3, standardize=False) != knn_probe(*scaled, k=3, standardize=False)


def test_knn_probe_lowers_k_to_the_training_set_size() -> None:
    data = (LINE_TRAIN, LINE_TRAIN_Y, LINE_TEST, LINE_TEST_Y)
    # k=6 = every training point votes: three of each class, a tie sklearn gives to class 0
    assert knn_probe(*data, k=50, standardize=False) == knn_probe(*data, k=6, standardize=False)
    with pytest.raises(ConfigError, match="metric"):
        knn_probe(*data, metric="manhattan")


def _blobs(n_per_class: int, seed: int, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Separable blobs: class c is centred at 4 e_c in 5-d, noise sd 0.3."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(classes).repeat_interleave(n_per_class)
    x = 0.3 * torch.randn(len(y), 5, generator=g)
    x[torch.arange(len(y)), y] += 4.0
    return x, y


def test_ridge_probe_separates_separable_classes() -> None:
    train_x, train_y = _blobs(10, seed=0)
    test_x, test_y = _blobs(5, seed=1)
    assert ridge_probe(train_x, train_y, test_x, test_y) == 100.0
    # labels permuted in the test set: the probe must now be wrong on every sample
    assert ridge_probe(train_x, train_y, test_x, (test_y + 1) % 3) == 0.0


def test_minibatches_cover_every_sample_once() -> None:
    batches = minibatches(10, 4, torch.Generator().manual_seed(0))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert torch.equal(torch.cat(batches).sort().values, torch.arange(10))
    assert torch.equal(torch.cat(minibatches(5, 2)), torch.arange(5))


def test_linear_probe_learns_from_a_batch_smaller_than_the_batch_size() -> None:
    # 3 training samples, batch size 4: dropping the partial batch would train nothing
    train_x, train_y = _blobs(1, seed=0)
    test_x, test_y = _blobs(4, seed=1)
    cfg = ProbeConfig(batch_size=4, linear_epochs=30)
    g = torch.Generator().manual_seed(0)
    assert linear_probe(train_x, train_y, test_x, test_y, cfg, g) == 100.0


def test_linear_probe_scores_every_test_sample() -> None:
    # 5 test samples in batches of 2; the last one carries a wrong label: 4/5, not 4/4
    train_x, train_y = _blobs(6, seed=0)
    test_x, test_y = _blobs(2, seed=1)
    test_x, test_y = test_x[:5], test_y[:5].clone()
    test_y[4] = (test_y[4] + 1) % 3
    cfg = ProbeConfig(batch_size=2, linear_epochs=20)
    g = torch.Generator().manual_seed(0)
    assert linear_probe(train_x, train_y, test_x, test_y, cfg, g) == pytest.approx(80.0)


def test_linear_probe_with_early_stopping_is_seeded_and_runs_in_inference_mode() -> None:
    train_x, train_y = _blobs(7, seed=0)
    val_x, val_y = _blobs(3, seed=2)
    test_x, test_y = _blobs(3, seed=1)
    cfg = ProbeConfig(batch_size=5, linear_epochs=40, linear_patience=2, linear_lr=0.5)
    with torch.inference_mode():  # as inside an evaluator
        args = (train_x * 1, train_y, test_x, test_y, cfg)
        first = linear_probe(*args, torch.Generator().manual_seed(3), Features(val_x, val_y))
    assert first == 100.0


def test_run_probes_returns_the_enabled_probes() -> None:
    train, test = Features(*_blobs(10, seed=0)), Features(*_blobs(4, seed=1))
    cfg = ProbeConfig(knn=True, knn_k=3, linear=False)
    results = run_probes(cfg, train, test, torch.Generator().manual_seed(0))
    assert results == {"ridge": 100.0, "knn": 100.0}
    with pytest.raises(ConfigError, match="knn_metric"):
        ProbeConfig(knn_metric="l1")


def test_extract_features_uses_eval_mode_and_restores_every_module() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.Dropout(0.5), nn.BatchNorm1d(3))
    model.train()
    model[3].train(False)  # a frozen part that must stay in evaluation mode
    model[3].running_mean.fill_(0.5)
    g = torch.Generator().manual_seed(1)
    images = ImageSet(
        torch.randint(0, 256, (7, 1, 2, 2), dtype=torch.uint8, generator=g), torch.arange(7)
    )
    transform = ImageTransform(mean=(0.5,), std=(0.25,))
    features = extract_features(model, images, transform, batch_size=3)
    reference = copy.deepcopy(model).train(False)
    expected = reference(transform.normalize(images.x))
    torch.testing.assert_close(features.x, expected)  # dropout off, running statistics used
    assert torch.equal(features.y, images.y)
    assert [m.training for m in model.modules()] == [True, True, True, True, False]
    doubled = extract_features(model, images, transform, 3, encode=lambda t: 2 * model(t))
    torch.testing.assert_close(doubled.x, 2 * expected)
