"""LUCIR's parts against hand-computed values: cosine head, lambda, margin ranking, less-forget."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

import lifelong.components  # noqa: F401  (fills the registries)
from lifelong.backbones import BACKBONES
from lifelong.backbones.mlp import MLPConfig
from lifelong.data.stream import Experience
from lifelong.data.tensors import ImageSet
from lifelong.data.transforms import ImageTransform
from lifelong.errors import ConfigError
from lifelong.losses.lucir import less_forget_loss, less_forget_weight, margin_ranking_loss
from lifelong.methods.base import METHODS, MethodContext
from lifelong.methods.lucir import LUCIR, LUCIRConfig
from lifelong.nn.cosine_linear import CosineLinear
from lifelong.types import Batch


def test_cosine_classifier_is_sigma_times_the_cosine_of_weight_and_feature():
    head = CosineLinear(2, 3)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, -2.0]]))
        head.sigma.fill_(2.0)
    f = torch.tensor([[3.0, 4.0]])  # |f| = 5
    # cos: 3/5, 7/(5 sqrt 2), -8/10; the norms of w and f do not matter
    expected = 2.0 * torch.tensor([[0.6, 7 / (5 * math.sqrt(2)), -0.8]])
    assert torch.allclose(head(f), expected)
    assert torch.allclose(head(10 * f), expected)
    assert torch.allclose(head.cosine(f), expected / 2)


def test_frozen_rows_of_the_cosine_classifier_get_no_gradient():
    head = CosineLinear(2, 3)
    frozen = torch.tensor([True, False, True])
    head.cosine(torch.tensor([[3.0, 4.0]]), frozen).sum().backward()
    assert head.weight.grad is not None
    assert (head.weight.grad[frozen] == 0).all()
    assert (head.weight.grad[1] != 0).any()


def test_less_forget_weight_grows_with_the_old_to_new_class_ratio():
    assert less_forget_weight(5.0, 2, 2) == pytest.approx(5.0)
    assert less_forget_weight(5.0, 8, 2) == pytest.approx(10.0)  # 5 sqrt(4)
    assert less_forget_weight(5.0, 4, 2) == pytest.approx(5.0 * math.sqrt(2))


def test_margin_ranking_loss_on_two_old_examples_and_one_new():
    old = torch.tensor([True, True, False, False])
    new = ~old
    cosines = torch.tensor(
        [
            [0.5, 0.1, 0.3, 0.2],  # class 0: max(0, .5 - .5 + .3) = .3 and .5 - .5 + .2 = .2
            [0.0, 0.9, 0.1, -0.5],  # class 1: .5 - .9 + .1 < 0 and .5 - .9 - .5 < 0: both 0
            [0.0, 0.0, 0.9, 0.0],  # a new-class example: not ranked
        ]
    )
    labels = torch.tensor([0, 1, 2])
    assert float(margin_ranking_loss(cosines, labels, old, new, 2, 0.5)) == pytest.approx(0.125)
    # K = 1: only the hardest new class, (.3 + 0) / 2
    assert float(margin_ranking_loss(cosines, labels, old, new, 1, 0.5)) == pytest.approx(0.15)
    # K above the number of new classes is capped; no old-class example gives zero
    assert float(margin_ranking_loss(cosines, labels, old, new, 5, 0.5)) == pytest.approx(0.125)
    assert float(margin_ranking_loss(cosines[2:], labels[2:], old, new, 2, 0.5)) == 0.0


def test_less_forget_loss_is_one_minus_the_cosine_of_old_and_new_features():
    features = torch.tensor([[1.0, 0.0], [1.0, 1.0]], requires_grad=True)
    old_features = torch.tensor([[0.0, 1.0], [2.0, 2.0]], requires_grad=True)
    loss = less_forget_loss(features, old_features)
    assert float(loss.detach()) == pytest.approx((1.0 + 0.0) / 2)  # orthogonal: 1; parallel: 0
    loss.backward()
    assert old_features.grad is None  # the previous model's features are a fixed target
    assert features.grad is not None


def make_lucir(**fields: object) -> LUCIR:
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    backbone = BACKBONES.get("mlp").build(MLPConfig(hidden=(16, 8)), (1, 4, 4), 6)
    ctx = MethodContext(
        backbone, 6, (1, 4, 4), ImageTransform((0.0,), (1.0,)), torch.device("cpu"), generator
    )
    entry = METHODS.get("lucir")
    config = {"buffer_size": 12, "lr": 0.1, **fields}
    method = entry.build(entry.make_config(config), ctx)
    assert isinstance(method, LUCIR)
    return method


def experience(t: int, classes: tuple[int, ...], per_class: int = 12) -> Experience:
    g = torch.Generator().manual_seed(t)
    x = torch.randint(0, 256, (per_class * len(classes), 1, 4, 4), generator=g, dtype=torch.uint8)
    y = torch.tensor(classes).repeat_interleave(per_class)
    return Experience(t, classes, ImageSet(x, y), ImageSet(x, y))


def batch_of(exp: Experience, t: int) -> Batch:
    x = ImageTransform((0.0,), (1.0,)).normalize(exp.train.x[::3])
    return Batch(x, exp.train.y[::3], x, t)


def test_the_network_head_is_a_cosine_classifier_and_predict_masks_unseen_classes():
    method = make_lucir()
    assert isinstance(method.net.head, CosineLinear)
    first = experience(0, (0, 1))
    method.before_experience(first)
    method.observe(batch_of(first, 0))
    x = torch.randn(4, 1, 4, 4)
    scores = method.predict(x)
    head = method.classifier
    expected = head.sigma * head.cosine(method.net.features(x))
    assert torch.allclose(scores[:, :2], expected[:, :2])
    assert (scores[:, 2:] == torch.finfo(torch.float32).min).all()


def test_imprinting_sets_new_rows_to_the_scaled_mean_normalised_feature():
    method = make_lucir()
    first = experience(0, (0, 1))
    method.before_experience(first)
    method.after_experience(first)
    old_norm = method.classifier.weight[:2].norm(dim=1).mean()
    second = experience(1, (2, 3))
    method.before_experience(second)
    images = ImageTransform((0.0,), (1.0,)).normalize(second.train.x[second.train.y == 2])
    mean = F.normalize(method.net.features(images), dim=1).mean(0)
    row = method.classifier.weight[2]
    assert torch.allclose(row, F.normalize(mean, dim=0) * old_norm, atol=1e-6)


def test_incremental_step_is_ce_plus_weighted_less_forget_plus_margin_ranking():
    method = make_lucir(lambda_base=5.0, lambda_mr=1.0, margin=0.5, top_k=2, buffer_size=12)
    first = experience(0, (0, 1))
    method.before_experience(first)
    for _ in range(3):
        method.observe(batch_of(first, 0))
    method.after_experience(first)
    second = experience(1, (2, 3))
    method.before_experience(second)
    x = torch.cat([batch_of(second, 1).x, method.exemplar_x[:6]])
    y = torch.cat([batch_of(second, 1).y, method.exemplar_y[:6]])
    method.exemplars_for_step = lambda size: torch.arange(6)  # type: ignore[method-assign]
    net, old_net = copy.deepcopy(method.net), method.old_net
    out = method.observe(batch_of(second, 1))
    # independent computation on the copy taken before the step
    f, f_old = net.features(x), old_net.features(x)
    w = F.normalize(net.head.weight, dim=1)
    cos = F.normalize(f, dim=1) @ w.T
    seen = [0, 1, 2, 3]
    ce = F.cross_entropy(net.head.sigma * cos[:, seen], y)
    lf = (1 - F.cosine_similarity(f, f_old)).mean()
    old_rows = y < 2
    gt = cos[old_rows].gather(1, y[old_rows][:, None])
    top = cos[old_rows][:, 2:4].topk(2, dim=1).values
    mr = (0.5 - gt + top).clamp(min=0).mean()
    expected = ce + 5.0 * math.sqrt(2 / 2) * lf + mr
    assert float(out.loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    assert float(mr.detach()) > 0 and float(lf.detach()) > 0  # both terms act in this case


def test_old_class_rows_do_not_move_in_an_incremental_step():
    method = make_lucir()
    first = experience(0, (0, 1))
    method.before_experience(first)
    method.observe(batch_of(first, 0))
    method.after_experience(first)
    second = experience(1, (2, 3))
    method.before_experience(second)
    before = method.classifier.weight.detach().clone()
    method.observe(batch_of(second, 1))
    after = method.classifier.weight
    assert torch.equal(before[:2], after[:2])
    assert not torch.equal(before[2:4], after[2:4])


def test_balanced_finetuning_trains_only_the_classifier():
    method = make_lucir(finetune_epochs=2, finetune_lr=0.05)
    first = experience(0, (0, 1))
    method.before_experience(first)
    method.after_experience(first)  # first experience: no finetuning
    second = experience(1, (2, 3))
    method.before_experience(second)
    body = copy.deepcopy(method.net.body.state_dict())
    head = method.classifier.weight.detach().clone()
    method.after_experience(second)
    assert all(torch.equal(v, method.net.body.state_dict()[k]) for k, v in body.items())
    assert not torch.equal(head, method.classifier.weight)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lambda_base", -1.0),
        ("lambda_mr", -0.1),
        ("margin", -0.5),
        ("top_k", 0),
        ("finetune_epochs", -1),
        ("finetune_lr", 0.0),
        ("classifier", "linear"),
    ],
)
def test_bad_settings_raise_config_errors(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"method.{field}"):
        LUCIRConfig(**{field: value})  # type: ignore[arg-type]
