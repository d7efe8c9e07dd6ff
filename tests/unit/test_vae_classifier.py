"""BI-R's VAE-classifier, the VAE losses and the (1/t, 1 - 1/t) weighting of gr and bir."""

from __future__ import annotations

import math

import pytest
import torch

from lifelong.backbones.mlp import MLP, MLPConfig
from lifelong.data.stream import Experience
from lifelong.data.tensors import ImageSet
from lifelong.data.transforms import ImageTransform
from lifelong.errors import ConfigError
from lifelong.generative.replay import from_pixels, previous_logits, to_pixels
from lifelong.generative.vae_classifier import (
    GatedLinear,
    VAEClassifier,
    VAEClassifierConfig,
    encoder_sizes,
)
from lifelong.losses.vae import (
    distillation_soft_targets,
    kl_gmm_mc,
    kl_standard,
    reconstruction_bce,
    reconstruction_mse_half,
    weigh_current_and_replay,
)
from lifelong.methods.base import Method, MethodContext
from lifelong.methods.bir import BIR, BIRConfig
from lifelong.methods.gr import GR, GRConfig
from lifelong.types import Batch

SHAPE = (1, 4, 4)
CLASSES = 6
SMALL = VAEClassifierConfig(fc_units=32, h_dim=24, z_dim=5, dg_prop=0.5)
BIR_CFG = VAEClassifierConfig(
    fc_units=32, h_dim=24, z_dim=5, dg_prop=0.5, per_class_prior=True, gates=True
)


def build(cfg: VAEClassifierConfig = BIR_CFG, seed: int = 0) -> VAEClassifier:
    return VAEClassifier(cfg, SHAPE, CLASSES, torch.Generator().manual_seed(seed))


def images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand((n, *SHAPE), generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------- the network


def test_shapes_of_every_pass() -> None:
    net = build()
    x = images(7)
    h, mu, logvar = net.encode(x)
    assert h.shape == (7, 24) and mu.shape == (7, 5) and logvar.shape == (7, 5)
    assert net.classify(x).shape == (7, CLASSES)
    assert torch.equal(net(x), net.classify(x))  # forward is the predictor
    assert torch.equal(net.features(x), h)
    recon = net.decode(mu, torch.arange(7) % CLASSES)
    assert recon.shape == (7, *SHAPE)
    assert ((recon > 0) & (recon < 1)).all()  # sigmoid output for [0, 1] inputs
    assert not any(isinstance(p, type(None)) for p in net.to_logvar.parameters())
    assert net.to_logvar.bias is None and net.to_mu.bias is not None


def test_encoder_sizes_follow_the_reference_linspace() -> None:
    assert encoder_sizes(VAEClassifierConfig(fc_layers=3), 784) == [784, 400, 400]
    assert encoder_sizes(VAEClassifierConfig(fc_layers=2, h_dim=50), 784) == [784, 50]
    cfg = VAEClassifierConfig(fc_layers=4, fc_units=400, h_dim=100)
    assert encoder_sizes(cfg, 784) == [784, 400, 250, 100]
    with pytest.raises(ConfigError, match="fc_layers"):
        VAEClassifierConfig(fc_layers=1)
    with pytest.raises(ConfigError, match="dg_prop"):
        VAEClassifierConfig(dg_prop=1.0)


def test_gate_masks_are_buffers_drawn_from_the_generator() -> None:
    net = build()
    buffers = dict(net.named_buffers())
    assert set(buffers) == {"from_z.mask", "hidden_d.0.mask"}  # every decoder layer but the last
    assert buffers["from_z.mask"].shape == (CLASSES, 24)
    assert buffers["hidden_d.0.mask"].shape == (CLASSES, 32)
    assert all(name not in dict(net.named_parameters()) for name in buffers)
    assert set(buffers) <= set(net.state_dict())
    assert torch.equal(build(seed=0).from_z.mask, net.from_z.mask)  # type: ignore[arg-type]
    assert not torch.equal(build(seed=1).from_z.mask, net.from_z.mask)  # type: ignore[arg-type]
    # no gates at all when off or with dg_prop = 0
    assert not dict(build(SMALL).named_buffers())
    no_prop = VAEClassifierConfig(fc_units=32, h_dim=24, z_dim=5, dg_prop=0.0, gates=True)
    assert not dict(build(no_prop).named_buffers())


def test_gate_entries_are_zero_with_probability_dg_prop() -> None:
    layer = GatedLinear(3, 2000, 10, 0.8, torch.Generator().manual_seed(0))
    assert layer.mask is not None
    assert set(layer.mask.unique().tolist()) == {0.0, 1.0}
    assert abs(float((layer.mask == 0).float().mean()) - 0.8) < 0.01  # 20,000 Bernoulli draws


def test_one_hot_gate_zeroes_the_units_of_other_classes() -> None:
    layer = GatedLinear(3, 50, 4, 0.5, torch.Generator().manual_seed(0))
    assert layer.mask is not None
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    plain = torch.relu(layer.linear(x))
    for c in range(4):
        out = layer(x, torch.nn.functional.one_hot(torch.full((5,), c), 4).float())
        off = layer.mask[c] == 0
        assert off.any() and (~off).any()
        assert torch.all(out[:, off] == 0)
        assert torch.allclose(out[:, ~off], plain[:, ~off])
    with pytest.raises(ValueError, match="gate"):
        layer(x, None)


def test_soft_gate_is_the_convex_mixture_of_class_masks() -> None:
    layer = GatedLinear(3, 50, 4, 0.5, torch.Generator().manual_seed(0))
    assert layer.mask is not None
    x = torch.randn(2, 3, generator=torch.Generator().manual_seed(1))
    probs = torch.tensor([[0.3, 0.7, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]])
    mixed = torch.stack([0.3 * layer.mask[0] + 0.7 * layer.mask[1], layer.mask[2:].mean(0)])
    expected = torch.relu(layer.linear(x) * mixed)
    assert torch.allclose(layer(x, probs), expected)
    # labels and one-hot probability rows drive the decoder identically
    net = build()
    z = torch.randn(4, 5, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([0, 3, 5, 1])
    one_hot = torch.nn.functional.one_hot(y, CLASSES).float()
    assert torch.allclose(net.decode(z, y), net.decode(z, one_hot))
    assert not torch.allclose(net.decode(z, y), net.decode(z, (y + 1) % CLASSES))


def test_sample_draws_allowed_classes_reproducibly() -> None:
    net = build()
    allowed = torch.tensor([1, 4])
    x, y = net.sample(400, allowed, torch.Generator().manual_seed(5))
    assert x.shape == (400, *SHAPE) and not x.requires_grad
    assert set(y.tolist()) == {1, 4}
    assert 150 < int((y == 1).sum()) < 250  # uniform over the allowed classes
    x2, y2 = net.sample(400, allowed, torch.Generator().manual_seed(5))
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = net.sample(400, allowed, torch.Generator().manual_seed(6))
    assert not torch.equal(x, x3)


def test_generate_draws_z_from_the_class_prior_mode() -> None:
    net = build()
    assert net.prior_means is not None and net.prior_logvars is not None
    with torch.no_grad():
        net.prior_logvars.fill_(-30.0)  # (almost) no spread: z = the class mean
        y = torch.tensor([2, 2, 3])
        expected = net.decode(net.prior_means[y], y)
        assert torch.allclose(net.generate(y, torch.Generator().manual_seed(0)), expected)


def test_state_dict_round_trip_restores_masks_prior_and_outputs() -> None:
    first, second = build(seed=0), build(seed=1)
    second.load_state_dict(first.state_dict())
    x = images(6)
    assert torch.equal(first.classify(x), second.classify(x))
    z, y = torch.randn(6, 5, generator=torch.Generator().manual_seed(3)), torch.arange(6)
    assert torch.equal(first.decode(z, y), second.decode(z, y))
    a = first.sample(8, torch.arange(3), torch.Generator().manual_seed(4))
    b = second.sample(8, torch.arange(3), torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_building_does_not_touch_the_global_rng() -> None:
    state = torch.get_rng_state()
    build()
    assert torch.equal(state, torch.get_rng_state())


def test_pixels_round_trip_through_normalisation() -> None:
    transform = ImageTransform((0.5, 0.4, 0.3), (0.25, 0.2, 0.1))
    pixels = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(to_pixels(from_pixels(pixels, transform), transform), pixels, atol=1e-6)
    grey = ImageTransform((0.0,), (1.0,))
    assert torch.equal(to_pixels(pixels[:, :1], grey), pixels[:, :1])


# ------------------------------------------------------------------------------- the losses


def test_reconstruction_losses_by_hand() -> None:
    x_recon = torch.tensor([[0.5, 0.25], [0.9, 0.9]])
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    first = (-math.log(0.5) - math.log(0.75)) / 2
    second = -math.log(0.9)
    assert float(reconstruction_bce(x_recon, x)) == pytest.approx((first + second) / 2)
    mse = reconstruction_mse_half(torch.zeros(2, 2), torch.tensor([[1.0, 3.0], [0.0, 2.0]]))
    assert float(mse) == pytest.approx((0.5 * (1 + 9) / 2 + 0.5 * 4 / 2) / 2)


def test_kl_standard_by_hand() -> None:
    zero = torch.zeros(3, 4)
    assert float(kl_standard(zero, zero, 1)) == 0.0  # N(0,1) || N(0,1)
    mu = torch.tensor([[1.0], [0.0]])
    logvar = torch.tensor([[0.0], [math.log(2.0)]])
    by_hand = (0.5 * 1.0 + 0.5 * (2.0 - 1.0 - math.log(2.0))) / 2
    assert float(kl_standard(mu, logvar, 1)) == pytest.approx(by_hand)
    assert float(kl_standard(mu, logvar, 784)) == pytest.approx(by_hand / 784)  # §3.2 quirk


def test_kl_gmm_mc_in_one_dimension_by_hand() -> None:
    z, mu, logvar = torch.tensor([[0.5]]), torch.tensor([[0.0]]), torch.tensor([[0.0]])
    means, logvars = torch.tensor([[0.0], [1.0]]), torch.tensor([[0.0], [math.log(4.0)]])
    log_q = -0.5 * 0.25
    log_n0 = -0.5 * 0.25
    log_n1 = -0.5 * (math.log(4.0) + 0.25 / 4.0)
    hard = kl_gmm_mc(z, mu, logvar, means, logvars, torch.tensor([[0.0, 1.0]]), 1)
    assert float(hard) == pytest.approx(log_q - log_n1)
    soft = kl_gmm_mc(z, mu, logvar, means, logvars, torch.tensor([[0.25, 0.75]]), 1)
    mixture = math.log(0.25 * math.exp(log_n0) + 0.75 * math.exp(log_n1))
    assert float(soft) == pytest.approx(log_q - mixture)
    assert float(kl_gmm_mc(z, mu, logvar, means, logvars, torch.tensor([[0.0, 1.0]]), 4)) == (
        pytest.approx((log_q - log_n1) / 4)
    )


def test_kl_gmm_mc_matches_torch_distributions_and_ignores_zero_weights() -> None:
    g = torch.Generator().manual_seed(0)
    z, mu, logvar = (
        torch.randn(5, 3, generator=g),
        torch.randn(5, 3, generator=g),
        torch.randn(5, 3, generator=g),
    )
    means, logvars = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    weights = torch.softmax(torch.randn(5, 4, generator=g), dim=1)
    weights[:, 3] = 0.0
    weights = weights / weights.sum(1, keepdim=True)
    normal = torch.distributions.Normal
    log_q = normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(1)
    components = normal(means[None], (0.5 * logvars[None]).exp()).log_prob(z[:, None]).sum(2)
    log_p = torch.logsumexp(components[:, :3] + weights[:, :3].log(), dim=1)
    # the -1/2 log 2 pi constants cancel between log q and log p
    expected = (log_q - log_p).mean()
    assert torch.allclose(kl_gmm_mc(z, mu, logvar, means, logvars, weights, 1), expected)
    # far-away zero-weight mode changes nothing
    means[3] = z.mean(0)
    assert torch.allclose(kl_gmm_mc(z, mu, logvar, means, logvars, weights, 1), expected)


def test_distillation_by_hand_and_zero_padding() -> None:
    logits = torch.tensor([[0.0, math.log(3.0)]])
    teacher = torch.tensor([[0.0, 0.0]])
    q = [1 / (1 + math.sqrt(3)), math.sqrt(3) / (1 + math.sqrt(3))]  # softmax([0, log 3] / 2)
    by_hand = 4 * -(0.5 * math.log(q[0]) + 0.5 * math.log(q[1]))
    assert float(distillation_soft_targets(logits, teacher, 2.0)) == pytest.approx(by_hand)
    # a class the teacher does not know gets target 0: trailing padding or a -inf logit
    student = torch.tensor([[0.3, -1.0, 2.0]])
    padded = distillation_soft_targets(student, torch.tensor([[1.0, 0.0]]), 2.0)
    masked = distillation_soft_targets(student, torch.tensor([[1.0, 0.0, -torch.inf]]), 2.0)
    p = torch.softmax(torch.tensor([1.0, 0.0]) / 2, dim=0)
    log_q = torch.log_softmax(student[0] / 2, dim=0)
    expected = 4 * -(p * log_q[:2]).sum()
    assert torch.allclose(padded, expected) and torch.allclose(masked, expected)


def test_previous_logits_give_zero_probability_to_new_classes() -> None:
    logits = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    probs = torch.softmax(previous_logits(logits, torch.tensor([True, True, False, False])), 1)
    assert torch.equal(probs[:, 2:], torch.zeros(1, 2))
    assert torch.allclose(probs[:, :2], torch.softmax(logits[:, :2], 1))


def test_weigh_current_and_replay() -> None:
    current, replay = torch.tensor(2.0), torch.tensor(10.0)
    assert float(weigh_current_and_replay(current, replay, 1)) == 2.0
    assert float(weigh_current_and_replay(current, replay, 4)) == pytest.approx(0.5 + 7.5)
    with pytest.raises(ValueError, match="1-based"):
        weigh_current_and_replay(current, replay, 0)


# ------------------------------------------------------------------- the methods' weighting


def _method(cls: type[Method], cfg: GRConfig) -> Method:
    generator = torch.Generator().manual_seed(0)
    transform = ImageTransform((0.0,), (1.0,))
    backbone = MLP(MLPConfig((4,)), SHAPE, CLASSES)  # unused: both build their own networks
    ctx = MethodContext(backbone, CLASSES, SHAPE, transform, torch.device("cpu"), generator)
    method = cls(cfg, ctx)
    assert method.net is not backbone
    return method


def _experience(t: int) -> Experience:
    classes = (2 * t, 2 * t + 1)
    data = ImageSet(torch.zeros((2, *SHAPE), dtype=torch.uint8), torch.tensor(classes))
    return Experience(t, classes, data, data)


def _batch(t: int) -> Batch:
    x = images(8, seed=t)
    y = torch.tensor([2 * t, 2 * t + 1] * 4)
    return Batch(x, y, x, t)


SIZES = {"fc_units": 32, "h_dim": 24, "z_dim": 5}


@pytest.mark.parametrize(
    ("cls", "cfg", "current_terms", "replay_terms"),
    [
        (BIR, BIRConfig(**SIZES), ("recon", "kl", "ce"), ("replay",)),
        (
            GR,
            GRConfig(**SIZES),
            ("recon", "kl", "ce"),
            ("replay_ce", "replay_recon", "replay_kl"),
        ),
    ],
)
def test_methods_weigh_current_by_1_over_t_and_replay_by_the_rest(
    cls: type[Method], cfg: GRConfig, current_terms: tuple[str, ...], replay_terms: tuple[str, ...]
) -> None:
    method = _method(cls, cfg)
    method.train()
    method.before_experience(_experience(0))
    out = method.observe(_batch(0))
    assert set(out.terms) == set(current_terms)  # experience 1: no replay
    assert float(out.loss) == pytest.approx(sum(float(out.terms[k]) for k in current_terms))
    for t in (1, 2):
        method.after_experience(_experience(t - 1))
        method.before_experience(_experience(t))
        out = method.observe(_batch(t))
        current = sum(float(out.terms[k]) for k in current_terms)
        replay = sum(float(out.terms[k]) for k in replay_terms)
        experience = t + 1
        expected = current / experience + (1 - 1 / experience) * replay
        assert float(out.loss) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    ("cls", "cfg", "source", "label_term"),
    [
        (BIR, BIRConfig(**SIZES), "previous", "distill"),
        (GR, GRConfig(**SIZES), "previous_vae", "replay_ce"),
    ],
)
def test_replay_comes_from_the_frozen_previous_model_and_previous_classes(
    cls: type[Method], cfg: GRConfig, source: str, label_term: str
) -> None:
    method = _method(cls, cfg)
    generator_net = getattr(method, source)
    calls: list[torch.Tensor] = []
    original = generator_net.sample

    def spy(n: int, classes: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        calls.append(classes.clone())
        return original(n, classes, generator)  # type: ignore[no-any-return]

    generator_net.sample = spy
    method.before_experience(_experience(0))
    method.observe(_batch(0))
    assert not calls  # nothing to replay in the first experience
    method.after_experience(_experience(0))
    assert all(not p.requires_grad for p in generator_net.parameters())
    method.before_experience(_experience(1))
    out = method.observe(_batch(1))
    assert [c.tolist() for c in calls] == [[0, 1]]
    assert label_term in out.terms


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"method\.dg_prop"):
        BIRConfig(dg_prop=1.5)
    with pytest.raises(ConfigError, match=r"method\.fc_layers"):
        GRConfig(fc_layers=1)
    with pytest.raises(ConfigError, match=r"method\.batch_replay"):
        GRConfig(batch_replay=0)
    with pytest.raises(ConfigError, match=r"method\.temperature"):
        BIRConfig(temperature=0.0)


def test_generate_gives_samples_of_each_learned_class() -> None:
    method = _method(BIR, BIRConfig(**SIZES))
    assert isinstance(method, BIR)
    method.after_experience(_experience(1))
    x, y = method.generate(3, torch.Generator().manual_seed(0))
    assert x.shape == (6, *SHAPE) and y.tolist() == [2, 2, 2, 3, 3, 3]
    gr = _method(GR, GRConfig(**SIZES))
    assert isinstance(gr, GR)
    gr.after_experience(_experience(1))
    x, y = gr.generate(3, torch.Generator().manual_seed(0))
    assert x.shape == (6, *SHAPE) and set(y.tolist()) <= {2, 3}
