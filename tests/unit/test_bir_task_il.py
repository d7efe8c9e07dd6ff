"""BI-R's task-IL training (bir.md §1.1, §4 step 3) and XdG task gating (Masse et al. 2018)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from lifelong.backbones.mlp import MLP, MLPConfig
from lifelong.data.stream import Experience
from lifelong.data.tensors import ImageSet
from lifelong.data.transforms import ImageTransform
from lifelong.errors import ConfigError
from lifelong.evaluation.evaluator import TaskConditioned
from lifelong.generative.task_gates import TaskGates, gated_unit_masks
from lifelong.generative.vae_classifier import VAEClassifier, VAEClassifierConfig
from lifelong.methods.base import MethodContext
from lifelong.methods.bir import BIR, BIRConfig
from lifelong.methods.bir.method import Replay
from lifelong.types import Batch

CLASSES = 6
SHAPE = (1, 8, 8)
SMALL = {"fc_units": 32, "h_dim": 32, "z_dim": 8, "batch_replay": 9, "lr": 0.01}


def build(num_experiences: int = 3, setting: Any = "class-il", **fields: Any) -> BIR:
    generator = torch.Generator().manual_seed(0)
    transform = ImageTransform((0.5,), (0.25,))
    backbone = MLP(MLPConfig((4,)), SHAPE, CLASSES)  # unused: bir builds its own network
    ctx = MethodContext(
        backbone, CLASSES, SHAPE, transform, torch.device("cpu"), generator,
        num_experiences=num_experiences, setting=setting,
    )  # fmt: skip
    return BIR(BIRConfig(**{**SMALL, **fields}), ctx)


def experience(t: int) -> Experience:
    classes = (2 * t, 2 * t + 1)
    data = ImageSet(torch.zeros((2, *SHAPE), dtype=torch.uint8), torch.tensor(classes))
    return Experience(t, classes, data, data)


def batch(t: int) -> Batch:
    y = torch.tensor([2 * t, 2 * t + 1] * 6)
    x = torch.randn((12, *SHAPE), generator=torch.Generator().manual_seed(t))
    return Batch(x, y, x, t)


def train(method: BIR, experiences: int, steps: int = 2) -> None:
    method.train()
    for t in range(experiences):
        method.before_experience(experience(t))
        for _ in range(steps):
            method.observe(batch(t))
        method.after_experience(experience(t))


Call = tuple[int, list[int], list[int], int | None]


def recorded_replays(monkeypatch: pytest.MonkeyPatch) -> list[Call]:
    """Record ``(n, sampled classes, taught classes, task)`` of every replay group from now on."""
    calls: list[Call] = []
    original = BIR.replay

    def record(
        self: BIR, n: int, previous: torch.Tensor, active: torch.Tensor, task: int | None
    ) -> Replay:
        calls.append((n, previous.nonzero().squeeze(1).tolist(), active.tolist(), task))
        return original(self, n, previous, active, task)

    monkeypatch.setattr(BIR, "replay", record)
    return calls


def test_each_task_mask_switches_off_exactly_its_share_of_units() -> None:
    masks = gated_unit_masks(4, 10, 0.3, torch.Generator().manual_seed(1))
    assert masks.shape == (4, 10)
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    assert (masks == 0).sum(dim=1).tolist() == [3, 3, 3, 3]
    assert len({tuple(row.tolist()) for row in masks}) > 1  # tasks get different subsets


def test_gate_multiplies_each_row_by_its_tasks_mask() -> None:
    gates = TaskGates([3], 2, 0.5, torch.Generator().manual_seed(0))
    gates.mask0.copy_(torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]))
    h = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    out = gates.gate(h, 0, torch.tensor([0, 1, 0]))
    assert torch.equal(out, torch.tensor([[1.0, 0.0, 3.0], [0.0, 5.0, 6.0], [7.0, 0.0, 9.0]]))
    with pytest.raises(ValueError, match="task ids"):
        gates.gate(h, 0, torch.tensor([0, 2, 0]))


def test_xdg_gates_every_hidden_layer_of_the_encoder_and_nothing_without_a_task() -> None:
    cfg = VAEClassifierConfig(fc_units=6, h_dim=5, z_dim=2, xdg_prop=0.5)
    plain_cfg = VAEClassifierConfig(fc_units=6, h_dim=5, z_dim=2)
    net = VAEClassifier(cfg, (1, 2, 2), 3, torch.Generator().manual_seed(0), n_tasks=2)
    plain = VAEClassifier(plain_cfg, (1, 2, 2), 3, torch.Generator().manual_seed(0))
    # the masks are drawn after every weight: without XdG the network is the same
    shared = plain.state_dict()
    assert all(torch.equal(net.state_dict()[k], v) for k, v in shared.items())
    assert {"task_gates.mask0", "task_gates.mask1"} <= set(net.state_dict())
    x = torch.randn(4, 1, 2, 2, generator=torch.Generator().manual_seed(3))
    task = torch.tensor([1, 0, 1, 1])
    assert net.task_gates is not None
    m0, m1 = net.task_gates.mask0[task], net.task_gates.mask1[task]
    first, second = net.body[1], net.body[3]
    hand = torch.relu(second(torch.relu(first(x.flatten(1))) * m0)) * m1
    assert torch.allclose(net.features(x, task), hand)
    assert torch.allclose(net.features(x), plain.features(x))


def test_task_il_replays_each_earlier_task_over_its_own_classes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    method = build(task_il=True, xdg_prop=0.5)
    train(method, 2)
    calls = recorded_replays(monkeypatch)
    method.before_experience(experience(2))
    out = method.observe(batch(2))
    # t = 3: ceil(9 / 2) = 5 samples of each earlier task, taught over that task's classes only
    assert calls == [(5, [0, 1], [0, 1], 0), (5, [2, 3], [2, 3], 1)]
    assert math.isfinite(float(out.loss))


def test_class_il_replays_once_over_every_previous_class(monkeypatch: pytest.MonkeyPatch) -> None:
    method = build()
    train(method, 2)
    calls = recorded_replays(monkeypatch)
    method.before_experience(experience(2))
    method.observe(batch(2))
    assert calls == [(9, [0, 1, 2, 3], [0, 1, 2, 3, 4, 5], None)]


def test_task_il_cross_entropy_leaves_other_tasks_output_units_alone() -> None:
    """At t = 1 nothing is replayed: the head rows of other tasks' classes get no gradient."""
    method = build(task_il=True)
    method.train()
    method.before_experience(experience(1))
    b = batch(1)
    b = Batch(b.x, b.y, b.x_clean, 0)  # the first experience of the stream, classes 2 and 3
    head = method.vae.head.weight
    before = head.detach().clone()
    method.observe(b)
    changed = (head.detach() - before).abs().sum(dim=1) > 0
    assert changed.tolist() == [False, False, True, True, False, False]


def test_task_il_evaluation_uses_each_experiences_gates() -> None:
    method = build(task_il=True, xdg_prop=0.5)
    train(method, 3, steps=1)
    method.eval()
    assert isinstance(method, TaskConditioned)
    x = batch(0).x
    gated = method.task_logits(x, 1)
    assert gated is not None
    task = torch.ones(len(x), dtype=torch.int64)
    assert torch.allclose(gated, method.vae.classify(x, task))
    assert not torch.allclose(gated, method.predict(x))  # the ungated class-IL logits differ
    assert build(task_il=True).task_logits(x, 1) is None  # no XdG: the evaluator masks predict


@pytest.mark.parametrize(
    ("fields", "ctx", "message"),
    [
        ({"xdg_prop": 0.5}, {}, "needs method.task_il"),
        ({"task_il": True, "xdg_prop": 1.0}, {}, "method.xdg_prop must be in"),
        ({"task_il": True, "contrastive": True}, {}, "class-IL only"),
        ({"task_il": True}, {"setting": "domain-il"}, "class-IL stream"),
        ({"task_il": True, "xdg_prop": 0.5}, {"num_experiences": 0}, "number of experiences"),
    ],
)
def test_bad_task_il_settings_are_refused(
    fields: dict[str, Any], ctx: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build(**ctx, **fields)
