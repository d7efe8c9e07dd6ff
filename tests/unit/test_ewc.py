"""EWC and online EWC: the Fisher diagonal, the penalty and the stored pairs, by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

import lifelong.components  # noqa: F401  (fills the registries)
from lifelong.backbones import BACKBONES
from lifelong.backbones.mlp import MLPConfig
from lifelong.data.stream import Experience
from lifelong.data.tensors import ImageSet
from lifelong.data.transforms import ImageTransform
from lifelong.errors import ConfigError
from lifelong.methods.base import METHODS, MethodContext
from lifelong.methods.ewc import EWC, ewc_penalty
from lifelong.nn.fisher import empirical_fisher_diagonal
from lifelong.types import Batch

CPU = torch.device("cpu")
SHAPE = (1, 2, 2)
TRANSFORM = ImageTransform((0.0,), (1.0,))


class TwoParameters(nn.Module):
    """Logits (w·x, b) for a scalar input x: two classes, two parameters."""

    def __init__(self, w: float, b: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))
        self.b = nn.Parameter(torch.tensor(b))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.w * x[:, 0], self.b.expand(x.shape[0])], dim=1)


W, B = 0.5, -0.3
XS, YS = (1.0, 2.0, -1.0), (0, 1, 0)


def hand_fisher(weighted: bool) -> tuple[float, float]:
    """d log p0 / dw = x p1, d log p0 / db = -p1; d log p1 / dw = -x p0, d log p1 / db = p0."""
    f_w = f_b = 0.0
    for x, y in zip(XS, YS, strict=True):
        p0 = 1 / (1 + math.exp(B - W * x))
        p1 = 1 - p0
        g_w, g_b = (x * p1, -p1) if y == 0 else (-x * p0, p0)
        weight = (p0 if y == 0 else p1) if weighted else 1.0
        f_w += weight * g_w**2
        f_b += weight * g_b**2
    return f_w / len(XS), f_b / len(XS)


@pytest.mark.parametrize("weighted", [False, True])
def test_fisher_diagonal_of_a_two_parameter_model_matches_the_hand_computation(
    weighted: bool,
) -> None:
    net = TwoParameters(W, B)
    x = torch.tensor(XS).unsqueeze(1)
    y = torch.tensor(YS)
    # two chunks (2 + 1 examples): the mean is over all examples, not over chunk means
    chunks = [(x[:2], y[:2]), (x[2:], y[2:])]
    f_w, f_b = empirical_fisher_diagonal(net, list(net.named_parameters()), chunks, weighted)
    expected_w, expected_b = hand_fisher(weighted)
    assert float(f_w) == pytest.approx(expected_w, rel=1e-5)
    assert float(f_b) == pytest.approx(expected_b, rel=1e-5)


def test_fisher_diagonal_equals_one_backward_pass_per_example() -> None:
    """An independent batch-of-1 loop with autograd gives the same diagonal (MLP, dropout off)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Dropout(0.5), nn.Linear(5, 4))
    x, y = torch.randn(7, 3), torch.randint(0, 4, (7,))
    params = list(net.named_parameters())
    fisher = empirical_fisher_diagonal(net, params, [(x[:4], y[:4]), (x[4:], y[4:])])
    assert net.training  # the mode is restored
    net.eval()
    expected = [torch.zeros_like(p) for _, p in params]
    for xi, yi in zip(x, y, strict=True):
        net.zero_grad()
        F.log_softmax(net(xi.unsqueeze(0)), dim=1)[0, yi].backward()
        for total, (_, p) in zip(expected, params, strict=True):
            assert p.grad is not None
            total += p.grad.square() / len(x)
    for got, want in zip(fisher, expected, strict=True):
        torch.testing.assert_close(got, want)


def test_penalty_value_and_gradient_by_hand() -> None:
    theta = torch.tensor([1.0, -2.0], requires_grad=True)
    importances = [[torch.tensor([0.5, 2.0])], [torch.tensor([1.0, 0.25])]]
    anchors = [[torch.tensor([0.0, -1.0])], [torch.tensor([2.0, 0.0])]]
    penalty = ewc_penalty([theta], importances, anchors)
    # t=1: 0.5 * 1^2 + 2 * (-1)^2 = 2.5; t=2: 1 * (-1)^2 + 0.25 * (-2)^2 = 2
    assert float(penalty.detach()) == pytest.approx(4.5)
    penalty.backward()
    # d/dθ = Σ_t 2 F_t (θ − θ*_t) = [2*0.5*1 + 2*1*(-1), 2*2*(-1) + 2*0.25*(-2)] = [-1, -5]
    assert theta.grad is not None
    torch.testing.assert_close(theta.grad, torch.tensor([-1.0, -5.0]))
    assert float(ewc_penalty([theta], [], [])) == 0.0


def experience(t: int, seed: int) -> Experience:
    g = torch.Generator().manual_seed(seed)
    classes = (2 * t, 2 * t + 1)
    x = torch.randint(0, 256, (10, *SHAPE), generator=g, dtype=torch.uint8)
    y = torch.tensor([classes[i % 2] for i in range(10)])
    return Experience(t, classes, ImageSet(x, y), ImageSet(x, y))


def build(name: str, **fields: object) -> EWC:
    torch.manual_seed(0)
    backbone = BACKBONES.get("mlp").build(MLPConfig(hidden=(6,)), SHAPE, 4)
    ctx = MethodContext(backbone, 4, SHAPE, TRANSFORM, CPU, torch.Generator().manual_seed(0))
    entry = METHODS.get(name)
    method = entry.build(entry.make_config({"lr": 0.1, **fields}), ctx)
    assert isinstance(method, EWC)
    return method


def fisher_at_now(method: EWC, exp: Experience) -> list[torch.Tensor]:
    x = TRANSFORM.normalize(exp.train.x)
    return empirical_fisher_diagonal(method.net, method.tracked, [(x, exp.train.y)])


def shift_parameters(method: EWC, amount: float) -> None:
    with torch.no_grad():
        for _, p in method.tracked:
            p.add_(amount)


@pytest.mark.parametrize("online", [False, True])
def test_pairs_after_two_experiences(online: bool) -> None:
    """Offline keeps (F_1, θ*_1), (F_2, θ*_2); online keeps (γ F_1 + F_2, θ*_2)."""
    gamma = 0.5
    method = build("ewc_online", gamma=gamma) if online else build("ewc")
    first, second = experience(0, 1), experience(1, 2)
    f1 = fisher_at_now(method, first)
    anchor1 = [p.detach().clone() for _, p in method.tracked]
    method.after_experience(first)
    shift_parameters(method, 0.1)  # the second experience moved the parameters
    f2 = fisher_at_now(method, second)
    anchor2 = [p.detach().clone() for _, p in method.tracked]
    method.after_experience(second)
    if online:
        assert len(method.importances) == len(method.anchors) == 1
        for got, a, b in zip(method.importances[0], f1, f2, strict=True):
            torch.testing.assert_close(got, gamma * a + b)
        for anchor, want in zip(method.anchors[0], anchor2, strict=True):
            assert torch.equal(anchor, want)
    else:
        assert len(method.importances) == len(method.anchors) == 2
        for stored, expected in zip(method.importances, (f1, f2), strict=True):
            for fisher, w in zip(stored, expected, strict=True):
                torch.testing.assert_close(fisher, w)
        for stored, expected in zip(method.anchors, (anchor1, anchor2), strict=True):
            assert all(torch.equal(g, w) for g, w in zip(stored, expected, strict=True))
    assert any(float(f.abs().sum()) > 0 for f in method.importances[0])


def test_observe_minimises_ce_plus_half_lambda_penalty() -> None:
    method = build("ewc", ewc_lambda=4.0)
    first = experience(0, 1)
    method.after_experience(first)
    shift_parameters(method, 0.05)
    x, y = TRANSFORM.normalize(first.train.x[:4]), first.train.y[:4]
    params = [p for _, p in method.tracked]
    expected_penalty = float(ewc_penalty(params, method.importances, method.anchors).detach())
    ce = float(F.cross_entropy(method.net(x), y).detach())
    before = [p.detach().clone() for p in params]
    out = method.observe(Batch(x, y, x, 0))
    assert float(out.terms["ewc"]) == pytest.approx(expected_penalty, rel=1e-6)
    assert float(out.loss) == pytest.approx(ce + 2.0 * expected_penalty, rel=1e-6)
    assert expected_penalty > 0
    # the step included the penalty's gradient λ F (θ − θ*): compare with a CE-only step
    method_ce = build("ewc", ewc_lambda=4.0)
    method_ce.after_experience(first)
    shift_parameters(method_ce, 0.05)
    method_ce.importances = [[torch.zeros_like(f) for f in method_ce.importances[0]]]
    method_ce.observe(Batch(x, y, x, 0))
    for p, q, b, f, a in zip(
        params,
        [p for _, p in method_ce.tracked],
        before,
        method.importances[0],
        method.anchors[0],
        strict=True,
    ):
        torch.testing.assert_close(p - q, -0.1 * 4.0 * f * (b - a), atol=1e-6, rtol=1e-4)


def test_gamma_belongs_to_online_ewc_and_online_is_fixed() -> None:
    with pytest.raises(ConfigError, match="gamma"):
        METHODS.get("ewc").make_config({"gamma": 0.9})
    with pytest.raises(ConfigError, match="online"):
        METHODS.get("ewc_online").make_config({"online": False})
    with pytest.raises(ConfigError, match="ewc_lambda"):
        METHODS.get("ewc").make_config({"ewc_lambda": -1.0})
    assert METHODS.get("ewc_online").make_config({"gamma": 0.9}).online  # type: ignore[attr-defined]
