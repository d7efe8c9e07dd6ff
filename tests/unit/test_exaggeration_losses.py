"""Feature-exaggeration losses of bir.md §6.2-§6.5: hand-computed values, edge cases, gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from lifelong.losses.repulsion import (
    class_means,
    competitors,
    distribution_repulsion,
    gaussian_js,
    gaussian_kl,
    per_sample_reconstruction,
    reconstruction_attraction,
    reconstruction_repulsion,
)
from lifelong.losses.supcon import label_positives, score_positives, supervised_contrastive

LN2 = math.log(2.0)
E = math.e


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------- §6.2


def test_competitors_own_runner_up_and_representatives_by_hand() -> None:
    scores = torch.tensor(
        [
            [3.0, 1.0, 0.0],  # own 0, rival 1
            [0.0, 2.0, 1.0],  # own 1, rival 2
            [1.0, 0.0, 4.0],  # own 2, rival 0
            [0.0, 5.0, 4.0],  # own 1, rival 2
        ]
    )
    out = competitors(scores, use_rep_factor=False, rep_factor=20.0, generator=_gen())
    assert out.own.tolist() == [0, 1, 2, 1]
    assert out.rival.tolist() == [1, 2, 0, 2]
    assert out.active.tolist() == [True, True, True, True]
    assert out.present.tolist() == [True, True, True]
    # classes 0 and 2 have a single member each; class 1 is sample 1 or 3
    assert out.rival_index[1:].tolist() == [2, 0, 2]
    assert int(out.rival_index[0]) in (1, 3)
    assert out.own_index[0] == 0 and out.own_index[2] == 2
    assert int(out.own_index[1]) in (1, 3) and out.own_index[1] == out.own_index[3]
    # one representative per class: sample 0's rival representative is class 1's representative
    assert out.rival_index[0] == out.own_index[1]


def test_competitors_representative_draw_is_seeded_and_covers_members() -> None:
    scores = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [1.0, 0.0, 4.0], [0.0, 5.0, 4.0]])
    first = competitors(scores, False, 20.0, _gen(7))
    again = competitors(scores, False, 20.0, _gen(7))
    assert torch.equal(first.rival_index, again.rival_index)
    drawn = {int(competitors(scores, False, 20.0, _gen(s)).rival_index[0]) for s in range(50)}
    assert drawn == {1, 3}


def test_competitors_confusion_factor_mask() -> None:
    probs = torch.tensor([[0.6, 0.3, 0.1], [0.5, 0.45, 0.05], [0.2, 0.7, 0.1]])
    scores = probs.log()  # softmax(scores) == probs
    # p1 / p2: sample 0 -> 0.6/0.3 = 2, sample 1 -> 0.5/0.45 = 1.11, sample 2 -> 0.7/0.2 = 3.5
    # f = 1.5: 0.6 < 0.45 no; 0.5 < 0.675 yes; 0.7 < 0.3 no
    assert competitors(scores, True, 1.5, _gen()).active.tolist() == [False, True, False]
    # f = 2.5: 0.6 < 0.75 yes; 0.5 < 1.125 yes; 0.7 < 0.5 no
    assert competitors(scores, True, 2.5, _gen()).active.tolist() == [True, True, False]
    out = competitors(scores, False, 1.5, _gen())
    assert out.active.tolist() == [True, True, True]
    assert competitors(scores, True, 1.5, _gen()).rival_index.tolist() == [-1, 2, -1]


def test_competitors_drop_samples_without_in_batch_rival() -> None:
    # both samples are class 0; their rivals (1 and 2) are nobody's own class in the batch
    scores = torch.tensor([[3.0, 1.0, 0.0], [3.0, 0.0, 1.0]])
    out = competitors(scores, False, 20.0, _gen())
    assert out.active.tolist() == [False, False]
    assert out.rival_index.tolist() == [-1, -1]
    assert out.own_index.tolist() == [out.own_index[0].item()] * 2
    mu = torch.zeros(2, 3, requires_grad=True)
    loss = distribution_repulsion(mu, torch.zeros(2, 3), out.rival_index, "kl")
    assert loss.item() == 0.0


def test_competitors_needs_two_classes() -> None:
    with pytest.raises(ValueError, match="C >= 2"):
        competitors(torch.zeros(3, 1), False, 20.0, _gen())


def test_class_means_by_hand() -> None:
    features = torch.tensor([[1.0, 2.0], [3.0, 4.0], [10.0, 0.0]])
    means, present = class_means(features, torch.tensor([0, 0, 2]), 3)
    assert means.tolist() == [[2.0, 3.0], [0.0, 0.0], [10.0, 0.0]]
    assert present.tolist() == [True, False, True]


# --------------------------------------------------------------------------------- §6.3


def test_gaussian_kl_by_hand() -> None:
    mu_a, logvar_a = torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 0.0]])
    mu_b, logvar_b = torch.tensor([[1.0, 2.0]]), torch.tensor([[LN2, 0.0]])
    # dim 1: 1/2 + 1/2 + ln2 - 0 - 1 = ln2; dim 2: 1 + 4 + 0 - 0 - 1 = 4
    expected = 0.5 * (LN2 + 4.0)
    assert gaussian_kl(mu_a, logvar_a, mu_b, logvar_b).item() == pytest.approx(expected)
    reference = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu_a, logvar_a.mul(0.5).exp()),
        torch.distributions.Normal(mu_b, logvar_b.mul(0.5).exp()),
    ).sum()
    assert reference.item() == pytest.approx(expected, rel=1e-5)
    assert gaussian_kl(mu_b, logvar_b, mu_b, logvar_b).item() == pytest.approx(0.0)


def test_gaussian_js_by_hand() -> None:
    mu_a, mu_b = torch.tensor([[0.0, 0.0]]), torch.tensor([[2.0, 0.0]])
    logvar = torch.zeros(1, 2)
    # m = N((1, 0), (1/2, 1/2)). KL(a || m): dim 1 ½[2 + 1/(1/2) + ln(1/2) - 1] = ½[3 - ln2],
    # dim 2 ½[2 + 0 - ln2 - 1] = ½[1 - ln2] -> 2 - ln2; KL(b || m) is the same by symmetry.
    assert gaussian_js(mu_a, logvar, mu_b, logvar).item() == pytest.approx(2.0 - LN2)
    # not zero for identical Gaussians: ½(1 - ln2) per dimension
    assert gaussian_js(mu_a, logvar, mu_a, logvar).item() == pytest.approx(1.0 - LN2)


def test_distribution_repulsion_by_hand() -> None:
    mu = torch.tensor([[0.0], [2.0], [9.0]])
    logvar = torch.tensor([[0.0], [LN2], [0.0]])
    index = torch.tensor([1, 0, -1])  # sample 2 has no competitor and is skipped
    # KL(N(0,1) || N(2,2)) = ½[1/2 + 4/2 + ln2 - 0 - 1]; KL(N(2,2) || N(0,1)) = ½[2 + 4 - ln2 - 1]
    d0, d1 = 0.5 * (1.5 + LN2), 0.5 * (5.0 - LN2)
    kl = distribution_repulsion(mu, logvar, index, "kl")
    assert kl.item() == pytest.approx((1 / d0 + 1 / d1) / 2)
    # JS: m = N(1, (1 + 2)/4 = 3/4); KL(a || m) = ½[4/3 + 4/3 + ln(3/4) - 1],
    # KL(b || m) = ½[8/3 + 4/3 + ln(3/4) - ln2 - 1]; symmetric, so both samples share D
    js = 0.5 * (0.5 * (8 / 3 + math.log(0.75) - 1) + 0.5 * (4 + math.log(0.75) - LN2 - 1))
    assert distribution_repulsion(mu, logvar, index, "js").item() == pytest.approx(1 / js)


def test_distribution_repulsion_edge_cases() -> None:
    mu = torch.zeros(2, 2, requires_grad=True)
    logvar = torch.zeros(2, 2, requires_grad=True)
    none = distribution_repulsion(mu, logvar, torch.tensor([-1, -1]), "js")
    assert none.item() == 0.0
    # identical posteriors: KL = 0 is clamped at eps instead of dividing by zero
    same = distribution_repulsion(mu, logvar, torch.tensor([1, 0]), "kl", eps=1e-4)
    assert same.item() == pytest.approx(1e4)
    same.backward()
    assert mu.grad is not None and torch.isfinite(mu.grad).all()
    with pytest.raises(ValueError, match="divergence"):
        distribution_repulsion(mu, logvar, torch.tensor([1, 0]), "overlap")  # type: ignore[arg-type]


@pytest.mark.parametrize("divergence", ["kl", "js"])
def test_distribution_repulsion_gradient_pushes_posteriors_apart(divergence: str) -> None:
    mu = torch.tensor([[0.0, 0.5], [1.0, -0.5], [3.0, 3.0]], requires_grad=True)
    logvar = torch.tensor([[0.0, -0.5], [0.3, 0.0], [0.0, 0.0]])
    index = torch.tensor([1, 0, -1])
    measure = gaussian_kl if divergence == "kl" else gaussian_js

    def divergence_01() -> float:
        return measure(mu[:1], logvar[:1], mu[1:2], logvar[1:2]).item()

    before = divergence_01()
    distribution_repulsion(mu, logvar, index, divergence).backward()  # type: ignore[arg-type]
    assert mu.grad is not None
    assert mu.grad[:2].abs().sum() > 0
    assert mu.grad[2].abs().sum() == 0  # the sample without a competitor gets no gradient
    with torch.no_grad():
        mu -= 0.1 * mu.grad
    assert divergence_01() > before


# --------------------------------------------------------------------------------- §6.4


def test_per_sample_reconstruction_by_hand() -> None:
    recon, target = torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    # mean of ½(x - x̂)²: (0.5 + 2) / 2 = 1.25 and (4.5 + 8) / 2 = 6.25
    assert per_sample_reconstruction(recon, target, "mse").tolist() == [1.25, 6.25]
    with pytest.raises(ValueError, match="loss"):
        per_sample_reconstruction(recon, target, "l1")  # type: ignore[arg-type]


def test_reconstruction_repulsion_by_hand() -> None:
    recon, target = torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    # 1/1.25 = 0.8 and 1/6.25 = 0.16 -> mean 0.48
    assert reconstruction_repulsion(recon, target).item() == pytest.approx(0.48)
    mask = torch.tensor([False, True])
    assert reconstruction_repulsion(recon, target, mask=mask).item() == pytest.approx(0.16)
    # BCE: x̂ = (0.5, 0.5) vs x = (1, 0): -ln 0.5 per unit -> 1 / ln2
    bce = reconstruction_repulsion(torch.tensor([[0.5, 0.5]]), torch.tensor([[1.0, 0.0]]), "bce")
    assert bce.item() == pytest.approx(1 / LN2)


def test_reconstruction_repulsion_edge_cases() -> None:
    recon = torch.ones(2, 3, requires_grad=True)
    none = reconstruction_repulsion(recon, torch.zeros(2, 3), mask=torch.tensor([False, False]))
    assert none.item() == 0.0
    equal = reconstruction_repulsion(recon, recon.detach().clone(), eps=1e-3)
    assert equal.item() == pytest.approx(1e3)
    equal.backward()
    assert recon.grad is not None and torch.isfinite(recon.grad).all()


def test_reconstruction_repulsion_with_class_averaged_targets() -> None:
    x_r = torch.tensor([[0.0, 0.0], [2.0, 2.0], [4.0, 6.0]])
    scores = torch.tensor([[3.0, 1.0], [3.0, 1.0], [0.0, 2.0]])  # own classes 0, 0, 1
    out = competitors(scores, False, 20.0, _gen())
    means, _ = class_means(x_r, out.own, 2)  # class 0: (1, 1), class 1: (4, 6)
    recon = torch.tensor([[1.0, 2.0], [3.0, 3.0], [1.0, 1.0]])
    targets = means[out.rival]  # (4, 6), (4, 6), (1, 1)
    # ½ mean squared error: (4.5 + 8)/2 = 6.25, (0.5 + 4.5)/2 = 2.5, 0 -> clamped at eps = 1
    value = reconstruction_repulsion(recon, targets, mask=out.active, eps=1.0)
    assert value.item() == pytest.approx((1 / 6.25 + 1 / 2.5 + 1.0) / 3)


def test_reconstruction_attraction_by_hand() -> None:
    recon, target = torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # (0 + ½·4)/2 = 1 and (½ + ½)/2 = 0.5 -> 0.75
    assert reconstruction_attraction(recon, target).item() == pytest.approx(0.75)
    # BCE: x̂ = (0.5, 0.25) vs x = (1, 0): (-ln 0.5 - ln 0.75) / 2 = ln(8/3) / 2
    bce = reconstruction_attraction(torch.tensor([[0.5, 0.25]]), torch.tensor([[1.0, 0.0]]), "bce")
    assert bce.item() == pytest.approx(math.log(8 / 3) / 2)


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_reconstruction_repulsion_and_attraction_gradients(loss: str) -> None:
    competitor = torch.tensor([[0.9, 0.1, 0.8], [0.2, 0.7, 0.6]])
    own = torch.tensor([[0.1, 0.9, 0.3], [0.6, 0.2, 0.1]])
    start = torch.tensor([[0.4, 0.5, 0.5], [0.4, 0.4, 0.4]])

    def distance(x: torch.Tensor, target: torch.Tensor) -> float:
        return (x - target).norm().item()

    recon = start.clone().requires_grad_(True)
    reconstruction_repulsion(recon, competitor, loss).backward()  # type: ignore[arg-type]
    assert recon.grad is not None and recon.grad.abs().sum() > 0
    moved = (recon - 0.01 * recon.grad).detach()
    assert distance(moved, competitor) > distance(start, competitor)

    recon = start.clone().requires_grad_(True)
    reconstruction_attraction(recon, own, loss).backward()  # type: ignore[arg-type]
    assert recon.grad is not None
    moved = (recon - 0.1 * recon.grad).detach()
    assert distance(moved, own) < distance(start, own)


# --------------------------------------------------------------------------------- §6.5


def test_label_positives_by_hand() -> None:
    expected = [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    assert label_positives(torch.tensor([3, 3, 5])).tolist() == expected


def test_score_positives_are_probability_products() -> None:
    scores = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])  # p = (.5, .5) and (.75, .25)
    expected = [[0.5, 0.5], [0.5, 0.75**2 + 0.25**2]]
    torch.testing.assert_close(score_positives(scores), torch.tensor(expected))
    # raw logit dot products can be negative (here 2·-3 + -3·2 = -12); probabilities cannot
    logits = torch.tensor([[2.0, -3.0], [-3.0, 2.0]])
    assert (logits @ logits.T)[0, 1] < 0
    assert (score_positives(logits) >= 0).all()


def test_supervised_contrastive_by_hand() -> None:
    f = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    positives = label_positives(torch.tensor([0, 0, 1]))
    # anchor 0: s01 = 1, s02 = 0 -> log p01 = 1 - ln(e + 1); anchor 1 the same;
    # anchor 2 has no positive and is skipped
    value = supervised_contrastive(f, positives, temperature=1.0, base_temperature=1.0)
    assert value.item() == pytest.approx(math.log(1 + E) - 1)
    # τ = 0.5 doubles the similarities; the factor τ / τ_base rescales the loss
    value = supervised_contrastive(f, positives, temperature=0.5)
    assert value.item() == pytest.approx((0.5 / 0.07) * (math.log(1 + E**2) - 2))


def test_supervised_contrastive_soft_positives_by_hand() -> None:
    f = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # s01 = 0, s02 = -1, s12 = 0
    positives = torch.tensor([[9.0, 0.5, 0.25], [0.5, 9.0, 0.0], [0.25, 0.0, 9.0]])
    log_z = math.log(1 + 1 / E)  # anchors 0 and 2: ln(e^0 + e^-1)
    term0 = (0.5 * -log_z + 0.25 * (-1 - log_z)) / 0.75  # = -ln(1 + 1/e) - 1/3
    term1 = -LN2  # anchor 1: ln(e^0 + e^0), only positive is 0
    term2 = -1 - log_z  # anchor 2: only positive is 0, s20 = -1
    value = supervised_contrastive(f, positives, temperature=1.0, base_temperature=1.0)
    assert value.item() == pytest.approx(-(term0 + term1 + term2) / 3)


def test_supervised_contrastive_hard_negatives_by_hand() -> None:
    f = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    positives = label_positives(torch.tensor([0, 0, 1]))
    # anchor 0: M = 2 negatives k in {1, 2}, s = (1, 0), β = 1 -> w = (e, 1)/(e + 1);
    # Σ w e^s = (e² + 1)/(e + 1); Ng = (2(e² + 1)/(e + 1) - 0.05·2·e)/0.95 > floor 2/e
    ng = (2 * (E**2 + 1) / (E + 1) - 0.05 * 2 * E) / 0.95
    value = supervised_contrastive(f, positives, 1.0, 1.0, hard_negatives=True)
    assert value.item() == pytest.approx(math.log(ng) - 1)
    # τ⁺ = 0.9 makes the debiased estimate negative: the floor M e^{-1/τ} = 2/e takes over
    value = supervised_contrastive(f, positives, 1.0, 1.0, True, tau_plus=0.9)
    assert value.item() == pytest.approx(LN2 - 1 - 1)


def test_hard_negatives_reduce_to_plain_supcon_without_reweighting() -> None:
    f = F.normalize(torch.randn(6, 4, generator=_gen(3)), dim=1)
    positives = label_positives(torch.tensor([0, 0, 1, 1, 2, 2]))
    plain = supervised_contrastive(f, positives, 0.5)
    same = supervised_contrastive(f, positives, 0.5, hard_negatives=True, tau_plus=0.0, beta=0.0)
    assert same.item() == pytest.approx(plain.item(), rel=1e-5)


def test_supervised_contrastive_edge_cases() -> None:
    f = F.normalize(torch.randn(3, 4, generator=_gen(1)), dim=1).requires_grad_(True)
    for hard in (False, True):
        none = supervised_contrastive(f, label_positives(torch.tensor([0, 1, 2])), 1.0, 1.0, hard)
        assert none.item() == 0.0
    pair = F.normalize(torch.randn(2, 4, generator=_gen(2)), dim=1)
    for hard in (False, True):
        value = supervised_contrastive(pair, torch.ones(2, 2), 1.0, hard_negatives=hard)
        assert torch.isfinite(value) and value.item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="positives"):
        supervised_contrastive(f, torch.ones(2, 2), 1.0)
    with pytest.raises(ValueError, match="tau_plus"):
        supervised_contrastive(f, torch.ones(3, 3), 1.0, hard_negatives=True, tau_plus=1.0)


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("soft", [False, True])
def test_supervised_contrastive_gradient_pulls_positives_together(hard: bool, soft: bool) -> None:
    raw = torch.randn(6, 4, generator=_gen(5)).requires_grad_(True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    scores = 4.0 * F.one_hot(labels, 3).float()
    positives = score_positives(scores) if soft else label_positives(labels)
    pairs = [(0, 1), (2, 3), (4, 5)]

    def positive_cosines(v: torch.Tensor) -> list[float]:
        f = F.normalize(v, dim=1)
        return [float(f[a] @ f[b]) for a, b in pairs]

    before = positive_cosines(raw.detach())
    loss = supervised_contrastive(F.normalize(raw, dim=1), positives, 0.5, hard_negatives=hard)
    loss.backward()
    assert raw.grad is not None and raw.grad.abs().sum() > 0
    after = positive_cosines((raw - 0.05 * raw.grad).detach())
    assert all(a > b for a, b in zip(after, before, strict=True))
