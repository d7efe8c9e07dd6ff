"""X-DER: the logit update by hand, the future heads, the loss terms, the memory, the variants."""

from __future__ import annotations

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
from lifelong.losses.xder import (
    future_heads,
    future_preparation_loss,
    head_cross_entropy,
    margin_violation,
    transplant_logits,
)
from lifelong.methods.base import METHODS, MethodContext
from lifelong.methods.xder import XDER, XDERConfig
from lifelong.nn.polytope import PolytopeHead
from lifelong.types import Batch

HEADS = torch.tensor([False, False, True, True])


def test_transplant_rescales_a_block_that_beats_the_ground_truth() -> None:
    stored = torch.tensor([[3.0, 0.5, 0.0, 0.0]])
    new = torch.tensor([[9.0, 9.0, 6.0, 2.0]])
    out = transplant_logits(stored, new, torch.tensor([0]), HEADS, gamma=0.85)
    # max 6 > g = 3: the block is scaled by 0.85 * 3 / 6 = 0.425; the rest is kept
    assert torch.allclose(out, torch.tensor([[3.0, 0.5, 2.55, 0.85]]))
    assert torch.equal(stored, torch.tensor([[3.0, 0.5, 0.0, 0.0]]))  # input untouched


def test_transplant_copies_a_block_below_the_ground_truth() -> None:
    stored = torch.tensor([[3.0, 0.5, 7.0, 7.0]])
    new = torch.tensor([[0.0, 0.0, 1.0, 2.0]])
    out = transplant_logits(stored, new, torch.tensor([0]), HEADS, gamma=0.85)
    assert torch.allclose(out, torch.tensor([[3.0, 0.5, 1.0, 2.0]]))


def test_transplant_shifts_when_the_ground_truth_is_negative() -> None:
    stored = torch.tensor([[-1.0, 0.0, 0.0, 0.0]])
    new = torch.tensor([[0.0, 0.0, 2.0, -3.0]])
    out = transplant_logits(stored, new, torch.tensor([0]), HEADS, gamma=0.85)
    # shift by g - max - (1 - γ)|g| = -1 - 2 - 0.15 = -3.15: the max becomes -1.15 < g
    assert torch.allclose(out, torch.tensor([[-1.0, 0.0, -1.15, -6.15]]))


def test_future_heads_are_the_unseen_units_in_groups() -> None:
    seen = torch.tensor([True] * 4 + [False] * 6)
    heads = future_heads(seen, 2)
    assert [h.tolist() for h in heads] == [[4, 5], [6, 7], [8, 9]]
    assert future_heads(torch.ones(10, dtype=torch.bool), 2) == []


def mammoth_style_supcon(features: torch.Tensor, labels: torch.Tensor, t: float) -> torch.Tensor:
    """Khosla et al.'s SupCon on (N, V, D), summed over anchors (independent of the library)."""
    n, v, _ = features.shape
    flat = torch.cat(torch.unbind(features, dim=1))  # view-major, as the reference
    y = labels.repeat(v)
    sim = flat @ flat.T / t
    total = torch.zeros(())
    for a in range(n * v):
        others = [k for k in range(n * v) if k != a]
        log_den = torch.logsumexp(sim[a, others], dim=0)
        pos = [b for b in others if y[b] == y[a]]
        total = total - torch.stack([sim[a, b] - log_den for b in pos]).mean()
    return total


def test_future_preparation_matches_summed_supcon_over_heads() -> None:
    g = torch.Generator().manual_seed(0)
    outputs = torch.randn(5, 3, 7, generator=g)
    labels = torch.tensor([0, 1, 0, 2, 1])
    heads = [torch.tensor([3, 4]), torch.tensor([5, 6])]
    value = future_preparation_loss(outputs, labels, heads, temperature=5.0)
    expected = sum(
        mammoth_style_supcon(F.normalize(outputs[:, :, h], dim=2), labels, 5.0) for h in heads
    ) / (len(heads) * 5)
    assert torch.allclose(value, expected, atol=1e-5)


def test_margin_violation_averages_the_violating_rows_only() -> None:
    bad = torch.tensor([[1.0, 0.2], [0.0, -1.0]])
    good = torch.tensor([[0.5, -torch.inf], [2.0, 1.0]])
    # row 0: 1 + 0.3 - 0.5 = 0.8 > 0; row 1: 0 + 0.3 - 2 < 0 is left out
    assert torch.allclose(margin_violation(bad, good, 0.3), torch.tensor(0.8))
    assert float(margin_violation(bad[1:], good[1:], 0.3)) == 0.0


def test_head_cross_entropy_is_cross_entropy_on_the_slice() -> None:
    logits = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    value = head_cross_entropy(logits, torch.tensor([2]), HEADS)
    assert torch.allclose(value, F.cross_entropy(torch.tensor([[3.0, 4.0]]), torch.tensor([0])))


def build(name: str = "xder", **fields: object) -> XDER:
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    backbone = BACKBONES.get("mlp").build(MLPConfig(hidden=(16,)), (1, 4, 4), 6)
    transform = ImageTransform((0.5,), (0.25,))
    ctx = MethodContext(backbone, 6, (1, 4, 4), transform, torch.device("cpu"), generator)
    entry = METHODS.get(name)
    config = {"lr": 0.1, "buffer_size": 12, "minibatch_size": 4, "simclr_batch_size": 4}
    method = entry.build(entry.make_config({**config, **fields}), ctx)
    assert isinstance(method, XDER)
    return method


def experience(t: int, per_class: int = 10) -> Experience:
    g = torch.Generator().manual_seed(t)
    classes = (2 * t, 2 * t + 1)
    x = torch.randint(0, 256, (2 * per_class, 1, 4, 4), generator=g).to(torch.uint8)
    y = torch.tensor([c for c in classes for _ in range(per_class)])
    return Experience(t, classes, ImageSet(x, y), ImageSet(x, y))


def train(method: XDER, exp: Experience, steps: int = 3) -> None:
    method.before_experience(exp)
    for s in range(steps):
        part = slice(4 * s, 4 * s + 8)
        clean = method.ctx.transform.normalize(exp.train.x[part])
        method.observe(Batch(clean, exp.train.y[part], clean, exp.id))
    method.after_experience(exp)


def test_memory_is_class_balanced_and_old_logits_are_rewritten() -> None:
    method = build()
    train(method, experience(0))
    assert len(method.memory) == 12
    assert torch.bincount(method.memory.y[:12], minlength=6).tolist() == [6, 6, 0, 0, 0, 0]
    old = method.memory.logits[:12].clone()
    old_x = method.memory.x[:12].clone()
    old_y = method.memory.y[:12].clone()
    train(method, experience(1))
    y = method.memory.y[:12]
    assert torch.bincount(y, minlength=6).tolist() == [3, 3, 3, 3, 0, 0]
    kept = y < 2
    first3 = torch.cat([(old_y == c).nonzero().flatten()[:3] for c in (0, 1)]).sort().values
    assert torch.equal(method.memory.x[:6], old_x[first3])  # first 3 per old class, in front
    assert torch.equal(method.memory.logits[:6, :2], old[first3, :2])  # past units kept
    with torch.no_grad():
        out = method.net(method.memory.x[:12][kept])
    logits = method.memory.logits[:12][kept]
    past = torch.tensor([True, True, False, False, False, False])
    expected = transplant_logits(logits, out, y[kept], ~past, method.cfg.gamma)
    assert torch.allclose(logits, expected, atol=1e-5)  # units 2..5 from the final network
    gt = logits.gather(1, y[kept][:, None]).squeeze(1)
    assert bool((logits[:, 2:].max(dim=1).values < gt).all())  # the ground truth stays on top


def test_replay_rewrites_future_units_of_old_examples_at_first_replay() -> None:
    method = build(minibatch_size=12, lambd=0.0)
    train(method, experience(0))
    exp = experience(1)
    method.before_experience(exp)
    before = method.memory.logits[:12].clone()
    clean = method.ctx.transform.normalize(exp.train.x[:4])
    method.observe(Batch(clean, exp.train.y[:4], clean, 1))
    after = method.memory.logits[:12]
    assert torch.equal(after[:, :2], before[:, :2])  # past units kept
    assert not torch.equal(after[:, 2:], before[:, 2:])  # counter 1: probability 1
    assert method.memory.counter[:12].min() >= 1


def test_future_term_only_while_future_classes_remain() -> None:
    method = build()
    exp = experience(0)
    method.before_experience(exp)
    clean = method.ctx.transform.normalize(exp.train.x[:8])
    out = method.observe(Batch(clean, exp.train.y[:8], clean, 0))
    assert "future_supcon" in out.terms and float(out.terms["future_supcon"]) > 0
    for t in (1, 2):
        method.before_experience(experience(t))
    out = method.observe(Batch(clean, torch.tensor([4, 5] * 4), clean, 2))
    assert "future_supcon" not in out.terms and "future_constraint" not in out.terms


def test_variants_resolve_to_xder_with_their_fixed_fields() -> None:
    rpc, ce = METHODS.get("xder_rpc"), METHODS.get("xder_ce")
    assert rpc.method_class is XDER and ce.method_class is XDER
    assert rpc.variant_of == ce.variant_of == "xder"
    rpc_cfg = rpc.make_config({})
    assert isinstance(rpc_cfg, XDERConfig)
    assert (rpc_cfg.head, rpc_cfg.lambd, rpc_cfg.past_constraint) == ("polytope", 0.0, False)
    ce_cfg = ce.make_config({})
    assert isinstance(ce_cfg, XDERConfig)
    assert ce_cfg.stream_classes == "current_and_future" and ce_cfg.lambd == 0.0
    assert ce_cfg.past_constraint and ce_cfg.first_experience_reservoir
    with pytest.raises(ConfigError, match="always"):
        rpc.make_config({"head": "linear"})
    assert isinstance(build("xder_rpc").net.head, PolytopeHead)


def test_xder_ce_replays_a_reservoir_in_the_first_experience_then_balances() -> None:
    method = build("xder_ce")
    exp = experience(0)
    method.before_experience(exp)
    clean = method.ctx.transform.normalize(exp.train.x[:8])
    method.observe(Batch(clean, exp.train.y[:8], clean, 0))
    assert len(method.memory) == 8
    out = method.observe(Batch(clean, exp.train.y[:8], clean, 0))
    assert "logit_mse" in out.terms
    method.after_experience(exp)
    assert torch.bincount(method.memory.y[:12], minlength=6).tolist() == [6, 6, 0, 0, 0, 0]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("gamma", 0.0),
        ("gamma", 1.5),
        ("alpha", -1.0),
        ("lambd", -0.1),
        ("simclr_num_aug", 1),
        ("simclr_temp", 0.0),
        ("head", "cosine"),
        ("stream_classes", "all"),
        ("past_constraint", "yes"),
    ],
)
def test_bad_config_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        XDERConfig(**{field: value})  # type: ignore[arg-type]
