"""MER's Reptile meta-updates against the hand formula on a one-parameter model."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from tests.contract.test_methods import build_method, fixed_batch, make_stream

from lifelong.errors import ConfigError
from lifelong.methods.mer import MERConfig, interpolate_, reptile_update


def test_interpolate_moves_a_fraction_of_the_way():
    theta = [torch.tensor([3.0, -1.0])]
    interpolate_(theta, [torch.tensor([1.0, 1.0])], 0.25)
    assert torch.allclose(theta[0], torch.tensor([1.5, 0.5]))


def test_reptile_update_matches_the_hand_formula_with_fixed_gradients():
    theta = torch.tensor([1.0])
    lr, beta, gamma = 0.1, 0.5, 0.3
    gradients = {"a": 2.0, "b": -1.0, "c": 4.0}
    steps: list[str] = []

    def sgd_step(example: str) -> torch.Tensor:
        steps.append(example)
        theta.sub_(lr * gradients[example])  # a fixed gradient per example
        return torch.tensor(gradients[example])

    batches = [["a", "b"], ["c", "a", "b"]]
    loss = reptile_update([theta], batches, sgd_step, beta, gamma)
    # batch 1: theta_W = 1.0, after steps 1.0 - 0.1 * (2 - 1) = 0.9; within: 1.0 + 0.5 (0.9 - 1.0)
    after_first = 1.0 + beta * (-lr * (2.0 - 1.0))  # 0.95
    # batch 2: steps move by -0.1 * (4 + 2 - 1) = -0.5; within: 0.95 + 0.5 * -0.5 = 0.7
    after_second = after_first + beta * (-lr * (4.0 + 2.0 - 1.0))
    # across: theta_A0 + gamma (theta - theta_A0)
    expected = 1.0 + gamma * (after_second - 1.0)
    assert math.isclose(float(theta), expected, rel_tol=1e-6)
    assert math.isclose(expected, 0.91)
    assert steps == ["a", "b", "c", "a", "b"]  # one step per example, in order
    assert math.isclose(float(loss), (2 - 1 + 4 + 2 - 1) / 5, rel_tol=1e-6)


def test_unit_rates_reduce_mer_to_sequential_sgd():
    theta = torch.tensor([0.0])

    def sgd_step(g: float) -> torch.Tensor:
        theta.sub_(g)
        return torch.tensor(g)

    reptile_update([theta], [[1.0, 2.0], [3.0]], sgd_step, 1.0, 1.0)
    assert float(theta) == -6.0


def test_config_refuses_non_positive_rates():
    with pytest.raises(ConfigError, match="beta"):
        MERConfig(beta=0.0)
    with pytest.raises(ConfigError, match="batch_num"):
        MERConfig(batch_num=0)


def test_config_refuses_an_unknown_step_unit():
    with pytest.raises(ConfigError, match="step_on"):
        MERConfig(step_on="epoch")  # type: ignore[arg-type]


@pytest.mark.parametrize("step_on", ["example", "batch"])
def test_step_on_batch_takes_one_step_on_the_whole_batch_as_the_der_code(step_on: str) -> None:
    stream = make_stream("grey")
    method = build_method("mer", stream, step_on=step_on, grad_clip_norm=0.0, momentum=0.0)
    batch = fixed_batch(stream, 0, size=6)
    reference = copy.deepcopy(method.net)
    method.observe(batch)  # the buffer is empty: the batch is the incoming examples only
    one_step = torch.optim.SGD(reference.parameters(), lr=method.cfg.lr)
    torch.nn.functional.cross_entropy(reference(batch.x), batch.y).backward()
    one_step.step()
    same = all(
        torch.allclose(a, b, atol=1e-6)
        for a, b in zip(method.net.parameters(), reference.parameters(), strict=True)
    )
    assert same == (step_on == "batch")  # six single-example steps land elsewhere
