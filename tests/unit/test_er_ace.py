"""ER-ACE's mask and loss by hand, and a step whose replayed examples are not masked."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

import lifelong.components  # noqa: F401  (fills the registries)
from lifelong.backbones import BACKBONES
from lifelong.backbones.mlp import MLPConfig
from lifelong.data.transforms import ImageTransform
from lifelong.errors import ConfigError
from lifelong.methods.base import METHODS, MethodContext
from lifelong.methods.er_ace import ERACE, asymmetric_cross_entropy, incoming_class_mask
from lifelong.types import Batch

K = 5


def test_mask_keeps_the_batch_classes_and_optionally_the_unseen_ones() -> None:
    seen = torch.tensor([True, True, True, True, False])  # 0, 1 seen earlier; 2, 3 now
    labels = torch.tensor([2, 3, 3])
    keep = incoming_class_mask(labels, seen, mask_unseen=True)
    assert keep.tolist() == [False, False, True, True, False]  # 0, 1 (old) and 4 masked
    keep = incoming_class_mask(labels, seen, mask_unseen=False)
    assert keep.tolist() == [False, False, True, True, True]  # class 4 not seen yet: kept


def test_asymmetric_cross_entropy_of_a_two_example_batch_by_hand() -> None:
    logits = torch.tensor([[1.0, 2.0, 0.5, -1.0, 3.0], [0.0, 1.0, 2.0, 0.5, 1.0]])
    logits.requires_grad_(True)
    labels = torch.tensor([2, 3])
    keep = torch.tensor([False, False, True, True, False])
    # softmax over classes {2, 3} only: example 0 is class 2 (0.5 vs -1), example 1 class 3
    first = -math.log(math.exp(0.5) / (math.exp(0.5) + math.exp(-1.0)))
    second = -math.log(math.exp(0.5) / (math.exp(2.0) + math.exp(0.5)))
    loss = asymmetric_cross_entropy(logits, labels, keep)
    assert math.isclose(float(loss.detach()), (first + second) / 2, rel_tol=1e-6)
    # the full softmax would give another value; masked logits get no gradient
    full = F.cross_entropy(logits.detach(), labels)
    assert not math.isclose(float(full), float(loss.detach()), rel_tol=1e-3)
    loss.backward()
    assert logits.grad is not None
    assert (logits.grad[:, ~keep] == 0).all()
    assert (logits.grad[:, keep] != 0).all()


def make_er_ace(buffer_size: int, **fields: object) -> ERACE:
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    backbone = BACKBONES.get("mlp").build(MLPConfig(hidden=(8,)), (1, 2, 2), K)
    ctx = MethodContext(
        backbone, K, (1, 2, 2), ImageTransform((0.0,), (1.0,)), torch.device("cpu"), generator
    )
    entry = METHODS.get("er_ace")
    config = {"buffer_size": buffer_size, "minibatch_size": buffer_size, "lr": 0.1, **fields}
    method = entry.build(entry.make_config(config), ctx)
    assert isinstance(method, ERACE)
    return method


def batch(labels: list[int], experience: int, seed: int) -> Batch:
    x = torch.randn(len(labels), 1, 2, 2, generator=torch.Generator().manual_seed(seed))
    return Batch(x, torch.tensor(labels), x, experience)


def test_a_step_masks_the_incoming_batch_but_not_the_replayed_examples() -> None:
    method = make_er_ace(buffer_size=4)
    first = batch([0, 1, 0, 1], 0, seed=1)
    method.observe(first)  # empty buffer: no replay; the batch fills the buffer
    assert sorted(method.buffer.field("y").tolist()) == [0, 0, 1, 1]
    before = copy.deepcopy(method.net)
    second = batch([2, 3, 3], 1, seed=2)
    out = method.observe(second)
    # by hand with the network before the step: softmax over {2, 3} on the incoming batch,
    # over all five units on the whole buffer (minibatch_size = capacity: every example)
    with torch.no_grad():
        logits = before(second.x)
        lse = torch.logsumexp(logits[:, [2, 3]], dim=1)
        ace = (lse - logits[torch.arange(3), second.y]).mean()
        replay = F.cross_entropy(before(first.x), first.y)
        masked_replay = asymmetric_cross_entropy(
            before(first.x), first.y, torch.tensor([False, True, True, True, False])
        )
    assert math.isclose(float(out.terms["ace"]), float(ace), rel_tol=1e-5)
    assert math.isclose(float(out.terms["replay_ce"]), float(replay), rel_tol=1e-5)
    assert not math.isclose(float(out.terms["replay_ce"]), float(masked_replay), rel_tol=1e-3)
    assert math.isclose(float(out.loss), float(ace + replay), rel_tol=1e-5)
    assert method.seen_classes.tolist() == [True, True, True, True, False]


def test_the_first_batch_is_masked_to_its_own_classes_too() -> None:
    method = make_er_ace(buffer_size=4, mask_unseen=False)
    first = batch([1, 1], 0, seed=3)
    with torch.no_grad():
        logits = method.net(first.x)
    out = method.observe(first)
    # class 1 is the only seen class; unseen 0, 2, 3, 4 are kept when mask_unseen is false
    assert math.isclose(float(out.loss), float(F.cross_entropy(logits, first.y)), rel_tol=1e-5)
    assert "replay_ce" not in out.terms


@pytest.mark.parametrize(
    ("field", "value"),
    [("mask_unseen", "yes"), ("buffer_size", 0), ("minibatch_size", 0), ("lr", 0.0)],
)
def test_bad_settings_are_config_errors(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        METHODS.get("er_ace").make_config({field: value})


def test_settings_exclude_domain_il() -> None:
    assert METHODS.get("er_ace").supported_settings == frozenset({"class-il", "gcil", "general"})
