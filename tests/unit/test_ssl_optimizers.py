"""The continual-SSL optimisers: LARS's clipped trust ratio by hand, Nesterov momentum, choices."""

from __future__ import annotations

import pytest
import torch
from tests.contract.test_methods import build_method, fixed_batch, make_stream

from lifelong.errors import ConfigError
from lifelong.methods.cssl import CSSLConfig
from lifelong.ssl.optimizers import LARS, lars_scales


def test_the_trust_ratio_by_hand() -> None:
    w, g = torch.tensor([3.0, 4.0]), torch.tensor([0.6, 0.8])  # ‖w‖ = 5, ‖g‖ = 1
    # η‖w‖/‖g‖ = 0.005 · 5 = 0.025; over lr 0.1: 0.25
    assert lars_scales(w, g, lr=0.1, eta=0.005, weight_decay=0.0) == pytest.approx(0.25)
    # with λ = 0.1: 0.025 / (1 + 0.5) / 0.1 = 1/6
    assert lars_scales(w, g, lr=0.1, eta=0.005, weight_decay=0.1) == pytest.approx(1 / 6)
    assert lars_scales(w, g, lr=0.1, eta=1.0, weight_decay=0.0) == 1.0  # clipped at 1
    assert lars_scales(torch.zeros(2), g, lr=0.1, eta=0.005, weight_decay=0.0) == 1.0


def test_a_step_scales_weights_and_leaves_biases_alone() -> None:
    weight = torch.nn.Parameter(torch.tensor([[3.0, 4.0]]))
    bias = torch.nn.Parameter(torch.tensor([1.0]))
    weight.grad, bias.grad = torch.tensor([[0.6, 0.8]]), torch.tensor([0.5])
    LARS([weight, bias], lr=0.1, momentum=0.0, weight_decay=0.1, eta=0.005).step()
    # weight: (g + λw) = (0.9, 1.2) scaled by 1/6, times lr 0.1 → (0.015, 0.02)
    torch.testing.assert_close(weight.detach(), torch.tensor([[2.985, 3.98]]))
    # bias: plain g + λw = 0.6, times lr → 0.06
    torch.testing.assert_close(bias.detach(), torch.tensor([0.94]))


def test_unscaled_parameters_follow_torch_nesterov_sgd() -> None:
    ours = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    theirs = torch.nn.Parameter(ours.detach().clone())
    lars = LARS([ours], lr=0.05, momentum=0.9, weight_decay=1e-4, eta=0.005)
    sgd = torch.optim.SGD([theirs], lr=0.05, momentum=0.9, weight_decay=1e-4, nesterov=True)
    for g in ([0.3, 0.1], [-0.2, 0.4], [0.5, 0.5]):
        ours.grad, theirs.grad = torch.tensor(g), torch.tensor(g)
        lars.step()
        sgd.step()
    torch.testing.assert_close(ours.detach(), theirs.detach())


@pytest.mark.parametrize(("name", "kind"), [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                            ("lars", LARS)])  # fmt: skip
def test_cssl_trains_with_each_optimizer(name: str, kind: type) -> None:
    stream = make_stream("rgb-augmented")
    method = build_method("cssl", stream, optimizer=name)
    assert isinstance(method.optimizer, kind)
    before = [p.detach().clone() for p in method.net.parameters()]
    out = method.observe(fixed_batch(stream, 0, size=8))
    assert torch.isfinite(out.loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, method.net.parameters(), strict=True))


def test_unknown_optimizer_and_bad_eta_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"method\.optimizer"):
        CSSLConfig(optimizer="rmsprop")
    with pytest.raises(ConfigError, match="lars_eta"):
        CSSLConfig(lars_eta=0.0)
