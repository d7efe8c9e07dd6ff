"""GDumb's sampler on hand-made streams, its schedule, re-initialisation and CutMix by hand."""

from __future__ import annotations

import math
import random

import pytest
import torch

import lifelong.components  # noqa: F401  (fills the registries)
from lifelong.backbones import BACKBONES
from lifelong.backbones.mlp import MLPConfig
from lifelong.buffers.class_balanced import FREE_SLOT, ClassBalancedBuffer, greedy_class_balanced
from lifelong.data.stream import Experience
from lifelong.data.tensors import ImageSet
from lifelong.data.transforms import ImageTransform
from lifelong.errors import ConfigError
from lifelong.methods.base import METHODS, MethodContext
from lifelong.methods.gdumb import (
    GDumb,
    GDumbConfig,
    cutmix,
    cutmix_box,
    mixed_cross_entropy,
    sgdr_learning_rate,
)
from lifelong.types import Batch


def balanced_buffer(capacity: int) -> ClassBalancedBuffer:
    fields = {"x": ((1,), torch.float32), "y": ((), torch.int64)}
    return ClassBalancedBuffer(capacity, fields, torch.Generator().manual_seed(0))


def offer(buffer: ClassBalancedBuffer, labels: list[int], start: int = 0) -> None:
    """Offer items whose x is their position in the stream (to trace which were kept)."""
    x = torch.arange(start, start + len(labels), dtype=torch.float32).unsqueeze(1)
    buffer.add({"x": x, "y": torch.tensor(labels)})


def test_sampler_on_a_5_1_2_stream_with_capacity_4() -> None:
    # 0 x5: four stored, the fifth dropped (full; 4 * |{0}| >= 4). Class 1: 0 < 4/2, evicts a 0.
    # Class 2: 0 < 4/3, evicts a 0 (the largest, 3); again 1 < 4/3, evicts a 0 (largest, 2).
    buffer = balanced_buffer(4)
    offer(buffer, [0, 0, 0, 0, 0, 1, 2, 2])
    counts = buffer.class_counts()
    assert dict(counts) == {0: 1, 1: 1, 2: 2}
    assert len(buffer) == 4 and buffer.num_seen == 8
    stored = buffer.contents()
    assert sorted(stored["x"].flatten().tolist())[1:] == [5.0, 6.0, 7.0]  # 1, 2, 2 all kept
    assert int(stored["x"].flatten().min()) in range(4)  # one of the first four zeros
    for x, y in zip(stored["x"].flatten().tolist(), stored["y"].tolist(), strict=True):
        assert y == [0, 0, 0, 0, 0, 1, 2, 2][int(x)]  # every row holds its own label
    # the same stream in batches of one gives the same counts (the rule is per item)
    single = balanced_buffer(4)
    for i, label in enumerate([0, 0, 0, 0, 0, 1, 2, 2]):
        offer(single, [label], start=i)
    assert single.class_counts() == counts


def test_a_full_memory_takes_an_example_only_below_capacity_over_classes() -> None:
    counts = {0: 3, 1: 2, 2: 1}  # full at 6; three classes: 2 per class
    assert greedy_class_balanced(counts, 1, 6) is None  # 2 * 3 >= 6 (not "fewer than 3")
    assert greedy_class_balanced(counts, 2, 6) == 0  # 1 * 3 < 6: the largest class pays
    assert greedy_class_balanced(counts, 3, 6) == 0  # a new class: 0 < 6 / 4
    assert greedy_class_balanced({0: 2, 1: 2}, 2, 4) == 0  # ties: the lowest label
    assert greedy_class_balanced({0: 2, 1: 1}, 0, 4) == FREE_SLOT  # room: always stored


def test_sgdr_schedule_matches_torch_warm_restarts_after_a_warm_up_epoch() -> None:
    # the authors' loop: epoch 0 at maxlr / 10, epoch 1 at maxlr, then scheduler.step() per epoch
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=0.05)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0=1, T_mult=2, eta_min=0.0005
    )
    for epoch in range(128):
        if epoch == 0:
            expected = 0.005
        elif epoch == 1:
            expected = 0.05
        else:
            scheduler.step()
            expected = optimizer.param_groups[0]["lr"]
        assert math.isclose(sgdr_learning_rate(epoch, 0.05, 0.0005), expected, rel_tol=1e-9)
    assert [e for e in range(1, 128) if sgdr_learning_rate(e, 0.05, 0.0005) == 0.05] == [
        1,
        2,
        4,
        8,
        16,
        32,
        64,
    ]
    assert sgdr_learning_rate(127, 0.05, 0.0005) < 0.0006


def make_gdumb(seed: int = 0, **fields: object) -> GDumb:
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    backbone = BACKBONES.get("mlp").build(MLPConfig(hidden=(8,)), (1, 2, 2), 4)
    ctx = MethodContext(
        backbone, 4, (1, 2, 2), ImageTransform((0.0,), (1.0,)), torch.device("cpu"), generator
    )
    config = {"buffer_size": 8, "minibatch_size": 4, "epochs_on_memory": 4, **fields}
    entry = METHODS.get("gdumb")
    method = entry.build(entry.make_config(config), ctx)
    assert isinstance(method, GDumb)
    return method


def stream_batch(seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(12, 1, 2, 2, generator=g)
    return Batch(x, torch.tensor([0, 1, 2, 3] * 3), x, 0)


def weights(method: GDumb) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in method.net.state_dict().items()}


def test_observe_only_fills_the_memory() -> None:
    method = make_gdumb()
    before = weights(method)
    out = method.observe(stream_batch(1))
    assert float(out.loss) == 0.0
    assert len(method.buffer) == 8
    assert all(torch.equal(before[k], v) for k, v in weights(method).items())


def test_the_network_is_reinitialised_then_trained_on_the_memory_alone() -> None:
    built = make_gdumb()
    initial = weights(built)
    built.observe(stream_batch(1))
    # the experience's own data must not be used: it is all-white images of class 0
    white = ImageSet(torch.full((4, 1, 2, 2), 255, dtype=torch.uint8), torch.zeros(4).long())
    experience = Experience(0, (0, 1, 2, 3), white, white)
    built.after_experience(experience)
    trained = weights(built)
    assert all(not torch.equal(initial[k], trained[k]) for k in initial)
    built.reinitialise()
    assert all(torch.equal(initial[k], v) for k, v in weights(built).items())
    assert built.optimizer.state_dict()["state"] == {}  # no momentum carried over
    # the trained network depends on the memory and the generator only: a method that has
    # trained differently before ends with the same weights as a fresh one
    fresh, other = make_gdumb(), make_gdumb()
    fresh.observe(stream_batch(1))
    other.observe(stream_batch(1))
    with torch.no_grad():
        for p in other.net.parameters():
            p.add_(torch.randn_like(p))
    other.after_experience(experience)  # perturbed net
    state = other.ctx.generator.get_state()
    other.after_experience(experience)  # and momentum from a first memory training
    fresh.ctx.generator.set_state(state)
    fresh.after_experience(experience)
    assert all(torch.equal(fresh.net.state_dict()[k], v) for k, v in weights(other).items())


class FixedCentre(random.Random):
    """A generator whose ``randrange`` returns given values in turn."""

    def __init__(self, values: list[int]) -> None:
        super().__init__(0)
        self.values = list(values)

    def randrange(self, *args: object, **kwargs: object) -> int:
        value: int = self.values.pop(0)
        return value


def test_cutmix_box_is_centred_and_clipped() -> None:
    # lam 0.75: sides 8 * sqrt(0.25) = 4, half 2; centre (row 0, column 7) is clipped
    assert cutmix_box(8, 8, 0.75, FixedCentre([0, 7])) == (0, 5, 2, 8)
    assert cutmix_box(8, 8, 0.75, FixedCentre([4, 4])) == (2, 2, 6, 6)


def test_cutmix_pastes_the_box_and_weights_labels_by_area() -> None:
    x = torch.arange(3, dtype=torch.float32).view(3, 1, 1, 1).expand(3, 1, 4, 4).clone()
    permutation = torch.tensor([2, 0, 1])
    mixed, lam = cutmix(x, (1, 1, 3, 3), permutation)
    assert lam == 1 - 4 / 16
    inside = torch.zeros(4, 4, dtype=torch.bool)
    inside[1:3, 1:3] = True
    for i in range(3):
        assert (mixed[i, 0][inside] == permutation[i]).all()
        assert (mixed[i, 0][~inside] == i).all()
    assert torch.equal(x[:, 0, 0, 0], torch.tensor([0.0, 1.0, 2.0]))  # input untouched
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 3.0]])
    y = torch.tensor([0, 1, 2])
    loss = mixed_cross_entropy(logits, y, y[permutation], lam)

    def ce(row: int, label: int) -> float:
        z: list[float] = logits[row].tolist()
        return -z[label] + math.log(sum(math.exp(v) for v in z))

    expected = sum(0.75 * ce(i, i) + 0.25 * ce(i, int(permutation[i])) for i in range(3)) / 3
    assert math.isclose(float(loss), expected, rel_tol=1e-6)


def test_memory_training_with_cutmix_on_changes_the_result() -> None:
    plain, mixed = make_gdumb(), make_gdumb(cutmix_prob=1.0)
    for method in (plain, mixed):
        method.observe(stream_batch(1))
        method.train_on_memory()
    assert not torch.equal(plain.net.head.weight, mixed.net.head.weight)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("min_lr", 0.5),
        ("min_lr", 0.0),
        ("epochs_on_memory", 0),
        ("clip_grad_norm", -1.0),
        ("cutmix_prob", 1.5),
        ("cutmix_beta", 0.0),
        ("minibatch_size", 0),
        ("buffer_size", 0),
    ],
)
def test_bad_settings_are_config_errors(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        METHODS.get("gdumb").make_config({field: value})


def test_defaults_are_the_authors() -> None:
    cfg = METHODS.get("gdumb").make_config({})
    assert isinstance(cfg, GDumbConfig)
    assert (cfg.lr, cfg.min_lr, cfg.momentum, cfg.weight_decay) == (0.05, 0.0005, 0.9, 1e-6)
    assert (cfg.minibatch_size, cfg.epochs_on_memory, cfg.clip_grad_norm) == (16, 128, 10.0)
    assert cfg.cutmix_prob == 0.0 and cfg.cutmix_beta == 1.0
