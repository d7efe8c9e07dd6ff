"""Mechanisms of the SARL_Optim variants: each test fails when its mechanism is inert."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import lifelong.components  # noqa: F401
from lifelong.backbones import BACKBONES
from lifelong.backbones.mlp import MLPConfig
from lifelong.cli import build_parser, config_from_args
from lifelong.data.catalog import GREY
from lifelong.data.stream import Experience, Stream
from lifelong.data.tensors import ImageSet
from lifelong.evaluation.evaluator import Evaluator
from lifelong.methods.base import MethodContext
from lifelong.methods.sarl_enhanced import SARLEnhanced, SARLEnhancedConfig
from lifelong.nn.k_winners import KWinners
from lifelong.nn.semantic_similarity import similarity_targets
from lifelong.run_logger import RunLogger
from lifelong.seed import seed_everything
from lifelong.train import TrainConfig, fit


def _stream(classes_per_experience: int = 2, experiences: int = 3) -> Stream:
    generator = torch.Generator().manual_seed(0)
    parts = []
    for t in range(experiences):
        classes = tuple(range(t * classes_per_experience, (t + 1) * classes_per_experience))
        y = torch.tensor(classes).repeat_interleave(20)
        x = torch.randint(0, 256, (len(y), 1, 8, 8), generator=generator, dtype=torch.uint8)
        for c in classes:  # a bright stripe per class makes the classes separable
            x[y == c, :, c % 8] = 255
        parts.append(Experience(t, classes, ImageSet(x, y), ImageSet(x[:10], y[:10])))
    total = classes_per_experience * experiences
    return Stream("synthetic", tuple(parts), total, "class-il", GREY, tuple(map(str, range(total))))


def _enhanced(stream: Stream, **overrides: object) -> SARLEnhanced:
    generator = seed_everything(0)
    net = BACKBONES.get("gelu_mlp").build(
        MLPConfig(hidden=(16,)), stream.image_shape, stream.num_classes
    )
    cpu = torch.device("cpu")
    ctx = MethodContext(
        net, stream.num_classes, stream.image_shape, stream.transform, cpu, generator
    )
    settings = {"lr": 0.05, "buffer_size": 40, "minibatch_size": 8, "warmup_epochs": 0}
    return SARLEnhanced(SARLEnhancedConfig(**{**settings, **overrides}), ctx)  # type: ignore[arg-type]


class Recorder(RunLogger):
    """Keeps every step's similarity-net loss."""

    def __init__(self) -> None:
        super().__init__(None, 1000)
        self.similarity_losses: list[float] = []

    def step(self, out, experience: int, epoch: int) -> None:  # type: ignore[no-untyped-def]
        if "similarity_bce" in out.terms:
            self.similarity_losses.append(float(out.terms["similarity_bce"]))
        super().step(out, experience, epoch)


def _train(method: SARLEnhanced, stream: Stream) -> Recorder:
    recorder = Recorder()
    evaluator = Evaluator(stream, 100, torch.device("cpu"))
    train = TrainConfig(epochs=3, batch_size=10, progress=False)
    fit(method, stream, train, evaluator, recorder, method.ctx.generator)
    return recorder


@pytest.mark.filterwarnings(r"ignore:Detected call of `lr_scheduler.step\(\)`")
def test_similarity_net_trains_and_its_loss_falls() -> None:
    stream = _stream()
    method = _enhanced(stream, sim_lr=0.01)
    before = copy.deepcopy(method.similarity.state_dict())
    recorder = _train(method, stream)
    losses = recorder.similarity_losses
    # updates in experiences 2 and 3 after the warm-up epoch: 2 epochs x 4 steps each
    assert len(losses) == 16
    moved = [not torch.equal(before[k], v) for k, v in method.similarity.state_dict().items()]
    assert all(moved)
    # the loss within experience 2 falls (same targets, Adam steps on them)
    assert losses[7] < losses[0]


@pytest.mark.filterwarnings(r"ignore:Detected call of `lr_scheduler.step\(\)`")
def test_similarity_net_with_zero_learning_rate_does_not_move() -> None:
    """The control for the test above: the same run with ``sim_lr = 0`` leaves ``S`` as built."""
    stream = _stream()
    method = _enhanced(stream, sim_lr=0.0)
    before = copy.deepcopy(method.similarity.state_dict())
    _train(method, stream)
    for key, value in method.similarity.state_dict().items():
        assert torch.equal(before[key], value)


def test_similarity_targets_follow_the_cosine_threshold() -> None:
    prototypes = torch.tensor([[1.0, 0.0], [0.9, 0.1], [-1.0, 0.0]])
    targets = similarity_targets(prototypes, 0.8)
    assert targets.tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]


@pytest.mark.filterwarnings(r"ignore:Detected call of `lr_scheduler.step\(\)`")
def test_soft_weights_come_from_the_similarity_net() -> None:
    stream = _stream()
    method = _enhanced(stream)
    method.after_experience(stream[0])
    method.before_experience(stream[1])
    assert not method.semantic_weights().any()  # no anchors before the warm-up pass
    method.after_epoch(stream[1], 0)
    assert method.anchors == [2, 3]
    weights = method.semantic_weights()
    method.similarity.train(False)
    with torch.no_grad():
        expected = method.similarity(method.running[2:3], method.prototypes[0:1])
    assert weights[2, 0].item() == pytest.approx(expected.item())
    # soft: strictly between 0 and 1 for every candidate pair, zero on the diagonal
    assert torch.all((weights[2:4, :4] > 0) | torch.eye(4, dtype=torch.bool)[2:4])
    assert torch.all(weights[2:4, :4] < 1)
    assert weights[2, 2] == 0 and weights[3, 3] == 0
    assert not weights[:2].any() and not weights[:, 4:].any()
    # retraining S changes the weights: the loss sees the learned similarity, not a constant
    with torch.no_grad():
        for parameter in method.similarity.parameters():
            parameter.add_(0.5)
    assert not torch.allclose(method.semantic_weights(), weights)


def _config(*argv: str):  # type: ignore[no-untyped-def]
    return config_from_args(build_parser().parse_args(["run", *argv]))


@pytest.mark.parametrize(
    ("method", "backbone", "module"),
    [
        ("sarl", "sparse_mlp", KWinners),
        ("sarl_enhanced", "sparse_mlp", KWinners),
        ("sarl_enhanced_gelu", "gelu_mlp", nn.GELU),
    ],
)
def test_each_variant_gets_its_backbone_kind(method: str, backbone: str, module: type) -> None:
    cfg = _config("--method", method, "--dataset", "seq-digits", "--buffer-size", "50")
    assert cfg.backbone_name == backbone
    net = BACKBONES.get(backbone).build(cfg.backbone, (1, 8, 8), 10)
    assert any(isinstance(m, module) for m in net.modules())
    assert not any(isinstance(m, nn.ReLU) for m in net.modules())


def test_gelu_variant_uses_the_tanh_approximation_and_keeps_an_explicit_backbone() -> None:
    net = BACKBONES.get("gelu_mlp").build(MLPConfig(hidden=(8,)), (1, 4, 4), 3)
    gelus = [m for m in net.modules() if isinstance(m, nn.GELU)]
    assert gelus and all(m.approximate == "tanh" for m in gelus)
    cfg = _config("--method", "sarl_enhanced_gelu", "--dataset", "seq-digits", "--backbone", "mlp")
    assert cfg.backbone_name == "mlp"  # a named backbone wins over the variant's default
