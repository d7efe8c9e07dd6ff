"""SARL's prototype losses (hand-computed) and the mechanisms of the method."""

from __future__ import annotations

import pytest
import torch

import lifelong.components  # noqa: F401
from lifelong.backbones import BACKBONES
from lifelong.backbones.mlp import MLPConfig
from lifelong.backbones.sparse import SparseResNetConfig
from lifelong.config.training import TrainConfig
from lifelong.data.catalog import GREY
from lifelong.data.stream import Experience, Stream
from lifelong.data.tensors import ImageSet
from lifelong.evaluation.evaluator import Evaluator
from lifelong.losses.prototypes import cosine_groups, prototype_regularisation, semantic_contrast
from lifelong.methods.base import MethodContext
from lifelong.methods.sarl import SARL, SARLConfig
from lifelong.reporting.run_logger import RunLogger
from lifelong.running.seed import seed_everything
from lifelong.running.train import fit


def test_prototype_regularisation_hand_value() -> None:
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    labels = torch.tensor([0, 0, 1])
    prototypes = torch.zeros(3, 2)
    learned = torch.tensor([True, False, False])
    # class 0: mean (0.5, 0.5) vs (0, 0) -> MSE 0.25; class 1 is not learned and is ignored
    value = prototype_regularisation(features, labels, prototypes, learned)
    assert value.item() == pytest.approx(0.25)
    assert (
        prototype_regularisation(features, labels, prototypes, torch.zeros(3, dtype=torch.bool))
        == 0
    )


def test_semantic_contrast_hand_value_and_gradient() -> None:
    prototypes = torch.tensor([[0.0], [1.0], [0.0]])
    learned = torch.tensor([True, True, False])
    similar = torch.zeros(3, 3, dtype=torch.bool)
    similar[2, 0] = True
    features = torch.tensor([[0.2], [0.4]], requires_grad=True)
    labels = torch.tensor([2, 2])
    # p_2 = 0.3: P = (0.3 - 0)^2 = 0.09, N = (0.3 - 1)^2 = 0.49
    value = semantic_contrast(features, labels, prototypes, learned, similar)
    assert value.item() == pytest.approx(0.09 / 0.49)
    value.backward()
    assert features.grad is not None and torch.all(features.grad != 0)


def test_semantic_contrast_with_soft_weights_hand_value() -> None:
    prototypes = torch.tensor([[0.0], [1.0], [0.0]])
    learned = torch.tensor([True, True, False])
    weights = torch.zeros(3, 3)
    weights[2, 0], weights[2, 1] = 0.75, 0.5
    features = torch.tensor([[0.2], [0.4]], requires_grad=True)
    # d(2, 0) = 0.09, d(2, 1) = 0.49: P = 0.75 * 0.09 + 0.5 * 0.49, N = 0.25 * 0.09 + 0.5 * 0.49
    value = semantic_contrast(features, torch.tensor([2, 2]), prototypes, learned, weights)
    expected = (0.75 * 0.09 + 0.5 * 0.49) / (0.25 * 0.09 + 0.5 * 0.49)
    assert value.item() == pytest.approx(expected)


def test_semantic_contrast_is_zero_without_new_classes() -> None:
    learned = torch.ones(2, dtype=torch.bool)
    zero = semantic_contrast(
        torch.ones(2, 1), torch.tensor([0, 1]), torch.zeros(2, 1), learned, torch.ones(2, 2).bool()
    )
    assert zero.item() == 0


def test_cosine_groups_threshold() -> None:
    prototypes = torch.tensor([[1.0, 0.1], [0.0, 1.0], [0.0, 0.0]])
    learned = torch.tensor([True, True, False])
    similar = cosine_groups(torch.tensor([[1.0, 0.0]]), [2], prototypes, learned, 0.8)
    assert similar[2].tolist() == [True, False, True]
    assert not similar[:2].any()


def _stream() -> Stream:
    generator = torch.Generator().manual_seed(0)
    experiences = []
    for t in range(2):
        classes = (2 * t, 2 * t + 1)
        y = torch.tensor(classes).repeat_interleave(30)
        x = torch.randint(0, 256, (60, 1, 8, 8), generator=generator, dtype=torch.uint8)
        x[y == classes[1], :, :4] = 255  # make the classes separable
        experiences.append(Experience(t, classes, ImageSet(x, y), ImageSet(x[:20], y[:20])))
    return Stream("synthetic", tuple(experiences), 4, "class-il", GREY, ("0", "1", "2", "3"))


def _sarl(stream: Stream, backbone: str = "mlp", **overrides: object) -> SARL:
    generator = seed_everything(0)
    spec = BACKBONES.get(backbone)
    cfg = MLPConfig(hidden=(16,)) if backbone == "mlp" else SparseResNetConfig(nf=4)
    net = spec.build(cfg, stream.image_shape, stream.num_classes)
    ctx = MethodContext(
        net, 4, stream.image_shape, stream.transform, torch.device("cpu"), generator
    )
    config = SARLConfig(**{"lr": 0.05, "buffer_size": 40, "minibatch_size": 8, **overrides})
    return SARL(config, ctx)


class TermRecorder(RunLogger):
    """Keeps the names of the loss terms seen in each experience."""

    def __init__(self) -> None:
        super().__init__(None, 1000)
        self.seen: dict[int, set[str]] = {}

    def step(self, out, experience: int, epoch: int, lr=None) -> None:  # type: ignore[no-untyped-def]
        self.seen.setdefault(experience, set()).update(out.terms)
        super().step(out, experience, epoch, lr)


def test_sarl_prototypes_old_model_and_loss_schedule() -> None:
    stream = _stream()
    method = _sarl(stream, warmup_epochs=1)
    recorder = TermRecorder()
    evaluator = Evaluator(stream, 100, torch.device("cpu"))
    train = TrainConfig(epochs=3, batch_size=10, progress=False)
    fit(method, stream, train, evaluator, recorder, method.ctx.generator)
    # task 0: only CE and buffer terms; task 1: prototype term, then distillation + semantic
    assert recorder.seen[0] == {"ce", "logit_mse", "replay_ce"}
    assert {"prototype", "distill", "semantic"} <= recorder.seen[1]
    assert method.learned.tolist() == [True, True, True, True]
    # stored prototypes are means of unit vectors, so their norm is at most 1 and positive
    norms = method.prototypes.norm(dim=1)
    assert torch.all(norms > 0) and torch.all(norms <= 1 + 1e-6)
    # the old model is a frozen copy of the network taken at the last boundary
    assert all(not p.requires_grad for p in method.old_net.parameters())
    for old, new in zip(method.old_net.parameters(), method.net.parameters(), strict=True):
        assert torch.equal(old, new)


@pytest.mark.filterwarnings(r"ignore:Detected call of `lr_scheduler.step\(\)`")
def test_semantic_groups_form_after_warmup_only() -> None:
    stream = _stream()
    method = _sarl(stream, warmup_epochs=1)
    method.after_experience(stream[0])  # as if experience 0 were learned
    method.before_experience(stream[1])
    method.after_epoch(stream[1], 0)
    assert not method.grouped and not method.similar.any()
    method.after_epoch(stream[1], 1)
    assert method.grouped
    assert method.similar[2, 2] and method.similar[3, 3]  # a class is similar to itself
    assert not method.similar[:2].any()


def test_batch_norm_recalibration_changes_statistics_not_weights() -> None:
    stream = _stream()
    method = _sarl(stream, backbone="sparse_resnet18")
    for start in range(0, 40, 10):
        x = stream[0].train.x[start : start + 10]
        y = stream[0].train.y[start : start + 10]
        method.buffer.add({"x": x, "y": y, "experience": 0, "logits": torch.zeros(10, 4)})
    weights = {k: v.clone() for k, v in method.net.state_dict().items() if "running" not in k}
    bn = method.net.stem[1]
    before = bn.running_mean.clone()
    method.recalibrate_batch_norm()
    assert not torch.equal(before, bn.running_mean)
    for key, value in method.net.state_dict().items():
        if key in weights and "num_batches" not in key:
            assert torch.equal(weights[key], value), key
