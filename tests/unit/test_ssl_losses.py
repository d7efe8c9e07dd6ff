"""SSL losses against hand-computed values, and the direction of their gradients."""

from __future__ import annotations

import math

import pytest
import torch

from lifelong.ssl.losses import (
    barlow_twins_loss,
    byol_distance_per_sample,
    byol_loss,
    emp_invariance,
    emp_ssl_loss,
    mae_loss,
    negative_cosine,
    negative_cosine_per_sample,
    simsiam_loss,
    standardize,
    total_coding_rate,
)

R2 = math.sqrt(2.0)


def test_negative_cosine_hand_values() -> None:
    p = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    z = torch.tensor([[1.0, 1.0], [0.0, 3.0], [-2.0, 0.0]])
    torch.testing.assert_close(negative_cosine_per_sample(p, z), torch.tensor([-1 / R2, 0.0, 1.0]))
    torch.testing.assert_close(negative_cosine(p, z), torch.tensor((-1 / R2 + 1.0) / 3))


def test_negative_cosine_gradient_turns_p_toward_z() -> None:
    p = torch.tensor([[1.0, 0.0]], requires_grad=True)
    z = torch.tensor([[0.0, 1.0]], requires_grad=True)
    negative_cosine(p, z).backward()
    assert p.grad is not None and z.grad is not None
    # a descent step on p increases its second coordinate (toward z), and z gets a gradient too
    assert p.grad[0, 1] < 0
    assert z.grad.abs().sum() > 0


def test_simsiam_loss_value_and_stop_gradient() -> None:
    p1 = torch.tensor([[1.0, 0.0]], requires_grad=True)
    p2 = torch.tensor([[0.0, 1.0]], requires_grad=True)
    z1 = torch.tensor([[1.0, 1.0]], requires_grad=True)
    z2 = torch.tensor([[1.0, 0.0]], requires_grad=True)
    loss = simsiam_loss(p1, p2, z1, z2)
    torch.testing.assert_close(loss, torch.tensor(0.5 * (-1.0 - 1 / R2)))
    loss.backward()
    assert z1.grad is None and z2.grad is None  # stop-gradient on the projections
    assert p2.grad is not None and p2.grad.abs().sum() > 0


def test_byol_distance_and_loss_is_the_sum_of_both_terms() -> None:
    p = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    z = torch.tensor([[1.0, 1.0], [-1.0, 0.0]])
    torch.testing.assert_close(byol_distance_per_sample(p, z), torch.tensor([2 - R2, 4.0]))
    p1 = torch.tensor([[1.0, 0.0]])
    p2 = torch.tensor([[0.0, 1.0]])
    z1_t = torch.tensor([[1.0, 0.0]])  # p2 vs z1_t: orthogonal → 2
    z2_t = torch.tensor([[-1.0, 0.0]])  # p1 vs z2_t: opposite → 4
    torch.testing.assert_close(byol_loss(p1, p2, z1_t, z2_t), torch.tensor(6.0))


def test_byol_loss_detaches_the_targets() -> None:
    p1 = torch.randn(3, 4, requires_grad=True)
    p2 = torch.randn(3, 4, requires_grad=True)
    t1 = torch.randn(3, 4, requires_grad=True)
    t2 = torch.randn(3, 4, requires_grad=True)
    byol_loss(p1, p2, t1, t2).backward()
    assert t1.grad is None and t2.grad is None
    assert p1.grad is not None and p1.grad.abs().sum() > 0


def test_standardize_matches_batchnorm_in_training_mode() -> None:
    z = torch.randn(6, 3, generator=torch.Generator().manual_seed(0)) * 5 + 2
    bn = torch.nn.BatchNorm1d(3, affine=False)
    torch.testing.assert_close(standardize(z), bn(z))


def test_barlow_twins_hand_values() -> None:
    z1 = torch.tensor([[1.0, 2.0], [-1.0, -2.0]])  # standardised: [[1, 1], [-1, -1]]
    z2 = torch.tensor([[1.0, -2.0], [-1.0, 2.0]])  # standardised: [[1, -1], [-1, 1]]
    lambd = 0.1
    # C(z1, z1) = all ones: Σ(1 − C_ii)² = 0, off-diagonal Σ C_ij² = 2
    torch.testing.assert_close(
        barlow_twins_loss(z1, z1, lambd), torch.tensor(2 * lambd), atol=1e-4, rtol=0
    )
    # C(z1, z2) = [[1, -1], [1, -1]]: (1 − 1)² + (1 + 1)² = 4, off-diagonal 1 + 1
    torch.testing.assert_close(
        barlow_twins_loss(z1, z2, lambd), torch.tensor(4 + 2 * lambd), atol=1e-4, rtol=0
    )


def test_barlow_twins_default_lambda_and_scale_invariance() -> None:
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g)
    base = barlow_twins_loss(z1, z2)
    torch.testing.assert_close(base, barlow_twins_loss(z1, z2, 5e-3))
    assert not torch.allclose(base, barlow_twins_loss(z1, z2, 0.5))
    # batch standardisation: shifting and scaling a view per dimension changes nothing
    torch.testing.assert_close(barlow_twins_loss(3 * z1 + 7, z2), base, atol=1e-4, rtol=1e-4)


def test_barlow_twins_descent_raises_the_diagonal_correlation() -> None:
    g = torch.Generator().manual_seed(1)
    z1 = torch.randn(16, 3, generator=g, requires_grad=True)
    z2 = torch.randn(16, 3, generator=g)
    before = torch.diagonal(standardize(z1).T @ standardize(z2) / 16).sum()
    barlow_twins_loss(z1, z2).backward()
    assert z1.grad is not None
    with torch.no_grad():
        stepped = z1 - 0.05 * z1.grad
        after = torch.diagonal(standardize(stepped).T @ standardize(z2) / 16).sum()
    assert after > before


def test_total_coding_rate_hand_values() -> None:
    assert total_coding_rate(torch.zeros(4, 3)).item() == pytest.approx(0.0, abs=1e-6)
    # Z = I (B = d = 2): R = ½ logdet((1 + 1/ε) I) = log(1 + 1/ε) = log 6 for ε = 0.2
    torch.testing.assert_close(total_coding_rate(torch.eye(2), 0.2), torch.tensor(math.log(6.0)))
    # one sample (B = 1, d = 2), z = [1, 0]: ½ log(1 + 2/ε) = ½ log 11
    z = torch.tensor([[1.0, 0.0]])
    torch.testing.assert_close(total_coding_rate(z, 0.2), torch.tensor(0.5 * math.log(11.0)))


@pytest.mark.parametrize(("b", "d"), [(3, 5), (5, 3)])
def test_total_coding_rate_matches_the_d_by_d_formula(b: int, d: int) -> None:
    z = torch.randn(b, d, generator=torch.Generator().manual_seed(b), dtype=torch.float64)
    direct = 0.5 * torch.logdet(torch.eye(d, dtype=torch.float64) + d / (b * 0.3) * z.T @ z)
    torch.testing.assert_close(total_coding_rate(z, 0.3), direct)


def test_total_coding_rate_prefers_spread_embeddings() -> None:
    collapsed = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    spread = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert total_coding_rate(spread) > total_coding_rate(collapsed)


def test_emp_invariance_hand_value_and_no_detach() -> None:
    a = torch.tensor([[1.0, 0.0]], requires_grad=True)
    b = torch.tensor([[0.0, 1.0]], requires_grad=True)
    loss = emp_invariance([a, b])  # mean [0.5, 0.5]: both at 45° → −1/√2
    torch.testing.assert_close(loss, torch.tensor(-1 / R2))
    torch.testing.assert_close(emp_invariance([a, a.detach() * 3]), torch.tensor(-1.0))
    loss.backward()
    assert a.grad is not None and a.grad[0, 1] < 0  # descent pulls a toward b's direction


def test_emp_ssl_loss_combines_both_terms() -> None:
    g = torch.Generator().manual_seed(0)
    zs = [torch.randn(4, 3, generator=g) for _ in range(3)]
    tcr = -torch.stack([total_coding_rate(z, 0.2) for z in zs]).mean()
    expected = 200.0 * emp_invariance(zs) + 1.0 * tcr
    torch.testing.assert_close(emp_ssl_loss(zs), expected)
    torch.testing.assert_close(
        emp_ssl_loss(zs, 2.0, 0.5, 0.1),
        2.0 * emp_invariance(zs)
        - 0.5 * torch.stack([total_coding_rate(z, 0.1) for z in zs]).mean(),
    )


def test_mae_loss_counts_masked_pixels_only() -> None:
    target = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])  # (1, 1, 2, 2)
    pred = torch.zeros_like(target, requires_grad=True)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    loss = mae_loss(pred, target, mask)
    torch.testing.assert_close(loss, torch.tensor((1.0 + 16.0) / 2))
    loss.backward()
    assert pred.grad is not None
    assert pred.grad[0, 0, 0, 1] == 0 and pred.grad[0, 0, 1, 0] == 0
    assert pred.grad[0, 0, 0, 0] < 0  # descent raises the prediction toward the target


def test_mae_loss_broadcasts_a_single_channel_mask() -> None:
    target = torch.ones(1, 3, 2, 2)
    pred = torch.zeros(1, 3, 2, 2)
    pred[:, :, 0, 0] = 3.0  # error 4 on the masked pixel in all three channels
    mask = torch.zeros(1, 1, 2, 2)
    mask[..., 0, 0] = 1.0
    torch.testing.assert_close(mae_loss(pred, target, mask), torch.tensor(4.0))
