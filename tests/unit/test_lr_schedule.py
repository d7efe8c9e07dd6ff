"""``train.lr_milestones``: mammoth's multistep decay over each experience's epochs."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
import torch

from lifelong.config.training import TrainConfig
from lifelong.errors import ConfigError
from lifelong.methods.base import Method
from lifelong.running.lr_schedule import set_epoch_learning_rate


def _method(*rates: float) -> Any:
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in rates]
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, rates, strict=True)]
    return SimpleNamespace(optimizer=torch.optim.SGD(groups, lr=rates[0]))


def test_each_group_decays_at_the_milestones_and_restarts_each_experience() -> None:
    method = _method(0.1, 0.01)
    seen = []
    for epoch in [0, 1, 2, 3, 4, 5, 0, 1]:  # six epochs, then a new experience
        set_epoch_learning_rate(cast(Method, method), epoch, (2, 4), 0.1)
        seen.append([g["lr"] for g in method.optimizer.param_groups])
    expected = [0.1, 0.1, 0.01, 0.01, 0.001, 0.001, 0.1, 0.1]  # by hand: 0.1 · 0.1^#(m ≤ e)
    assert [row[0] for row in seen] == pytest.approx(expected)
    assert [row[1] for row in seen] == pytest.approx([lr / 10 for lr in expected])


def test_the_initial_rate_survives_a_checkpoint_of_the_optimiser() -> None:
    method = _method(0.2)
    set_epoch_learning_rate(cast(Method, method), 3, (1,), 0.5)
    state = method.optimizer.state_dict()
    restored = _method(0.2)
    restored.optimizer.load_state_dict(state)
    assert restored.optimizer.param_groups[0]["lr"] == pytest.approx(0.1)
    set_epoch_learning_rate(cast(Method, restored), 0, (1,), 0.5)
    assert restored.optimizer.param_groups[0]["lr"] == pytest.approx(0.2)


def test_a_method_without_an_optimiser_is_left_alone() -> None:
    method = SimpleNamespace(optimizer=None)
    set_epoch_learning_rate(cast(Method, method), 1, (1,), 0.1)
    assert vars(method) == {"optimizer": None}


@pytest.mark.parametrize(
    "fields",
    [
        {"lr_milestones": (3, 2)},
        {"lr_milestones": (2, 2)},
        {"lr_milestones": (0,)},
        {"lr_milestones": (1.5,)},
        {"lr_gamma": 0.0},
        {"lr_gamma": 1.5},
    ],
)
def test_bad_schedules_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"train\.lr_"):
        TrainConfig(**fields)


def test_a_method_with_its_own_schedule_refuses_the_loops() -> None:
    from lifelong.config import layered_config

    def resolve(method: str, *overrides: tuple[str, object]) -> object:
        request = {"method": method, "dataset": "seq-digits"}
        return layered_config(request, preset="none", overrides=list(overrides)).config

    milestones = ("train.lr_milestones", [2])
    with pytest.raises(ConfigError, match=r"method\.lr_steps=\[70, 90\] both decay sarl's"):
        resolve("sarl", milestones)
    with pytest.raises(ConfigError, match="GDumb's SGDR"):
        resolve("gdumb", milestones)
    # SARL without its own decay, and a method without one, take the loop's schedule
    assert resolve("sarl", milestones, ("method.lr_steps", [])).train.lr_milestones == (2,)
    assert resolve("er", milestones).train.lr_milestones == (2,)
