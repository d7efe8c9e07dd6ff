"""SCoMMER's parts against hand-computed values: k-WTA, dropout probabilities and masks, counts,
the long-term memory's EMA, the consistency term and inference with the long-term memory."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

import lifelong.components  # noqa: F401  (fills the registries)
from lifelong.backbones import BACKBONES
from lifelong.backbones.sparse import SparseMLPConfig
from lifelong.data.transforms import ImageTransform
from lifelong.errors import ConfigError
from lifelong.methods.base import METHODS, MethodContext
from lifelong.methods.scommer import SCoMMER
from lifelong.nn.k_winners import KWinners
from lifelong.nn.semantic_dropout import (
    SemanticDropout,
    classwise_keep,
    dropout_mask,
    heterogeneous_keep,
)
from lifelong.types import Batch

SHAPE = (1, 3, 3)


def build(**fields: Any) -> SCoMMER:
    torch.manual_seed(0)
    backbone = BACKBONES.get("sparse_mlp").build(
        SparseMLPConfig(hidden=(20, 10), kw=(0.5, 0.5)), SHAPE, 4
    )
    ctx = MethodContext(
        backbone,
        4,
        SHAPE,
        ImageTransform((0.0,), (1.0,)),
        torch.device("cpu"),
        torch.Generator().manual_seed(0),
    )
    entry = METHODS.get("scommer")
    method = entry.build(entry.make_config({"lr": 0.1, **fields}), ctx)
    assert isinstance(method, SCoMMER)
    return method


def batch(seed: int, n: int = 6) -> Batch:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *SHAPE, generator=g)  # float inputs: a stream without augmentation
    y = torch.randint(0, 4, (n,), generator=g)
    return Batch(x=x, y=y, x_clean=x, experience_id=0)


def test_k_winners_keeps_exactly_k_units_per_example():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 10, generator=g) + 1.0  # positive and distinct
    out = KWinners(10, 0.3)(x)
    assert ((out != 0).sum(1) == 3).all()
    top = torch.topk(x, 3, dim=1).indices
    assert torch.equal(out.gather(1, top), x.gather(1, top))
    # in SCoMMER's sparse MLP the first hidden layer (20 units, kw 0.5) keeps at most 10 per example
    method = build()
    hidden = method.net.body[:3](batch(1).x)
    assert ((hidden != 0).sum(1) <= 10).all()
    assert ((hidden != 0).sum(1) == 10).any()


def test_heterogeneous_keep_probabilities_from_hand_counts():
    keep = heterogeneous_keep(torch.tensor([0.0, 5.0, 10.0]), alpha=2.0)
    # exp(-2 c / max c): exp(0), exp(-1), exp(-2)
    assert torch.allclose(keep, torch.tensor([1.0, math.exp(-1), math.exp(-2)]))
    assert torch.equal(heterogeneous_keep(torch.zeros(3), 2.0), torch.ones(3))


def test_semantic_keep_probabilities_from_hand_class_counts():
    counts = torch.tensor([[0.0, 2.0, 4.0], [0.0, 0.0, 0.0], [3.0, 3.0, 0.0]])
    keep = classwise_keep(counts, alpha=2.0)
    # 1 - exp(-2 c / max over the class's row); a class without counts: all zeros
    expected = torch.tensor(
        [
            [0.0, 1 - math.exp(-1), 1 - math.exp(-2)],
            [0.0, 0.0, 0.0],
            [1 - math.exp(-2), 1 - math.exp(-2), 0.0],
        ]
    )
    assert torch.allclose(keep, expected)


def test_the_mask_is_semantic_for_classes_with_counts_and_heterogeneous_otherwise():
    keep = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0])  # only units 0 and 1 can be drawn
    class_keep = torch.tensor([[1.0, 0.0, 1.0, 0.0, 1.0], [0.0] * 5])  # class 1: no counts
    labels = torch.tensor([0, 1, 1, 0])
    mask = dropout_mask(labels, keep, class_keep, 2, torch.Generator().manual_seed(0))
    assert torch.equal(mask[0], class_keep[0]) and torch.equal(mask[3], class_keep[0])
    assert torch.equal(mask[1], torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0]))
    assert torch.equal(mask[2], mask[1])  # one heterogeneous mask for the batch
    # drawn: kept units out of the weighted ones, semantic draws per example with their rates
    keep = torch.tensor([0.2, 1.0, 0.5, 0.0])
    class_keep = torch.tensor([[0.9, 0.1, 0.5, 0.0]])
    g = torch.Generator().manual_seed(1)
    draws = torch.stack(
        [dropout_mask(torch.tensor([0]), keep, class_keep, 2, g)[0] for _ in range(4000)]
    )
    assert torch.allclose(draws.mean(0), class_keep[0], atol=0.03)
    no_class = torch.zeros(1, 4)
    masks = [dropout_mask(torch.tensor([0, 0]), keep, no_class, 2, g) for _ in range(200)]
    assert all(int(m[0].sum()) == 2 and m[0, 3] == 0 and torch.equal(m[0], m[1]) for m in masks)


def test_dropout_masks_the_layer_input_and_counts_its_firing_units():
    dropout = SemanticDropout(4, 2, kept=4, device=torch.device("cpu"))
    dropout.class_keep[0] = torch.tensor([1.0, 1.0, 0.0, 1.0])
    layer = torch.nn.ReLU()
    x = torch.tensor([[1.0, -1.0, 2.0, 3.0], [2.0, 2.0, -1.0, 1.0]])
    labels = torch.tensor([0, 1])
    handles = dropout.attach(layer, labels, torch.Generator().manual_seed(0))
    out = layer(x)
    for handle in handles:
        handle.remove()
    # example 0 (class 0): unit 2 dropped; example 1 (class 1, no counts): all 4 units kept
    assert torch.equal(out, torch.tensor([[1.0, 0.0, 0.0, 3.0], [2.0, 2.0, 0.0, 1.0]]))
    assert torch.equal(dropout.counts, torch.tensor([2.0, 1.0, 0.0, 2.0]))
    assert torch.equal(dropout.class_counts, torch.tensor([[1.0, 0, 0, 1], [1.0, 1, 0, 1]]))
    assert torch.equal(layer(x), x.relu())  # hooks removed


def test_initial_heterogeneous_mask_keeps_kw_times_factor_of_the_units():
    method = build(init_active_factor=1.1)
    (dropout,) = method.layers()
    assert dropout.kept == 5  # int(0.5 * 1.1 * 10)
    assert torch.equal(dropout.keep, torch.tensor([1.0] * 5 + [0.0] * 5))


def test_experience_end_turns_the_counts_into_keep_probabilities():
    method = build(dropout_alpha=3.0, classwise_dropout_alpha=2.0, dropout_warmup=0)
    method.train()
    for seed in (1, 2, 3):
        method.observe(batch(seed))
    (dropout,) = method.layers()
    counts, class_counts = dropout.counts.clone(), dropout.class_counts.clone()
    assert float(counts.sum()) > 0 and int(class_counts.sum()) == int(counts.sum())
    method.after_epoch(None, 0)  # type: ignore[arg-type]  # epoch 0 is not past warm-up 0
    assert float(dropout.class_keep.sum()) == 0
    method.after_experience(None)  # type: ignore[arg-type]
    assert torch.allclose(dropout.keep, torch.exp(-3.0 * counts / counts.max()))
    peak = class_counts.max(1, keepdim=True).values
    assert torch.allclose(dropout.class_keep, 1 - torch.exp(-2.0 * class_counts / (peak + 1e-16)))


def test_replay_ce_plus_weighted_consistency_with_the_long_term_memory():
    method = build(reg_weight=0.3, minibatch_size=64, buffer_size=64, ema_update_freq=1.0)
    method.train()
    method.observe(batch(1))
    stored = method.buffer.sample(64, ("x", "y"))  # all 6 (the means below ignore the order)
    net, ema = copy.deepcopy(method.net), copy.deepcopy(method.ema)
    out = method.observe(batch(2))
    with torch.no_grad():
        logits = net(stored["x"])  # no dropout on replayed examples
        replay_ce = F.cross_entropy(logits, stored["y"])
        mse = F.mse_loss(logits, ema(stored["x"]))
    assert torch.allclose(out.terms["replay_ce"], replay_ce)
    assert torch.allclose(out.terms["consistency"], mse)
    assert torch.allclose(out.loss, out.terms["ce"] + replay_ce + 0.3 * mse)


def test_long_term_memory_follows_the_working_model_with_the_step_dependent_decay():
    method = build(ema_update_freq=1.0, ema_alpha=0.6)
    method.train()
    ema = [p.detach().clone() for p in method.ema.parameters()]
    for step, seed in ((1, 1), (2, 2), (3, 3)):
        method.observe(batch(seed))
        decay = {1: 0.5, 2: 0.6, 3: 0.6}[step]  # min(1 - 1/(step + 1), 0.6)
        pairs = zip(ema, method.net.parameters(), strict=True)
        ema = [decay * e + (1 - decay) * w.detach() for e, w in pairs]
        for expected, actual in zip(ema, method.ema.parameters(), strict=True):
            assert torch.allclose(actual, expected, atol=1e-6)
    frozen = build(ema_update_freq=0.0)
    before = [p.detach().clone() for p in frozen.ema.parameters()]
    frozen.train()
    frozen.observe(batch(1))
    assert all(torch.equal(a, b) for a, b in zip(before, frozen.ema.parameters(), strict=True))


def test_predictions_and_features_come_from_the_long_term_memory():
    method = build()
    with torch.no_grad():
        for p in method.ema.parameters():
            p.mul_(-3.0)
    x = batch(5).x
    method.eval()
    with torch.no_grad():
        assert torch.equal(method.predict(x), method.ema(x))
        assert not torch.allclose(method.predict(x), method.net(x))
        assert torch.equal(method.features(x), method.ema.features(x))


@pytest.mark.parametrize(
    "field, value",
    [
        ("reg_weight", -0.1),
        ("ema_update_freq", 1.5),
        ("ema_alpha", -0.5),
        ("dropout_alpha", 100.0),
        ("classwise_dropout_alpha", -1.0),
        ("dropout_warmup", -1),
        ("init_active_factor", 0.0),
    ],
)
def test_bad_settings_raise_config_errors(field: str, value: float):
    with pytest.raises(ConfigError, match=f"method.{field}"):
        METHODS.get("scommer").make_config({field: value})


@pytest.mark.parametrize("layers", [(2,), (-3,), (0, -2)])
def test_dropout_layers_must_name_distinct_existing_layers(layers: tuple[int, ...]):
    with pytest.raises(ConfigError, match=r"method\.dropout_layers"):
        build(dropout_layers=layers)
