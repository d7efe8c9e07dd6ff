"""Synaptic Intelligence: the component's updates by hand, its state, and the ``si`` method."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

import lifelong.components  # noqa: F401  (fills the registries)
from lifelong.backbones import BACKBONES
from lifelong.backbones.mlp import MLPConfig
from lifelong.cli import main
from lifelong.data.catalog import GREY
from lifelong.data.stream import Experience, Stream
from lifelong.data.tensors import ImageSet
from lifelong.errors import ConfigError
from lifelong.methods.base import METHODS, MethodContext
from lifelong.methods.si import SI, SIConfig
from lifelong.nn.synaptic_intelligence import SynapticIntelligence
from lifelong.running.seed import seed_everything
from lifelong.running.train import batches

CPU = torch.device("cpu")
FAST = ("--no-progress", "--no-tensorboard")
STATES = ("anchor", "path_integral", "omega", "previous")


def _state(si: SynapticIntelligence, kind: str, name: str) -> torch.Tensor:
    return si.get_buffer(f"{kind}.{name}")


# ---------------------------------------------------------------- the component by hand


def test_path_integral_importance_and_penalty_match_a_hand_computation() -> None:
    """Two SGD steps (lr 0.1) on L = a·θ with known gradients, then ω and the penalty by hand."""
    theta = nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    unused = nn.Parameter(torch.tensor([3.0], dtype=torch.float64))  # never gets a gradient
    si = SynapticIntelligence([("theta", theta), ("unused", unused)], epsilon=0.1)
    optimizer = torch.optim.SGD([theta, unused], lr=0.1)
    si.begin_experience()
    gradients = (torch.tensor([0.5, 1.0]), torch.tensor([-1.0, 2.0]))
    for g in gradients:
        optimizer.zero_grad(set_to_none=True)
        (g.double() * theta).sum().backward()
        optimizer.step()
        with torch.no_grad():
            unused.add_(1.0)  # moves without a gradient: adds nothing to W
        si.after_step()
    # θ: [1, -2] → [0.95, -2.1] → [1.05, -2.3]; W = Σ −g ⊙ (−0.1 g) = 0.1 Σ g²
    expected_theta = torch.tensor([1.05, -2.3], dtype=torch.float64)
    torch.testing.assert_close(theta.detach(), expected_theta)
    expected_w = torch.tensor([0.1 * (0.25 + 1.0), 0.1 * (1.0 + 4.0)], dtype=torch.float64)
    torch.testing.assert_close(_state(si, "path_integral", "theta"), expected_w)
    torch.testing.assert_close(_state(si, "previous", "theta"), expected_theta)
    assert _state(si, "path_integral", "unused").item() == 0.0
    assert _state(si, "previous", "unused").item() == 5.0  # θ_old follows even without a grad

    si.end_experience()
    delta = expected_theta - torch.tensor([1.0, -2.0], dtype=torch.float64)  # [0.05, -0.3]
    omega = expected_w / (delta**2 + 0.1)  # [0.125 / 0.1025, 0.5 / 0.19]
    torch.testing.assert_close(_state(si, "omega", "theta"), omega)
    torch.testing.assert_close(
        omega, torch.tensor([0.125 / 0.1025, 0.5 / 0.19], dtype=torch.float64)
    )
    torch.testing.assert_close(_state(si, "anchor", "theta"), expected_theta)
    assert _state(si, "omega", "unused").item() == 0.0
    assert si.penalty().item() == 0.0  # at the new anchor

    with torch.no_grad():
        theta.add_(torch.tensor([0.2, -0.1], dtype=torch.float64))
    expected_penalty = omega[0] * 0.2**2 + omega[1] * 0.1**2  # no ½
    torch.testing.assert_close(si.penalty(), expected_penalty)

    # the next experience restarts W and θ_old, and ω accumulates (+=) at its end
    si.begin_experience()
    assert not _state(si, "path_integral", "theta").any()
    torch.testing.assert_close(_state(si, "previous", "theta"), theta.detach())
    si.end_experience()  # W = 0: ω unchanged, anchor moves
    torch.testing.assert_close(_state(si, "omega", "theta"), omega)
    torch.testing.assert_close(_state(si, "anchor", "theta"), theta.detach())


def test_penalty_gradient_is_two_omega_times_the_drift() -> None:
    generator = torch.Generator().manual_seed(0)
    layer = nn.Linear(3, 2)
    si = SynapticIntelligence(list(layer.named_parameters()))
    for name, param in layer.named_parameters():  # ω of both signs; θ away from θ*
        _state(si, "omega", name).copy_(torch.randn(param.shape, generator=generator))
        _state(si, "anchor", name).add_(torch.randn(param.shape, generator=generator))
    si.penalty().backward()
    for name, param in layer.named_parameters():
        omega, anchor = _state(si, "omega", name), _state(si, "anchor", name)
        assert param.grad is not None
        torch.testing.assert_close(param.grad, 2 * omega * (param.detach() - anchor))
    # the state is not trainable: only the network's parameters received gradients
    assert list(si.parameters()) == []


def test_state_dict_round_trip_restores_every_buffer_exactly() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(4, 3)
    si = SynapticIntelligence(list(layer.named_parameters()))
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.05)
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    for experience in range(2):
        si.begin_experience()
        for _ in range(3):
            optimizer.zero_grad(set_to_none=True)
            (F.cross_entropy(layer(x + experience), y) + si.penalty()).backward()
            optimizer.step()
            si.after_step()
        if experience == 0:
            si.end_experience()  # the second experience stays open: W is non-zero
    state = si.state_dict()
    assert set(state) == {f"{kind}.{name}" for kind in STATES for name in ("weight", "bias")}
    blob = io.BytesIO()
    torch.save(state, blob)
    blob.seek(0)
    loaded = torch.load(blob, weights_only=True)

    other = SynapticIntelligence(list(nn.Linear(4, 3).named_parameters()))
    before = {k: v.clone() for k, v in other.state_dict().items()}
    other.load_state_dict(loaded)
    for key, value in state.items():
        assert torch.equal(other.state_dict()[key], value), key
        assert value.any(), f"{key} is all zero: the round trip would prove nothing"
        assert not torch.equal(before[key], value), key


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="epsilon"):
        SynapticIntelligence([], epsilon=0.0)
    with pytest.raises(ValueError, match="unique"):
        SynapticIntelligence(
            [("a.b", nn.Parameter(torch.ones(1))), ("a__b", nn.Parameter(torch.ones(1)))]
        )
    assert SynapticIntelligence([]).penalty().item() == 0.0
    for field, value in (("c", -1.0), ("epsilon", 0.0), ("optimizer", "rmsprop")):
        with pytest.raises(ConfigError, match=f"method.{field}"):
            SIConfig(**{field: value})  # type: ignore[arg-type]


# ---------------------------------------------------------------- the si method


def _stream() -> Stream:
    """2 experiences x 2 classes of 1x8x8 noise, each class marked by its own bright column."""
    generator = torch.Generator().manual_seed(0)
    parts = []
    for t in range(2):
        classes = (2 * t, 2 * t + 1)
        y = torch.tensor(classes).repeat_interleave(32)
        x = torch.randint(0, 128, (len(y), 1, 8, 8), generator=generator, dtype=torch.uint8)
        for c in classes:
            x[y == c, :, :, c] = 255
        parts.append(Experience(t, classes, ImageSet(x, y), ImageSet(x, y)))
    return Stream("synthetic", tuple(parts), 4, "class-il", GREY, ("0", "1", "2", "3"))


def _method(stream: Stream, c: float) -> SI:
    generator = seed_everything(0)
    net = BACKBONES.get("mlp").build(MLPConfig((32,)), stream.image_shape, stream.num_classes)
    ctx = MethodContext(
        net, stream.num_classes, stream.image_shape, stream.transform, CPU, generator
    )
    method = METHODS.get("si").method_class(SIConfig(lr=0.01, c=c, optimizer="adam"), ctx)
    assert isinstance(method, SI)
    return method


def _train(method: SI, stream: Stream, t: int, steps: int) -> list[dict[str, float]]:
    method.train()
    method.before_experience(stream[t])
    logs = []
    for batch in batches(
        stream[t].train, steps, 16, 4, stream.transform, False, method.ctx.generator, CPU, t
    ):
        out = method.observe(batch)
        logs.append({k: float(v) for k, v in out.terms.items()})
    return logs


def _first_experience_loss(method: SI, stream: Stream) -> float:
    """Cross-entropy of experience 1's data over its own two output units (task-IL view)."""
    method.train(False)
    with torch.no_grad():
        x = stream.transform.normalize(stream[0].test.x)
        return float(F.cross_entropy(method.predict(x)[:, :2], stream[0].test.y))


@dataclass(frozen=True)
class Run:
    """What one run on the two-experience stream left behind."""

    first: list[dict[str, float]]
    second: list[dict[str, float]]
    omega: dict[str, torch.Tensor]
    anchor: dict[str, torch.Tensor]
    drift: float
    loss_rise: float


@pytest.fixture(scope="module")
def two_runs() -> dict[float, Run]:
    """The same seed trained on both experiences with c = 0 and c = 10."""
    stream = _stream()
    runs = {}
    for c in (0.0, 10.0):
        method = _method(stream, c)
        first = _train(method, stream, 0, steps=40)
        method.after_experience(stream[0])
        omega = {k: v.clone() for k, v in method.si.omega.state_dict().items()}
        anchor = {k: v.clone() for k, v in method.si.anchor.state_dict().items()}
        loss_after_first = _first_experience_loss(method, stream)
        second = _train(method, stream, 1, steps=40)
        drift = float(method.si.penalty().detach())  # Σ ω (θ − θ*)² before the anchor moves
        method.after_experience(stream[1])
        loss_rise = _first_experience_loss(method, stream) - loss_after_first
        runs[c] = Run(first, second, omega, anchor, drift, loss_rise)
    return runs


def test_si_penalty_keeps_important_parameters_near_the_first_experience(
    two_runs: dict[float, Run],
) -> None:
    free, held = two_runs[0.0], two_runs[10.0]
    # experience 1 is identical for both (ω = 0 until its end), so ω and θ* are the same
    for key, value in free.omega.items():
        assert torch.equal(value, held.omega[key])
        assert torch.equal(free.anchor[key], held.anchor[key])
    assert sum(float(v.sum()) for v in free.omega.values()) > 0
    # importance-weighted drift from θ* and the first experience's loss rise are both smaller
    assert held.drift < 0.5 * free.drift
    assert held.loss_rise < free.loss_rise


def test_si_logs_ce_and_a_penalty_that_acts_only_after_the_first_experience(
    two_runs: dict[float, Run],
) -> None:
    run = two_runs[10.0]
    assert all(set(log) == {"ce", "si"} for log in [*run.first, *run.second])
    assert all(log["si"] == 0.0 for log in run.first)
    assert run.second[0]["si"] == 0.0  # θ = θ* at the first step
    assert max(log["si"] for log in run.second) > 0.0


def test_method_state_dict_carries_the_si_buffers() -> None:
    stream = _stream()
    method = _method(stream, 1.0)
    keys = set(method.state_dict())
    for kind in STATES:
        assert f"si.{kind}.body__1__weight" in keys
        assert f"si.{kind}.head__bias" in keys
    assert isinstance(method.optimizer, torch.optim.Adam)  # asked for by _method
    assert method.optimizer.defaults["betas"] == (0.9, 0.999)
    assert method.optimizer.defaults["lr"] == 0.01
    sgd = SI(SIConfig(momentum=0.5), _method(stream, 1.0).ctx)  # the default optimiser
    assert isinstance(sgd.optimizer, torch.optim.SGD)
    assert sgd.optimizer.defaults["momentum"] == 0.5


def test_cli_run_on_seq_digits(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    argv = ["run", *FAST, "--run-dir", str(run_dir), "--method", "si", "--dataset", "seq-digits"]
    code = main([*argv, "--iters", "20", "--set", "c=0.5", "--set", "train.log_every=1"])
    assert code == 0
    results = json.loads((run_dir / "results.json").read_text())
    assert results["completed"] and results["num_experiences"] == 5
    assert "name: si" in (run_dir / "config.yaml").read_text()
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["kind"] == "step"]
    assert len(steps) == 5 * 20
    assert all(r["si"] == 0.0 for r in steps if r["experience"] == 0)
    assert any(r["si"] > 0.0 for r in steps if r["experience"] > 0)
