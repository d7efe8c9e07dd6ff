"""Continual-SSL strategies: every SSL model × strategy, and each strategy's defining behaviour."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
import torch

import lifelong.components  # noqa: F401  (fills the registries)
import lifelong.ssl.strategies.lump as lump_module
from lifelong.backbones import BACKBONES
from lifelong.backbones.resnet import ResNetConfig
from lifelong.backbones.vit import ViTConfig
from lifelong.buffers.stream_buffers import Replay
from lifelong.data.stream import Experience
from lifelong.data.tensors import ImageSet
from lifelong.data.transforms import ImageTransform
from lifelong.errors import ConfigError
from lifelong.methods.base import MethodContext
from lifelong.methods.cssl import CSSL, CSSLConfig
from lifelong.running.train import batches
from lifelong.ssl.losses import negative_cosine_per_sample
from lifelong.ssl.strategies.base import (
    SSL_STRATEGIES,
    PassBatch,
    Projection,
    criterion_for,
    mse_criterion,
    statistics_kept,
)
from lifelong.types import Batch

CPU = torch.device("cpu")
SHAPE = (3, 16, 16)
NUM_CLASSES = 4
TRANSFORM = ImageTransform((0.5,) * 3, (0.25,) * 3)
TINY: dict[str, Any] = {
    "ssl_dim_proj": 8,
    "ssl_dim_pred": 4,
    "ssl_num_views": 3,
    "ssl_decoder_depth": 1,
    "ssl_decoder_heads": 2,
    "ssl_decoder_dim": 8,
    "buffer_size": 16,
    "replay_batch_size": 4,
    "aligner_dim": 8,
}
STRATEGIES = ("none", "er", "lump", "minred", "cassle", "aep", "arp", "apre")
MODELS = ("simsiam", "byol", "barlow_twins", "emp_ssl", "mae")


def experience(t: int, seed: int = 0) -> Experience:
    """2 classes × 12 random 3×16×16 images."""
    g = torch.Generator().manual_seed(seed + t)
    y = torch.arange(2 * t, 2 * t + 2).repeat_interleave(12)
    x = torch.randint(0, 256, (24, *SHAPE), generator=g, dtype=torch.uint8)
    return Experience(t, (2 * t, 2 * t + 1), ImageSet(x, y), ImageSet(x[:8], y[:8]))


def build(model: str = "simsiam", strategy: str = "none", seed: int = 0, **overrides: Any) -> CSSL:
    torch.manual_seed(seed)
    if model == "mae":
        cfg = ViTConfig(emb_dim=16, depth=1, heads=2)
        encoder = BACKBONES.get("vit_tiny").build(cfg, SHAPE, NUM_CLASSES)
    else:
        encoder = BACKBONES.get("resnet18").build(ResNetConfig(nf=4), SHAPE, NUM_CLASSES)
    generator = torch.Generator().manual_seed(seed)
    ctx = MethodContext(encoder, NUM_CLASSES, SHAPE, TRANSFORM, CPU, generator)
    values = {**TINY, "passes": 1, "ssl_model": model, "strategy": strategy, **overrides}
    return CSSL(CSSLConfig(**values), ctx)


def run(method: CSSL, t: int, steps: int = 3, batch_size: int = 8) -> list[float]:
    """One experience through the method's hooks, batches drawn as the loop draws them."""
    method.train()
    exp = experience(t)
    method.before_experience(exp)
    g = method.ctx.generator
    losses = []
    for batch in batches(exp.train, steps, batch_size, 2, TRANSFORM, False, g, CPU, t):
        losses.append(float(method.observe(batch).loss))
    method.after_experience(exp)
    return losses


def stream_images(n: int = 8, seed: int = 5) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *SHAPE), generator=g, dtype=torch.uint8)


def batch_of(x: torch.Tensor) -> Batch:
    """A stream minibatch of uint8 images (labels unused by SSL)."""
    return Batch(TRANSFORM.normalize(x), torch.zeros(len(x), dtype=torch.int64), x, 0)


def record_plans(method: CSSL) -> list[PassBatch]:
    """Make the strategy's ``before_forward`` record the batches it builds."""
    plans: list[PassBatch] = []
    before_forward = method.strategy.before_forward

    def record(x: torch.Tensor) -> PassBatch:
        plans.append(before_forward(x))
        return plans[-1]

    method.strategy.before_forward = record  # type: ignore[method-assign]
    return plans


def encoder_params(method: CSSL) -> dict[str, torch.Tensor]:
    return {
        k: v.detach().clone() for k, v in method.net.named_parameters() if not k.startswith("head.")
    }


def test_registry_holds_the_spec_strategies_with_their_default_buffers() -> None:
    assert set(SSL_STRATEGIES.names()) == set(STRATEGIES)
    defaults = {name: SSL_STRATEGIES.get(name).default_buffer for name in STRATEGIES}
    assert defaults == {
        "none": None,
        "cassle": None,
        "aep": None,
        "er": "reservoir",
        "lump": "reservoir",
        "arp": "reservoir",
        "apre": "reservoir",
        "minred": "minred",
    }


@pytest.mark.parametrize(("model", "strategy"), list(itertools.product(MODELS, STRATEGIES)))
def test_every_model_and_strategy_trains_one_experience(model: str, strategy: str) -> None:
    method = build(model, strategy, passes=2)
    before = encoder_params(method)
    losses = run(method, 0)
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    after = encoder_params(method)
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(moved) == len(before), f"did not move: {set(before) - set(moved)}"
    buffer = method.strategy.buffer
    if SSL_STRATEGIES.get(strategy).default_buffer is None:
        assert buffer is None
    else:
        assert buffer is not None and len(buffer) == 16  # 24 stream images offered, 16 kept


def test_buffer_kind_override_and_buffer_free_strategies() -> None:
    assert type(build(strategy="er", buffer="fifo").strategy.buffer).__name__ == "FifoBuffer"
    assert type(build(strategy="minred").strategy.buffer).__name__ == "MinRedBuffer"
    with pytest.raises(ConfigError, match="uses no buffer"):
        CSSLConfig(strategy="cassle", buffer="reservoir")
    with pytest.raises(ConfigError, match="unknown strategy"):
        CSSLConfig(strategy="replay_emp")


def test_ssl_criterion_needs_a_binary_model() -> None:
    with pytest.raises(ConfigError, match="two-argument criterion"):
        build("emp_ssl", "aep", align_criterion="ssl")
    simsiam = build("simsiam", "aep").model
    assert criterion_for("cosine", simsiam) is negative_cosine_per_sample
    assert criterion_for("ssl", simsiam) is simsiam.alignment
    a, b = torch.randn(5, 3), torch.randn(5, 3)
    assert torch.equal(mse_criterion(a, b), ((a - b) ** 2).mean())


def test_no_aligner_means_identity() -> None:
    method = build(strategy="aep", use_aligner=False)
    assert isinstance(method.strategy.align.g, torch.nn.Identity)
    assert method.strategy.trainable_parameters() == []
    with_aligner = build(strategy="aep")
    aligner = {id(p) for p in with_aligner.strategy.trainable_parameters()}
    assert aligner and aligner <= {
        id(p) for g in with_aligner.optimizer.param_groups for p in g["params"]
    }


class Spy:
    """Records the calls of a buffer's sample and add (in order) and what they returned/took."""

    def __init__(self, method: CSSL) -> None:
        buffer = method.strategy.buffer
        assert buffer is not None
        self.calls: list[str] = []
        self.samples: list[Replay] = []
        self.added: list[torch.Tensor] = []
        self.features_before_add: list[torch.Tensor] = []
        sample, add = buffer.sample, buffer.add

        def spy_sample(n: int) -> Replay:
            self.calls.append("sample")
            self.samples.append(sample(n))
            return self.samples[-1]

        def spy_add(x: torch.Tensor, features: torch.Tensor) -> None:
            self.calls.append("add")
            self.added.append(x.clone())
            self.features_before_add.append(buffer.features.clone())
            add(x, features)

        buffer.sample = spy_sample  # type: ignore[method-assign]
        buffer.add = spy_add  # type: ignore[method-assign]


def test_er_batch_is_replay_then_stream_and_stream_enters_after_all_passes() -> None:
    method = build(strategy="er", passes=3)
    run(method, 0)  # fills the buffer
    spy = Spy(method)
    plans = record_plans(method)
    x = stream_images()
    method.observe(batch_of(x))
    assert spy.calls == ["sample", "sample", "sample", "add"]
    for plan_x, replay in zip([p.x for p in plans], spy.samples, strict=True):
        assert len(plan_x) == 4 + 8
        assert torch.equal(plan_x[:4], replay.x)  # R first
        assert torch.equal(plan_x[4:], x)  # then S
    assert torch.equal(spy.added[0], x)
    # online mode: a fresh replay sample in every pass
    drawn = [tuple(r.slots.tolist()) for r in spy.samples]
    assert len(set(drawn)) > 1


def test_replay_waits_for_a_full_replay_batch() -> None:
    method = build(strategy="er", replay_batch_size=8)
    strategy = method.strategy
    assert strategy.buffer is not None
    strategy.buffer.add(stream_images(7), torch.randn(7, 8))
    assert strategy.before_forward(stream_images()).replay is None
    strategy.buffer.add(stream_images(1), torch.randn(1, 8))
    assert strategy.before_forward(stream_images()).num_replay == 8


def test_each_pass_draws_fresh_views() -> None:
    method = build(strategy="none", passes=3)
    inputs: list[torch.Tensor] = []
    method.model.register_forward_pre_hook(lambda _, args: inputs.append(args[0][0].clone()))
    method.train()
    method.observe(batch_of(stream_images()))
    assert len(inputs) == 3
    assert not torch.equal(inputs[0], inputs[1]) and not torch.equal(inputs[1], inputs[2])


def test_lump_mixes_with_one_lambda_per_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    draws: list[float] = []
    original = lump_module.beta_draw

    def counted(alpha: float, generator: torch.Generator) -> float:
        draws.append(original(alpha, generator))
        return draws[-1]

    monkeypatch.setattr(lump_module, "beta_draw", counted)
    method = build(strategy="lump", passes=3)
    run(method, 0)
    draws.clear()
    strategy = method.strategy
    mixed: list[list[torch.Tensor]] = []
    given: list[list[torch.Tensor]] = []
    after_transforms = strategy.after_transforms

    def record(views: list[torch.Tensor], plan: PassBatch) -> list[torch.Tensor]:
        given.append([v.clone() for v in views])
        mixed.append(after_transforms(views, plan))
        return mixed[-1]

    strategy.after_transforms = record  # type: ignore[method-assign]
    method.observe(batch_of(stream_images()))
    assert len(draws) == 3  # one λ per pass
    assert len(set(draws)) == 3
    for lam, views, out in zip(draws, given, mixed, strict=True):
        assert len(views[0]) == 16 and len(out[0]) == 8  # |R| = |S|; loss on the mixed batch
        for v, o in zip(views, out, strict=True):
            torch.testing.assert_close(o, lam * v[8:] + (1 - lam) * v[:8])  # one λ for all


def test_lump_beta_draw_is_seeded_and_beta_distributed() -> None:
    a = [lump_module.beta_draw(0.4, torch.Generator().manual_seed(1)) for _ in range(2)]
    assert a[0] == a[1]
    g = torch.Generator().manual_seed(0)
    sample = torch.tensor([lump_module.beta_draw(0.4, g) for _ in range(4000)])
    assert abs(float(sample.mean()) - 0.5) < 0.03
    assert abs(float(sample.var()) - 0.25 / 1.8) < 0.01  # Beta(α, α): 1 / (4(2α + 1))


def test_minred_trains_on_buffer_items_only_after_inserting_the_stream() -> None:
    method = build(strategy="minred", passes=2)
    run(method, 0)
    buffer = method.strategy.buffer
    assert buffer is not None
    running = [b.clone() for b in Projection.of(method.model).buffers()]
    method.strategy.before_passes(method.model, stream_images())
    for a, b in zip(running, Projection.of(method.model).buffers(), strict=True):
        assert torch.equal(a, b)  # the insertion pass leaves BN running statistics alone
    spy = Spy(method)
    plans = record_plans(method)
    x = stream_images(seed=9)
    method.observe(batch_of(x))
    assert spy.calls == ["add", "sample", "sample"]  # S goes in first; one draw per pass
    assert torch.equal(spy.added[0], x)
    stored = {img.numpy().tobytes() for img in buffer.x[: len(buffer)]}
    for plan, replay in zip(plans, spy.samples, strict=True):
        assert plan.num_replay == len(plan.x) == 4  # buffer items only, no stream rows
        assert torch.equal(plan.x, replay.x)
        assert all(img.numpy().tobytes() in stored for img in plan.x)


def test_statistics_kept_restores_running_statistics() -> None:
    bn = torch.nn.BatchNorm1d(3)
    with statistics_kept(bn):
        bn(torch.randn(10, 3) + 5)
        assert bn.running_mean.abs().sum() > 0
    assert torch.equal(bn.running_mean, torch.zeros(3))
    assert int(bn.num_batches_tracked) == 0


def test_cassle_distils_from_the_second_experience_to_a_frozen_eval_copy() -> None:
    method = build(strategy="cassle")
    strategy = method.strategy
    method.train()
    assert not strategy.frozen.training  # eval mode even after method.train()
    method.before_experience(experience(0))
    out = method.observe(batch_of(stream_images()))
    assert "align" not in out.terms  # nothing to distil on the first experience
    run(method, 0)
    method.before_experience(experience(1))
    frozen = {k: v.clone() for k, v in strategy.frozen.state_dict().items()}
    current = Projection.of(method.model).state_dict()
    assert all(torch.equal(frozen[k], current[k]) for k in frozen)  # a copy of the model now
    method.train()
    assert not strategy.frozen.training
    assert all(not p.requires_grad for p in strategy.frozen.parameters())
    out = method.observe(batch_of(stream_images()))
    assert "align" in out.terms and math.isfinite(float(out.terms["align"]))
    for _ in range(2):
        method.observe(batch_of(stream_images(seed=7)))
    after = strategy.frozen.state_dict()
    assert all(torch.equal(frozen[k], after[k]) for k in frozen)  # BN statistics included
    moved = Projection.of(method.model).state_dict()
    assert any(not torch.equal(frozen[k], moved[k]) for k in frozen)


@pytest.mark.parametrize("strategy", ["aep", "apre"])
def test_ema_target_follows_the_ema_formula(strategy: str) -> None:
    method = build(strategy=strategy, ema_momentum=0.9)
    run(method, 0)
    target = method.strategy.target
    old = [p.detach().clone() for p in target.parameters()]
    method.observe(batch_of(stream_images()))
    online = list(Projection.of(method.model).parameters())
    for t, o, new_t in zip(old, online, target.parameters(), strict=True):
        torch.testing.assert_close(new_t, 0.9 * t + 0.1 * o.detach())
    assert any(not torch.equal(t, n) for t, n in zip(old, target.parameters(), strict=True))


def test_arp_aligns_replayed_rows_to_their_stored_features_then_refreshes_them() -> None:
    method = build(strategy="arp", feature_ema=0.5)
    run(method, 0)
    strategy = method.strategy
    buffer = strategy.buffer
    assert buffer is not None
    stored = buffer.features.clone()
    captured: dict[str, Any] = {}
    align_forward = strategy.align.forward

    def record(z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        captured["z"], captured["target"] = z.detach(), target.clone()
        return align_forward(z, target)

    strategy.align.forward = record  # type: ignore[method-assign]
    outputs: list[Any] = []
    method.model.register_forward_hook(lambda _, __, out: outputs.append(out))
    spy = Spy(method)
    method.observe(batch_of(stream_images()))
    slots = spy.samples[0].slots
    # the target is the stored features as sampled (before the refresh), once per view
    torch.testing.assert_close(captured["target"], stored[slots].repeat(2, 1))
    replayed_rows = torch.cat([z_v[:4] for z_v in outputs[0].z]).detach()
    assert torch.equal(captured["z"], replayed_rows)  # the replayed rows of both views only
    z_bar = torch.stack(outputs[0].z).mean(0)[:4].detach()
    refreshed = spy.features_before_add[0][slots]  # before S's insertion may overwrite slots
    torch.testing.assert_close(refreshed, 0.5 * stored[slots] + 0.5 * z_bar)


def test_apre_target_sees_only_the_replayed_rows() -> None:
    method = build(strategy="apre")
    run(method, 0)
    sizes: list[int] = []
    method.strategy.target.register_forward_pre_hook(lambda _, args: sizes.append(len(args[0])))
    method.observe(batch_of(stream_images()))
    assert sizes == [4, 4]  # the replayed rows of each of the two views


def test_aep_alignment_is_omega_weighted_cosine_to_the_ema_target() -> None:
    method = build(strategy="aep", use_aligner=False, omega=0.5)
    seen: list[tuple[list[torch.Tensor], Any]] = []
    method.model.register_forward_hook(lambda _, args, out: seen.append((args[0], out)))
    target = method.strategy.target
    before = {k: v.clone() for k, v in target.state_dict().items()}
    method.train()
    out = method.observe(batch_of(stream_images()))
    target.load_state_dict(before)  # the target as it was during the forward pass
    views, model_out = seen[0]
    with torch.no_grad():
        z_target = torch.cat([target(v) for v in views])
    expected = negative_cosine_per_sample(torch.cat(model_out.z), z_target).mean()
    torch.testing.assert_close(out.terms["align"], expected.detach())
    torch.testing.assert_close(out.loss, out.terms["ssl"] + 0.5 * out.terms["align"])


def test_mean_cosine_criterion_on_identical_inputs_is_minus_one() -> None:
    method = build(strategy="aep", use_aligner=False)
    z = torch.randn(6, 8)
    assert torch.isclose(method.strategy.align(z, z), torch.tensor(-1.0))
    assert torch.isclose(method.strategy.align(z, -z), torch.tensor(1.0))
