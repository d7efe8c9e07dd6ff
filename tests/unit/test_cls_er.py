"""CLS-ER's parts against hand-computed values: EMA decay and update, gates, memory choice, loss."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

import lifelong.components  # noqa: F401  (fills the registries)
from lifelong.backbones import BACKBONES
from lifelong.backbones.mlp import MLPConfig
from lifelong.data.transforms import ImageTransform
from lifelong.errors import ConfigError
from lifelong.methods.base import METHODS, MethodContext
from lifelong.methods.cls_er import CLSER, consistency_loss, semantic_memory_logits
from lifelong.nn.ema import ema_decay, ema_update_, update_gate
from lifelong.types import Batch

SHAPE = (1, 3, 3)


def build(**fields: Any) -> CLSER:
    torch.manual_seed(0)
    backbone = BACKBONES.get("mlp").build(MLPConfig(hidden=(8,)), SHAPE, 4)
    ctx = MethodContext(
        backbone,
        4,
        SHAPE,
        ImageTransform((0.0,), (1.0,)),
        torch.device("cpu"),
        torch.Generator().manual_seed(0),
    )
    entry = METHODS.get("cls_er")
    method = entry.build(entry.make_config({"lr": 0.1, **fields}), ctx)
    assert isinstance(method, CLSER)
    return method


def batch(seed: int, n: int = 6) -> Batch:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *SHAPE, generator=g)  # float inputs: a stream without augmentation
    y = torch.randint(0, 4, (n,), generator=g)
    return Batch(x=x, y=y, x_clean=x, experience_id=0)


def params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def test_ema_decay_ramps_with_the_step_up_to_alpha():
    assert ema_decay(1, 0.99) == 0.5
    assert math.isclose(ema_decay(2, 0.99), 2 / 3)
    assert math.isclose(ema_decay(3, 0.99), 3 / 4)
    assert math.isclose(ema_decay(98, 0.99), 1 - 1 / 99)  # still below the ceiling
    assert ema_decay(99, 0.99) == 0.99  # 1 - 1/100 reaches it
    assert ema_decay(5000, 0.99) == 0.99


def test_ema_update_moves_each_parameter_toward_the_online_one():
    target, online = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    with torch.no_grad():
        target.weight.copy_(torch.tensor([[1.0, 2.0]]))
        target.bias.fill_(0.0)
        online.weight.copy_(torch.tensor([[3.0, 6.0]]))
        online.bias.fill_(4.0)
    ema_update_(target, online, 0.75)
    assert torch.allclose(target.weight, torch.tensor([[1.5, 3.0]]))  # .75*1 + .25*3, .75*2 + .25*6
    assert torch.allclose(target.bias, torch.tensor([1.0]))


def test_update_gate_draws_one_number_from_the_generator():
    gate = torch.Generator().manual_seed(3)
    twin = torch.Generator().manual_seed(3)
    decisions = [update_gate(0.4, gate) for _ in range(200)]
    expected = [float(torch.rand(1, generator=twin)) < 0.4 for _ in range(200)]
    assert decisions == expected
    assert 0.3 < sum(decisions) / 200 < 0.5
    assert all(update_gate(1.0, gate) for _ in range(50))
    assert not any(update_gate(0.0, gate) for _ in range(50))
    for _ in range(100):  # each gate above drew exactly one number, whatever the probability
        torch.rand(1, generator=twin)
    assert torch.equal(gate.get_state(), twin.get_state())


def test_the_memory_surer_of_the_true_label_is_chosen_per_example():
    plastic = torch.tensor([[2.0, 0.0], [0.0, 0.0], [1.0, 3.0]])
    stable = torch.tensor([[0.0, 2.0], [1.0, 0.0], [1.0, 3.0]])
    labels = torch.tensor([0, 0, 1])
    # example 0: p_P(0) = 0.88 > p_S(0) = 0.12 -> plastic; example 1: p_S(0) = 0.73 > 0.5 ->
    # stable; example 2: a tie -> plastic
    chosen = semantic_memory_logits(plastic, stable, labels)
    assert torch.equal(chosen, torch.stack([plastic[0], stable[1], plastic[2]]))
    # with the other label the choice flips for the first two
    chosen = semantic_memory_logits(plastic, stable, torch.tensor([1, 1, 1]))
    assert torch.equal(chosen[:2], stable[:1].new_tensor([[0.0, 2.0], [0.0, 0.0]]))


def test_consistency_loss_is_the_mean_squared_logit_difference_without_target_gradient():
    logits = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    target = torch.tensor([[0.0, 2.0], [3.0, 2.0]], requires_grad=True)
    loss = consistency_loss(logits, target)
    assert math.isclose(float(loss.detach()), (1 + 0 + 0 + 4) / 4)
    loss.backward()
    assert target.grad is None
    assert torch.allclose(logits.grad, torch.tensor([[0.5, 0.0], [0.0, 1.0]]))  # 2(f - z)/4


def test_a_step_minimises_joint_ce_plus_weighted_consistency_with_the_surer_memory():
    method = build(reg_weight=0.7, minibatch_size=64, buffer_size=64)
    method.train()
    method.observe(batch(1))  # fills the buffer with 6 examples; memories move
    stored = method.buffer.sample(64, ("x", "y"))  # all 6 (the mean below ignores the order)
    net, plastic, stable = (copy.deepcopy(m) for m in (method.net, method.plastic, method.stable))
    second = batch(2)
    out = method.observe(second)
    with torch.no_grad():
        x = torch.cat([second.x, stored["x"]])
        y = torch.cat([second.y, stored["y"]])
        ce = F.cross_entropy(net(x), y)
        target = semantic_memory_logits(plastic(stored["x"]), stable(stored["x"]), stored["y"])
        mse = F.mse_loss(net(stored["x"]), target)
    assert torch.allclose(out.terms["ce"], ce)
    assert torch.allclose(out.terms["consistency"], mse)
    assert torch.allclose(out.loss, ce + 0.7 * mse)


def test_memories_follow_the_working_model_with_the_step_dependent_decay():
    method = build(
        plastic_model_update_freq=1.0,
        plastic_model_alpha=0.99,
        stable_model_update_freq=0.0,
        stable_model_alpha=0.999,
    )
    method.train()
    plastic, stable = params(method.plastic), params(method.stable)
    for step, seed in ((1, 1), (2, 2), (3, 3)):
        method.observe(batch(seed))
        decay = {1: 0.5, 2: 2 / 3, 3: 3 / 4}[step]  # min(1 - 1/(step + 1), 0.99)
        pairs = zip(plastic, params(method.net), strict=True)
        plastic = [decay * p + (1 - decay) * w for p, w in pairs]
        for expected, actual in zip(plastic, method.plastic.parameters(), strict=True):
            assert torch.allclose(actual, expected, atol=1e-6)
    assert method.global_step == 3
    for before, after in zip(stable, method.stable.parameters(), strict=True):
        assert torch.equal(before, after)  # r_S = 0: never updated


def test_predictions_and_features_come_from_the_stable_model():
    method = build()
    with torch.no_grad():
        for p in method.stable.parameters():
            p.mul_(-3.0)
    x = batch(5).x
    method.eval()
    with torch.no_grad():
        assert torch.equal(method.predict(x), method.stable(x))
        assert not torch.allclose(method.predict(x), method.net(x))
        assert torch.equal(method.features(x), method.stable.features(x))


def test_global_step_travels_with_the_state_dict():
    method = build()
    method.train()
    method.observe(batch(1))
    method.observe(batch(2))
    restored = build()
    restored.load_state_dict(method.state_dict())
    assert restored.global_step == 2


@pytest.mark.parametrize(
    "field, value",
    [
        ("reg_weight", -0.1),
        ("plastic_model_update_freq", 1.5),
        ("stable_model_update_freq", -0.2),
        ("plastic_model_alpha", 1.2),
        ("stable_model_alpha", -0.5),
    ],
)
def test_bad_settings_raise_config_errors(field: str, value: float):
    with pytest.raises(ConfigError, match=f"method.{field}"):
        METHODS.get("cls_er").make_config({field: value})
