"""BiC's parts against hand-computed values: bias correction, its fit, the memory split, lambda."""

from __future__ import annotations

import pytest
import torch

import lifelong.components  # noqa: F401  (fills the registries)
from lifelong.backbones import BACKBONES
from lifelong.backbones.mlp import MLPConfig
from lifelong.data.stream import Experience
from lifelong.data.tensors import ImageSet
from lifelong.data.transforms import ImageTransform
from lifelong.errors import ConfigError
from lifelong.losses.distillation import soft_target_distillation
from lifelong.methods.base import METHODS, MethodContext
from lifelong.methods.bic import (
    BiC,
    BiCConfig,
    distillation_weight,
    held_out_count,
    validation_mask,
)
from lifelong.nn.bias_correction import BiasCorrection, fit_bias_correction
from lifelong.types import Batch

NORMALISE = ImageTransform((0.0,), (1.0,))


def test_correction_maps_new_logits_by_alpha_o_plus_beta_and_leaves_old_ones():
    correction = BiasCorrection(4)
    logits = torch.tensor([[1.0, 2.0, 3.0, 4.0], [-1.0, 0.5, 0.0, -2.0]])
    assert torch.equal(correction(logits), logits)  # (1, 0) before any correction
    correction.set(torch.tensor([False, False, True, True]), alpha=2.0, beta=-1.0)
    expected = torch.tensor([[1.0, 2.0, 5.0, 7.0], [-1.0, 0.5, -1.0, -5.0]])
    assert torch.equal(correction(logits), expected)
    # a later step's correction applies to its own classes; the earlier one stays
    correction.set(torch.tensor([False, True, False, False]), alpha=0.5, beta=1.0)
    assert torch.equal(correction(logits)[:, 1], torch.tensor([2.0, 1.25]))
    assert torch.equal(correction(logits)[:, 2:], expected[:, 2:])


def biased_set(shift: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of 2 old and 2 new classes: +3 on the true class, new classes' logits + shift."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(4).repeat(25)
    logits = torch.randn(100, 4, generator=g) + 3 * torch.eye(4)[labels]
    logits[:, 2:] += shift
    return logits, labels


def fitted(shift: float) -> tuple[float, float, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(alpha, beta) fitted on ``biased_set(shift)``, with the logits before and after."""
    new = torch.tensor([False, False, True, True])
    logits, labels = biased_set(shift)
    seen = torch.ones(4, dtype=torch.bool)
    alpha, beta = fit_bias_correction(logits, labels, new, seen, steps=2000, lr=0.05)
    return alpha, beta, logits, torch.where(new, logits * alpha + beta, logits), labels


def test_fitting_the_correction_removes_a_bias_towards_or_against_new_classes():
    # new classes inflated by +4: most old examples go to a new class. The fit lowers the new
    # classes' logits on the old classes' examples (beta < 0) and recovers the accuracy.
    _, beta, logits, corrected, labels = fitted(4.0)
    old_rows = labels < 2
    assert beta < 0
    assert corrected[old_rows, 2:].mean() < logits[old_rows, 2:].mean() - 2
    before = (logits.argmax(1) == labels).float().mean()
    assert (corrected.argmax(1) == labels).float().mean() > max(before + 0.2, 0.9)
    # deflated by 4: new examples go to old classes; the fit raises their new-class logits
    _, _, logits, corrected, labels = fitted(-4.0)
    new_rows = labels >= 2
    assert corrected[new_rows, 2:].mean() > logits[new_rows, 2:].mean() + 2
    before = (logits.argmax(1) == labels).float().mean()
    assert (corrected.argmax(1) == labels).float().mean() > max(before + 0.2, 0.9)
    # zero steps: the identity
    new, seen = torch.tensor([False, False, True, True]), torch.ones(4, dtype=torch.bool)
    assert fit_bias_correction(logits, labels, new, seen, steps=0, lr=0.05) == (1.0, 0.0)


def test_distillation_weight_is_old_over_all_classes():
    assert distillation_weight(2, 2) == pytest.approx(0.5)
    assert distillation_weight(4, 2) == pytest.approx(2 / 3)
    assert distillation_weight(8, 2) == pytest.approx(0.8)


def test_validation_split_holds_out_the_last_tenth_of_each_class():
    assert [held_out_count(n, 0.1) for n in (0, 1, 2, 5, 20, 100)] == [0, 0, 1, 1, 2, 10]
    labels = torch.tensor([0] * 20 + [1] * 20 + [-1] * 4)
    mask = validation_mask(labels, 0.1)
    assert mask.nonzero().flatten().tolist() == [18, 19, 38, 39]


def make_bic(**fields: object) -> BiC:
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    backbone = BACKBONES.get("mlp").build(MLPConfig(hidden=(16, 8)), (1, 4, 4), 6)
    ctx = MethodContext(backbone, 6, (1, 4, 4), NORMALISE, torch.device("cpu"), generator)
    entry = METHODS.get("bic")
    method = entry.build(entry.make_config({"buffer_size": 40, "lr": 0.1, **fields}), ctx)
    assert isinstance(method, BiC)
    return method


def experience(t: int, classes: tuple[int, ...], per_class: int = 30) -> Experience:
    g = torch.Generator().manual_seed(t)
    x = torch.randint(0, 256, (per_class * len(classes), 1, 4, 4), generator=g, dtype=torch.uint8)
    y = torch.tensor(classes).repeat_interleave(per_class)
    return Experience(t, classes, ImageSet(x, y), ImageSet(x, y))


def batch_of(images: torch.Tensor, labels: torch.Tensor, t: int) -> Batch:
    x = NORMALISE.normalize(images)
    return Batch(x, labels, x, t)


def test_held_out_examples_are_balanced_disjoint_from_training_and_never_trained_on():
    method = make_bic()
    first = experience(0, (0, 1))
    method.before_experience(first)
    assert not bool((method.held_y >= 0).any())  # nothing to correct in the first experience
    method.after_experience(first)
    second = experience(1, (2, 3))
    method.before_experience(second)
    # memory: 20 per old class, 2 of each held out; 2 per new class held out of the new data
    val = validation_mask(method.exemplar_y, 0.1)
    assert [int((method.exemplar_y[val] == c).sum()) for c in range(2)] == [2, 2]
    held = method.held_y[method.held_y >= 0]
    assert [int((held == c).sum()) for c in (2, 3)] == [2, 2]
    # the replayed (training) memory and the validation slots are disjoint and cover the memory
    train = set(method.exemplar_order.tolist())
    assert train.isdisjoint(set(val.nonzero().flatten().tolist()))
    assert len(train) + int(val.sum()) == int((method.exemplar_y >= 0).sum()) == 40
    # a batch made only of held-out new examples is dropped whole: no step, no change
    method.exemplars_for_step = lambda size: torch.zeros(0, dtype=torch.long)  # type: ignore[method-assign]
    images = method.held_x[method.held_y >= 0]
    before = {k: v.clone() for k, v in method.net.state_dict().items()}
    out = method.observe(Batch(images, held, images, 1))
    assert float(out.loss) == 0.0
    assert all(torch.equal(v, method.net.state_dict()[k]) for k, v in before.items())
    # the other new examples are kept
    kept = method.not_held_out(NORMALISE.normalize(second.train.x))
    assert int((~kept).sum()) == 4


def test_incremental_step_is_lambda_distillation_plus_one_minus_lambda_ce():
    method = make_bic()
    first = experience(0, (0, 1))
    method.before_experience(first)
    method.after_experience(first)
    second = experience(1, (2, 3, 4, 5))
    method.before_experience(second)
    method.exemplars_for_step = lambda size: torch.zeros(0, dtype=torch.long)  # type: ignore[method-assign]
    method.correction.set(torch.tensor([True, False, False, False, False, False]), 1.5, 0.3)
    batch = batch_of(second.train.x[::7], second.train.y[::7], 1)
    keep = method.not_held_out(batch.x_clean)
    with torch.no_grad():
        logits = method.correction(method.net(batch.x[keep]))
        old = method.correction(method.old_net(batch.x[keep]))
    seen = method.seen_classes.nonzero().flatten()
    ce = torch.nn.functional.cross_entropy(logits[:, seen], batch.y[keep])
    distill = soft_target_distillation(logits[:, :2], old[:, :2], 2.0)
    out = method.observe(batch)
    lam = 2 / (2 + 4)
    assert float(out.loss) == pytest.approx(float(lam * distill + (1 - lam) * ce), rel=1e-5)
    assert float(distill) > 0


def test_after_experience_fits_the_new_classes_correction_only_and_predict_applies_it():
    method = make_bic(bias_steps=50, bias_lr=0.05)
    first = experience(0, (0, 1))
    method.before_experience(first)
    method.after_experience(first)
    assert torch.equal(method.correction.alpha, torch.ones(6))  # first experience: none
    second = experience(1, (2, 3))
    method.before_experience(second)
    method.after_experience(second)
    alpha, beta = method.correction.alpha, method.correction.beta
    assert (alpha[[0, 1, 4, 5]] == 1).all() and (beta[[0, 1, 4, 5]] == 0).all()
    assert alpha[2] == alpha[3] and beta[2] == beta[3]
    assert (alpha[2], beta[2]) != (1.0, 0.0)
    x = torch.randn(3, 1, 4, 4)
    assert torch.allclose(method.predict(x), method.net(x) * alpha + beta)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", 0.0),
        ("val_fraction", 0.0),
        ("val_fraction", 1.0),
        ("bias_steps", -1),
        ("bias_lr", 0.0),
    ],
)
def test_bad_settings_raise_config_errors(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"method.{field}"):
        BiCConfig(**{field: value})  # type: ignore[arg-type]
