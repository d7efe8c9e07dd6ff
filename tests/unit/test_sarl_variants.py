"""Mechanisms of the SARL_Optim variants: each test fails when its mechanism is inert."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import lifelong.components  # noqa: F401
from lifelong.backbones import BACKBONES
from lifelong.backbones.mlp import MLPConfig
from lifelong.buffers.tensor_buffer import TensorBuffer
from lifelong.cli import build_parser, config_from_args
from lifelong.config.training import TrainConfig
from lifelong.data.catalog import GREY
from lifelong.data.stream import Experience, Stream
from lifelong.data.tensors import ImageSet
from lifelong.evaluation.evaluator import Evaluator
from lifelong.methods.base import METHODS, MethodContext
from lifelong.methods.sarl import SARL
from lifelong.nn.k_winners import KWinners
from lifelong.nn.semantic_similarity import similarity_targets
from lifelong.reporting.run_logger import RunLogger
from lifelong.running.seed import seed_everything
from lifelong.running.train import fit, training_inputs
from lifelong.types import Batch


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


def _context(stream: Stream) -> MethodContext:
    """A GELU MLP with 16 hidden units on ``stream``, seeded."""
    generator = seed_everything(0)
    net = BACKBONES.get("gelu_mlp").build(
        MLPConfig(hidden=(16,)), stream.image_shape, stream.num_classes
    )
    cpu = torch.device("cpu")
    return MethodContext(
        net, stream.num_classes, stream.image_shape, stream.transform, cpu, generator
    )


def _enhanced(stream: Stream, **overrides: object) -> SARL:
    settings = {"lr": 0.05, "buffer_size": 40, "minibatch_size": 8, "warmup_epochs": 0}
    config = METHODS.get("sarl_enhanced").make_config({**settings, **overrides})
    return SARL(config, _context(stream))


class Recorder(RunLogger):
    """Keeps every step's similarity-net loss."""

    def __init__(self) -> None:
        super().__init__(None, 1000)
        self.similarity_losses: list[float] = []

    def step(self, out, experience: int, epoch: int, lr=None) -> None:  # type: ignore[no-untyped-def]
        if "similarity_bce" in out.terms:
            self.similarity_losses.append(float(out.terms["similarity_bce"]))
        super().step(out, experience, epoch, lr)


def _train(method: SARL, stream: Stream) -> Recorder:
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


# ---------------------------------------------------------------------------------------------
# sarl_enhanced_gelu_balanced: importance-weighted replay


def _balanced(stream: Stream, **overrides: object) -> SARL:
    settings = {"lr": 0.05, "buffer_size": 30, "minibatch_size": 1, "warmup_epochs": 0}
    config = METHODS.get("sarl_enhanced_gelu_balanced").make_config({**settings, **overrides})
    return SARL(config, _context(stream))


def test_weighted_sampling_follows_the_weights() -> None:
    buffer = TensorBuffer(5, {"y": ((), torch.int64)}, torch.Generator().manual_seed(0))
    buffer.add({"y": torch.arange(5)})
    weights = torch.tensor([1.0, 2.0, 3.0, 4.0, 0.0])
    draws = torch.cat([buffer.sample_weighted(weights, 1)["y"] for _ in range(10000)])
    counts = torch.bincount(draws, minlength=5).double()
    expected = 10000 * weights.double() / weights.sum()
    assert counts[4] == 0  # zero weight: never drawn
    # Pearson statistic over 4 cells (3 d.o.f.): 99.99th percentile is 21.1
    assert float(((counts[:4] - expected[:4]) ** 2 / expected[:4]).sum()) < 21.1
    several = buffer.sample_weighted(weights, 10)["y"].tolist()
    assert sorted(several) == [0, 1, 2, 3]  # without replacement, only positive weights


@pytest.mark.filterwarnings(r"ignore:Detected call of `lr_scheduler.step\(\)`")
def test_balanced_replay_follows_the_importance_weights() -> None:
    stream = _stream()
    method = _balanced(stream)
    for batch in _batches(stream[0]):
        method.observe(batch)
    method.after_experience(stream[0])
    last = method.similarity.layers[-1]
    assert isinstance(last, nn.Linear)
    with torch.no_grad():  # an S with a spread of scores (an untrained one says ~0.5 for all)
        last.weight.mul_(50)
    importance = method.importance()
    probabilities = (importance / importance.sum()).double()
    # the weights are far from uniform, so a uniform sampler fails the check below
    assert float(probabilities.max() / probabilities.min()) > 1.5
    stored = method.buffer.field("logits")[: len(method.buffer)]
    draws = torch.cat([method.replay_sample()["logits"] for _ in range(6000)])
    slots = torch.cdist(draws, stored).argmin(dim=1)  # stored logits identify the slot
    counts = torch.bincount(slots, minlength=len(stored)).double()

    def pearson(p: torch.Tensor) -> float:
        expected = len(draws) * p
        return float(((counts - expected) ** 2 / expected).sum())

    # 29 degrees of freedom: the 99.99th percentile of chi-square is about 63
    assert pearson(probabilities) < 63
    assert pearson(torch.full_like(probabilities, 1 / len(stored))) > 63


def test_importance_by_hand() -> None:
    stream = _stream()
    method = _balanced(stream, adaptive_temp=0.25, balance_alpha=1.0)
    for batch in _batches(stream[0])[:1]:
        method.observe(batch)
    # no prototypes yet: every score is 0.5, membership 0.5, balance 2/(n/2) = 4/n
    n = len(method.buffer)
    expected = torch.full((n,), (4 / n) / (0.5 + 1e-6))
    assert torch.allclose(method.importance(), expected)


def test_stored_features_follow_the_reservoir_slots() -> None:
    stream = _stream()
    method = _balanced(stream)
    batch = _batches(stream[0])[0]
    net = copy.deepcopy(method.net)
    method.observe(batch)
    with torch.no_grad():
        expected = torch.nn.functional.normalize(net.features(batch.x), dim=1)
    assert torch.allclose(method.buffer.field("feature")[: len(batch.y)], expected, atol=1e-6)


def _batches(experience: Experience) -> list[Batch]:
    data = experience.train
    generator = torch.Generator().manual_seed(0)
    out = []
    for i in range(0, len(data), 10):
        x, x_clean = training_inputs(data.x[i : i + 10], GREY, generator)
        out.append(Batch(x, data.y[i : i + 10], x_clean, 0))
    return out


@pytest.mark.parametrize("min_score", [0.0, 0.3])
def test_importance_clamps_low_scores_at_min_score(min_score: float) -> None:
    stream = _stream()
    method = _balanced(stream, min_score=min_score)
    for batch in _batches(stream[0]):
        method.observe(batch)
    method.after_experience(stream[0])
    last = method.similarity.layers[-1]
    assert isinstance(last, nn.Linear)
    method.similarity.train(False)
    with torch.no_grad():  # spread and lower the scores so that some fall below 0.3
        last.weight.mul_(50)
        last.bias.sub_(1.5)
        size = len(method.buffer)
        labels = method.buffer.field("y")[:size]
        scores = method.similarity(method.buffer.field("feature")[:size], method.prototypes[labels])
    assert float(scores.min()) < 0.3 < float(scores.max())
    membership = torch.sigmoid((scores - scores.mean()) / method.cfg.adaptive_temp)
    balance = membership * (2 / membership.sum()) + (1 - membership) * (2 / (1 - membership).sum())
    expected = balance / (scores.clamp(min=min_score) + 1e-6)
    assert torch.allclose(method.importance(), expected, rtol=1e-5)
