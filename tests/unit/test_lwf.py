"""LwF and LwF.MC: the distillation terms and targets by hand, and what each step trains."""

from __future__ import annotations

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
from lifelong.losses.distillation import (
    multiclass_distillation_targets,
    sigmoid_distillation_loss,
    soft_target_distillation,
)
from lifelong.methods.base import METHODS, Method, MethodContext
from lifelong.methods.lwf import LwF
from lifelong.methods.lwf_mc import LwFMC
from lifelong.types import Batch

CPU = torch.device("cpu")
SHAPE = (1, 2, 2)
CLASSES = 6
TRANSFORM = ImageTransform((0.0,), (1.0,))


def softmax(values: list[float]) -> list[float]:
    exps = [math.exp(v) for v in values]
    return [e / sum(exps) for e in exps]


def sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def test_soft_target_distillation_by_hand() -> None:
    student = [[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]]
    teacher = [[0.5, 0.0, -1.0], [2.0, 2.0, 0.0]]
    t = 2.0
    expected = 0.0
    for s, z in zip(student, teacher, strict=True):
        q = softmax([v / t for v in z])
        p = softmax([v / t for v in s])
        expected -= sum(qk * math.log(pk) for qk, pk in zip(q, p, strict=True))
    expected /= 2
    s_tensor = torch.tensor(student, requires_grad=True)
    loss = soft_target_distillation(s_tensor, torch.tensor(teacher), t)
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-6)
    # the gradient of a soft-target cross-entropy: (p − q) / (T · B)
    loss.backward()
    assert s_tensor.grad is not None
    for b in range(2):
        q_b = torch.tensor(softmax([v / t for v in teacher[b]]))
        p_b = torch.tensor(softmax([v / t for v in student[b]]))
        torch.testing.assert_close(s_tensor.grad[b], (p_b - q_b) / (t * 2))
    # equal outputs: the loss is the teacher's entropy (KL is 0), not 0
    same = soft_target_distillation(torch.tensor(teacher), torch.tensor(teacher), t)
    q0 = softmax([v / t for v in teacher[0]])
    q1 = softmax([v / t for v in teacher[1]])
    entropy = -sum(v * math.log(v) for v in q0) - sum(v * math.log(v) for v in q1)
    assert float(same) == pytest.approx(entropy / 2, rel=1e-6)


def test_multiclass_targets_are_teacher_sigmoids_on_old_classes_and_one_hot_on_new() -> None:
    teacher = torch.tensor([[0.0, 2.0, 5.0, -5.0], [-1.0, 1.0, 5.0, 5.0]])
    old = torch.tensor([True, True, False, False])
    targets = multiclass_distillation_targets(torch.tensor([3, 2]), teacher, old)
    expected = torch.tensor(
        [[sigmoid(0.0), sigmoid(2.0), 0.0, 1.0], [sigmoid(-1.0), sigmoid(1.0), 1.0, 0.0]]
    )
    torch.testing.assert_close(targets, expected)


def test_sigmoid_distillation_loss_sums_classes_and_averages_the_batch() -> None:
    logits = torch.tensor([[0.0, 1.0, -2.0], [3.0, 0.5, 0.0]])
    targets = torch.tensor([[0.2, 1.0, 0.0], [0.7, 0.0, 1.0]])
    expected = 0.0
    for zs, ts in zip(logits.tolist(), targets.tolist(), strict=True):
        for z, t in zip(zs, ts, strict=True):
            expected -= t * math.log(sigmoid(z)) + (1 - t) * math.log(1 - sigmoid(z))
    assert float(sigmoid_distillation_loss(logits, targets)) == pytest.approx(expected / 2)


def experience(t: int) -> Experience:
    g = torch.Generator().manual_seed(10 + t)
    classes = (2 * t, 2 * t + 1)
    x = torch.randint(0, 256, (12, *SHAPE), generator=g, dtype=torch.uint8)
    y = torch.tensor([classes[i % 2] for i in range(12)])
    return Experience(t, classes, ImageSet(x, y), ImageSet(x, y))


def build(name: str, **fields: object) -> LwF | LwFMC:
    torch.manual_seed(0)
    backbone = BACKBONES.get("mlp").build(MLPConfig(hidden=(8,)), SHAPE, CLASSES)
    ctx = MethodContext(backbone, CLASSES, SHAPE, TRANSFORM, CPU, torch.Generator().manual_seed(0))
    entry = METHODS.get(name)
    method = entry.build(entry.make_config({"lr": 0.1, **fields}), ctx)
    assert isinstance(method, LwF | LwFMC)
    return method


def batch_of(exp: Experience, n: int = 6) -> Batch:
    x = TRANSFORM.normalize(exp.train.x[:n])
    return Batch(x, exp.train.y[:n], x, exp.id)


def head_rows(method: Method) -> torch.Tensor:
    return torch.cat([method.net.head.weight, method.net.head.bias.unsqueeze(1)], 1).detach()


def body_parameters(method: Method) -> list[torch.Tensor]:
    return [p for name, p in method.net.named_parameters() if not name.startswith("head.")]


def test_lwf_distils_old_classes_and_never_trains_future_units() -> None:
    method = build("lwf", alpha=0.7, temperature=3.0, warmup_epochs=0)
    first, second = experience(0), experience(1)
    method.before_experience(first)
    method.observe(batch_of(first))
    method.after_experience(first)
    method.before_experience(second)
    batch = batch_of(second)
    with torch.no_grad():
        logits = method.net(batch.x)
        teacher = method.previous(batch.x)
    rows = head_rows(method)
    out = method.observe(batch)
    old = [0, 1]
    kd = soft_target_distillation(logits[:, old], teacher[:, old], 3.0)
    # CE over the 4 seen classes only
    ce = F.cross_entropy(logits[:, :4], batch.y)
    assert float(out.terms["distillation"]) == pytest.approx(float(kd), rel=1e-5)
    assert float(out.terms["ce"]) == pytest.approx(float(ce), rel=1e-5)
    assert float(out.loss) == pytest.approx(float(ce + 0.7 * kd), rel=1e-5)
    after = head_rows(method)
    assert torch.equal(after[4:], rows[4:])  # classes 4, 5 not seen: their units get no gradient
    assert not torch.equal(after[:4], rows[:4])


def test_lwf_warm_up_trains_only_the_new_classes_head_units() -> None:
    method = build("lwf", warmup_epochs=2, warmup_batch_size=5)
    first, second = experience(0), experience(1)
    method.before_experience(first)
    method.observe(batch_of(first))
    method.after_experience(first)
    body = [p.detach().clone() for p in body_parameters(method)]
    rows = head_rows(method)
    method.before_experience(second)
    after = head_rows(method)
    assert not torch.equal(after[2:4], rows[2:4])  # the new classes 2, 3
    assert torch.equal(after[[0, 1, 4, 5]], rows[[0, 1, 4, 5]])
    assert all(torch.equal(a, b) for a, b in zip(body_parameters(method), body, strict=True))
    assert method.net.training


def test_lwf_mc_step_is_bce_against_distilled_targets_on_seen_classes() -> None:
    method = build("lwf_mc")
    first, second = experience(0), experience(1)
    method.before_experience(first)
    batch = batch_of(first)
    with torch.no_grad():
        logits = method.net(batch.x)
    out = method.observe(batch)
    # first experience: one-hot targets over the 2 seen classes
    one_hot = F.one_hot(batch.y, CLASSES).float()
    expected = sigmoid_distillation_loss(logits[:, :2], one_hot[:, :2])
    assert float(out.loss) == pytest.approx(float(expected), rel=1e-5)
    method.after_experience(first)
    method.before_experience(second)
    batch = batch_of(second)
    with torch.no_grad():
        logits = method.net(batch.x)
        teacher = method.previous(batch.x)
    rows = head_rows(method)
    out = method.observe(batch)
    targets = torch.cat(
        [torch.sigmoid(teacher[:, :2]), F.one_hot(batch.y, CLASSES).float()[:, 2:4]], 1
    )
    expected = sigmoid_distillation_loss(logits[:, :4], targets)
    assert float(out.terms["bce"]) == pytest.approx(float(expected), rel=1e-5)
    assert torch.equal(head_rows(method)[4:], rows[4:])


def test_lwf_config_checks() -> None:
    for field, value in (("temperature", 0.0), ("alpha", -1.0), ("warmup_epochs", -1)):
        with pytest.raises(ConfigError, match=field):
            METHODS.get("lwf").make_config({field: value})
