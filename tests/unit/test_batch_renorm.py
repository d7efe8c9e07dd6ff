"""BatchRenorm2d (spec ar1.md §2.2) against hand-computed values and against batch norm."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from lifelong.errors import ConfigError
from lifelong.nn.batch_renorm import BatchRenorm2d, WarmStartBatchNorm2d, recalibrate

EPS = 1e-5


def _two_channel_layer() -> BatchRenorm2d:
    """μ = (1, 5.2), σ = (0.5, 1), γ = (2, 1), β = (1, 0); caps r 1.5 → 2, d 0.5 → 1."""
    brn = BatchRenorm2d(
        2, momentum=0.1, r_max=1.5, d_max=0.5, max_r_max=2.0, max_d_max=1.0, inc_step=0.1
    )
    with torch.no_grad():
        brn.running_mean.copy_(torch.tensor([1.0, 5.2]))
        brn.running_std.copy_(torch.tensor([0.5, 1.0]))
        brn.weight.copy_(torch.tensor([2.0, 1.0]))
        brn.bias.copy_(torch.tensor([1.0, 0.0]))
    brn.mark_estimated()  # set statistics move at the momentum's rate, not a warm-up's
    return brn


def test_fresh_statistics_warm_up_from_the_first_batch_then_average() -> None:
    brn = BatchRenorm2d(2, eps=EPS, momentum=0.01).train()
    x = _two_channel_input()
    brn(x)  # a fresh layer: its placeholders (0, 1) are replaced, not kept at weight 0.99
    torch.testing.assert_close(brn.running_mean, torch.tensor([2.0, 5.0]))
    torch.testing.assert_close(brn.running_std, torch.tensor([math.sqrt(1 + EPS), math.sqrt(EPS)]))
    brn(x + 1.0)  # the second batch counts half: w = 0.99 + 1
    torch.testing.assert_close(brn.running_mean, torch.tensor([2.0, 5.0]) + 1 / 1.99)
    brn.set_incremental(5e-5)  # then the reference's rate, exactly
    assert float(brn.stats_weight) == pytest.approx(1 / 5e-5)


def _two_channel_input() -> torch.Tensor:
    """N=2, H=1, W=2. Channel 0 holds 1, 3 / 3, 1 (μ_B 2, var 1); channel 1 is all 5."""
    x = torch.empty(2, 2, 1, 2)
    x[:, 0, 0] = torch.tensor([[1.0, 3.0], [3.0, 1.0]])
    x[:, 1] = 5.0
    return x


def test_training_forward_matches_hand_computed_values() -> None:
    brn = _two_channel_layer().train()
    y = brn(_two_channel_input())
    # channel 0: σ_B = sqrt(1 + ε); r = clip(σ_B / 0.5 ≈ 2, 1/1.5, 1.5) = 1.5;
    # d = clip((2 − 1) / 0.5 = 2, −0.5, 0.5) = 0.5; y = 2 ((x − 2) / σ_B · 1.5 + 0.5) + 1
    sb = math.sqrt(1 + EPS)
    low, high = 2 * (-1.5 / sb + 0.5) + 1, 2 * (1.5 / sb + 0.5) + 1  # ≈ −1 and ≈ 5
    expected0 = torch.tensor([[low, high], [high, low]])
    torch.testing.assert_close(y[:, 0, 0], expected0)
    # channel 1: x − μ_B = 0, r clipped below at 1/1.5 (σ_B ≈ 0.003), d = (5 − 5.2) / 1 = −0.2
    torch.testing.assert_close(y[:, 1], torch.full((2, 1, 2), -0.2))
    # running stats: μ ← μ + 0.1 (μ_B − μ), σ ← σ + 0.1 (σ_B − σ) (an EMA of the std)
    torch.testing.assert_close(brn.running_mean, torch.tensor([1.1, 5.18]))
    std1 = 0.9 * 1.0 + 0.1 * math.sqrt(EPS)
    torch.testing.assert_close(brn.running_std, torch.tensor([0.45 + 0.1 * sb, std1]))
    # caps: + inc_step · N = 0.1 · 2
    assert float(brn.r_max) == pytest.approx(1.7)
    assert float(brn.d_max) == pytest.approx(0.7)


def test_eval_uses_running_stats_without_eps() -> None:
    brn = _two_channel_layer().train(False)
    x = _two_channel_input()
    y = brn(x)
    # y = γ (x − μ) / σ + β: channel 0 → 2 (x − 1) / 0.5 + 1, channel 1 → (5 − 5.2) / 1
    expected0 = torch.tensor([[1.0, 9.0], [9.0, 1.0]])
    torch.testing.assert_close(y[:, 0, 0], expected0)
    torch.testing.assert_close(y[:, 1], torch.full((2, 1, 2), -0.2))
    # nothing moves in evaluation
    torch.testing.assert_close(brn.running_mean, torch.tensor([1.0, 5.2]))
    assert float(brn.r_max) == 1.5 and float(brn.d_max) == 0.5


def _random_stats(brn: BatchRenorm2d, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    c = brn.num_features
    with torch.no_grad():
        brn.running_mean.copy_(torch.randn(c, generator=g))
        brn.running_std.copy_(torch.rand(c, generator=g) + 0.5)
        brn.weight.copy_(torch.randn(c, generator=g))
        brn.bias.copy_(torch.randn(c, generator=g))
    brn.mark_estimated()  # set statistics: EMA at the momentum from the start


def test_equals_batch_norm_when_r_max_is_1_and_d_max_is_0() -> None:
    brn = BatchRenorm2d(3, momentum=0.01, inc_step=0.0).train()
    _random_stats(brn, 0)
    running_mean = brn.running_mean.clone()
    running_var = brn.running_std.square()
    gamma = brn.weight.detach().clone().requires_grad_(True)
    beta = brn.bias.detach().clone().requires_grad_(True)
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        x = (torch.randn(4, 3, 5, 5, generator=g) * 3 + 2).requires_grad_(True)
        x_bn = x.detach().clone().requires_grad_(True)
        y = brn(x)
        y_bn = F.batch_norm(x_bn, running_mean, running_var, gamma, beta, True, 0.01, EPS)
        torch.testing.assert_close(y, y_bn)
        upstream = torch.randn(y.shape, generator=g)
        (y * upstream).sum().backward()
        (y_bn * upstream).sum().backward()
        assert x.grad is not None and x_bn.grad is not None
        torch.testing.assert_close(x.grad, x_bn.grad)
    assert brn.weight.grad is not None and gamma.grad is not None
    torch.testing.assert_close(brn.weight.grad, gamma.grad)
    torch.testing.assert_close(brn.running_mean, running_mean)


def test_r_and_d_carry_no_gradient() -> None:
    # caps wide enough that r = σ_B / σ and d = (μ_B − μ) / σ are not clipped; with gradient
    # through them the output would be γ (x − μ) / σ + β, whose input gradient is γ / σ
    brn = BatchRenorm2d(3, r_max=100.0, d_max=100.0, max_r_max=100.0, max_d_max=100.0).train()
    _random_stats(brn, 2)
    gamma = brn.weight.detach().clone()
    beta = brn.bias.detach().clone()
    sigma = brn.running_std.clone()
    x = (torch.randn(4, 3, 3, 3, generator=torch.Generator().manual_seed(3)) + 1).requires_grad_()
    upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(4))
    (brn(x) * upstream).sum().backward()
    assert x.grad is not None
    # detached r and d: y = r · (batch norm output − β) + γ d + β, so ∂/∂x = r · batch norm's
    x_bn = x.detach().clone().requires_grad_(True)
    y_bn = F.batch_norm(x_bn, None, None, gamma, beta, True, 0.0, EPS)
    (y_bn * upstream).sum().backward()
    assert x_bn.grad is not None
    std_b = (x.detach().var(dim=(0, 2, 3), unbiased=False) + EPS).sqrt()
    r = (std_b / sigma)[:, None, None]
    torch.testing.assert_close(x.grad, r * x_bn.grad)
    through = upstream * (gamma / sigma)[:, None, None]
    assert not torch.allclose(x.grad, through, atol=1e-3)


def test_schedules_grow_per_sample_and_stop_at_the_caps() -> None:
    brn = BatchRenorm2d(2, inc_step=0.01).train()  # r_max 1 → 1.25, d_max 0 → 0.5
    x = torch.randn(10, 2, 2, 2, generator=torch.Generator().manual_seed(0))
    r_seen, d_seen = [], []
    for _ in range(6):
        brn(x)
        r_seen.append(float(brn.r_max))
        d_seen.append(float(brn.d_max))
    assert r_seen == pytest.approx([1.1, 1.2, 1.25, 1.25, 1.25, 1.25])
    assert d_seen == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.5])
    brn.train(False)
    brn(x)
    assert float(brn.d_max) == pytest.approx(0.5)


def test_defaults_reach_the_caps_after_the_reference_number_of_minibatches() -> None:
    brn = BatchRenorm2d(1).train()  # spec §2.2: ≈48 (r) and ≈96 (d) minibatches of 128
    x = torch.randn(128, 1, 1, 1, generator=torch.Generator().manual_seed(0))
    steps_r = steps_d = 0
    for step in range(1, 101):
        brn(x)
        steps_r = steps_r or (step if float(brn.r_max) >= 1.25 else 0)
        steps_d = steps_d or (step if float(brn.d_max) >= 0.5 else 0)
    assert (steps_r, steps_d) == (48, 96)


def test_set_incremental_fixes_the_caps_and_slows_the_statistics() -> None:
    brn = BatchRenorm2d(2).train()
    brn.set_incremental(5e-5, 1.25, 0.5)
    x = torch.randn(64, 2, 3, 3, generator=torch.Generator().manual_seed(0)) + 10
    for _ in range(5):
        brn(x)
    assert float(brn.r_max) == 1.25 and float(brn.d_max) == 0.5
    assert float(brn.inc_step) == 0.0
    mean_b = x.mean(dim=(0, 2, 3))
    expected = torch.zeros(2)
    for _ in range(5):
        expected = expected + 5e-5 * (mean_b - expected)
    torch.testing.assert_close(brn.running_mean, expected)


def test_from_batch_norm_converts_gamma_beta_mean_and_std() -> None:
    bn = nn.BatchNorm2d(3)
    g = torch.Generator().manual_seed(0)
    assert bn.running_mean is not None and bn.running_var is not None
    with torch.no_grad():
        bn.weight.copy_(torch.randn(3, generator=g))
        bn.bias.copy_(torch.randn(3, generator=g))
        bn.running_mean.copy_(torch.randn(3, generator=g))
        bn.running_var.copy_(torch.rand(3, generator=g) + 0.5)
    brn = BatchRenorm2d.from_batch_norm(bn, momentum=0.02)
    assert float(brn.stats_weight) == pytest.approx(1 / 0.02)  # trained: no warm-up
    torch.testing.assert_close(brn.weight.detach(), bn.weight.detach())
    torch.testing.assert_close(brn.bias.detach(), bn.bias.detach())
    torch.testing.assert_close(brn.running_mean, bn.running_mean)
    torch.testing.assert_close(brn.running_std, bn.running_var.sqrt())
    assert float(brn.momentum) == pytest.approx(0.02)
    brn.train(False)
    x = torch.randn(2, 3, 4, 4, generator=g)
    assert bn.running_mean is not None and bn.running_var is not None
    mu, sigma = bn.running_mean[:, None, None], bn.running_var.sqrt()[:, None, None]
    expected = bn.weight[:, None, None] * (x - mu) / sigma + bn.bias[:, None, None]
    torch.testing.assert_close(brn(x), expected.detach())


def test_state_dict_round_trip_keeps_stats_caps_and_settings(tmp_path: Path) -> None:
    brn = BatchRenorm2d(3).train()
    x = torch.randn(8, 3, 4, 4, generator=torch.Generator().manual_seed(0)) * 2 + 1
    for _ in range(3):
        brn(x)
    brn.set_incremental(5e-5, 1.25, 0.5)
    state = brn.state_dict()
    for key in ("running_mean", "running_std", "r_max", "d_max", "momentum", "inc_step"):
        assert key in state
    torch.save(state, tmp_path / "brn.pt")
    again = BatchRenorm2d(3)
    again.load_state_dict(torch.load(tmp_path / "brn.pt", weights_only=True))
    for key, value in brn.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    again.train()
    torch.testing.assert_close(again(x), brn(x))
    torch.testing.assert_close(again.running_std, brn.running_std)
    assert float(again.momentum) == pytest.approx(5e-5)


@pytest.mark.parametrize(
    ("r_max", "d_max", "momentum"), [(0.5, 0.0, 0.01), (1.0, -0.1, 0.01), (1.0, 0.0, 1.5)]
)
def test_invalid_settings_are_config_errors(r_max: float, d_max: float, momentum: float) -> None:
    with pytest.raises(ConfigError, match="batch renorm"):
        BatchRenorm2d(2, momentum=momentum, r_max=r_max, d_max=d_max)


def test_warm_start_batch_norm_takes_the_first_batch_then_its_momentum() -> None:
    bn = WarmStartBatchNorm2d(2, eps=EPS, momentum=0.01).train()
    x = _two_channel_input()
    bn(x)
    torch.testing.assert_close(bn.running_mean, torch.tensor([2.0, 5.0]))
    assert bn.momentum == pytest.approx(0.01)  # restored after the warm-up step
    bn.mark_estimated()
    bn(x + 1.0)
    torch.testing.assert_close(bn.running_mean, torch.tensor([2.01, 5.01]))


def test_recalibrate_averages_batch_statistics_and_restores_the_schedule() -> None:
    brn = _two_channel_layer().eval()
    x = _two_channel_input()
    recalibrate([brn], brn, [x, x + 2.0])
    torch.testing.assert_close(brn.running_mean, torch.tensor([3.0, 6.0]))  # plain average
    assert not brn.training and float(brn.momentum) == pytest.approx(0.1)
    assert float(brn.r_max) == pytest.approx(1.5) and float(brn.d_max) == pytest.approx(0.5)
    assert float(brn.stats_weight) == pytest.approx(10.0)
