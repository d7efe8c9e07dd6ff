"""HAL's anchor objective by hand, anchor ascent, and the anchor term of a step."""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

import lifelong.components  # noqa: F401  (fills the registries)
from lifelong.backbones import BACKBONES
from lifelong.backbones.mlp import MLPConfig
from lifelong.data.transforms import ImageTransform
from lifelong.methods.base import METHODS, MethodContext
from lifelong.methods.hal import HAL, anchor_objective, learn_anchor
from lifelong.types import Batch


class Linear(nn.Module):
    """Logits ``W x``; the features are the input itself."""

    def __init__(self, weight: list[list[float]]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(weight))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.T


def test_anchor_objective_is_forgetting_minus_the_embedding_penalty():
    tuned = Linear([[1.0, 0.0], [0.0, 1.0]])  # logits of e = (1, 2): (1, 2)
    current = Linear([[0.0, 1.0], [1.0, 0.0]])  # logits (2, 1)
    anchor = torch.tensor([[1.0, 2.0]])
    mean = torch.tensor([0.0, 1.0])
    lse = math.log(math.exp(1) + math.exp(2))
    forgetting = (lse - 1) - (lse - 2)  # CE of class 0 under tuned minus under current: 1
    penalty = 0.1 * (1.0**2 + 1.0**2)  # gamma ||e - mean||^2
    value = anchor_objective(anchor, 0, tuned, current, mean, gamma=0.1)
    assert math.isclose(float(value.detach()), forgetting - penalty, rel_tol=1e-6)


def test_anchor_ascent_increases_the_objective_and_the_forgetting():
    g = torch.Generator().manual_seed(0)
    tuned = Linear(torch.randn(3, 4, generator=g).tolist())
    current = Linear(torch.randn(3, 4, generator=g).tolist())
    mean = torch.zeros(4)
    init = torch.rand(1, 4, generator=g)
    anchor = learn_anchor(init, 1, tuned, current, mean, gamma=0.01, steps=20, lr=0.1)
    before = anchor_objective(init, 1, tuned, current, mean, 0.01)
    after = anchor_objective(anchor, 1, tuned, current, mean, 0.01)
    assert float(after.detach()) > float(before.detach()) + 0.1
    label = torch.tensor([1])

    def forgetting(e: torch.Tensor) -> float:
        with torch.no_grad():
            return float(F.cross_entropy(tuned(e), label) - F.cross_entropy(current(e), label))

    assert forgetting(anchor) > forgetting(init)
    assert not anchor.requires_grad


def test_the_step_penalises_the_change_of_anchor_outputs_a_plain_sgd_step_would_make():
    torch.manual_seed(0)
    backbone = BACKBONES.get("mlp").build(MLPConfig(hidden=(16, 8)), (1, 4, 4), 6)
    ctx = MethodContext(
        backbone,
        6,
        (1, 4, 4),
        ImageTransform((0.0,), (1.0,)),
        torch.device("cpu"),
        torch.Generator().manual_seed(0),
    )
    entry = METHODS.get("hal")
    method = entry.build(entry.make_config({"lr": 0.3, "hal_lambda": 2.0}), ctx)
    assert isinstance(method, HAL)
    g = torch.Generator().manual_seed(1)
    method.anchors = torch.rand(2, 1, 4, 4, generator=g)
    x, y = torch.randn(5, 1, 4, 4, generator=g), torch.tensor([0, 1, 2, 0, 1])
    # independently: step a copy by -lr * grad CE, compare its anchor outputs with the net's
    stepped = copy.deepcopy(method.net)
    F.cross_entropy(stepped(x), y).backward()
    with torch.no_grad():
        for p in stepped.parameters():
            p -= 0.3 * p.grad
        expected = (method.net(method.anchors) - stepped(method.anchors)).pow(2).mean()
    out = method.observe(Batch(x, y, x, 0))
    assert torch.isclose(out.terms["anchor"], expected, rtol=1e-5)
    assert torch.isclose(out.loss, out.terms["ce"] + 2.0 * out.terms["anchor"])
    assert float(expected) > 0
