"""The contract every registered method keeps, checked on tiny synthetic class-IL streams."""

from __future__ import annotations

import dataclasses
import functools
import io
import math
from typing import Any

import pytest
import torch

import lifelong.components  # noqa: F401  (fills the registries)
from lifelong.backbones import BACKBONES
from lifelong.backbones.mlp import MLPConfig
from lifelong.config.training import TrainConfig
from lifelong.data.stream import Experience, Stream
from lifelong.data.tensors import ImageSet
from lifelong.data.transforms import ImageTransform
from lifelong.evaluation.evaluator import Evaluator
from lifelong.methods.base import METHODS, Method, MethodContext
from lifelong.methods.rehearsal import RehearsalConfig
from lifelong.reporting.run_logger import RunLogger
from lifelong.running.seed import restore_rng_state, rng_state, seed_everything
from lifelong.running.train import batches, fit, training_inputs
from lifelong.types import Batch

CPU = torch.device("cpu")
CLASSES_PER_EXPERIENCE, EXPERIENCES = 2, 3
TRAIN_PER_CLASS, TEST_PER_CLASS = 40, 10
HIDDEN = (64, 32)
STREAM_KINDS = ("grey", "rgb-augmented")


@functools.cache
def make_stream(kind: str) -> Stream:
    """3 experiences x 2 classes; each class is a noisy version of its own random prototype.

    ``grey``: 1x8x8 random-pixel prototypes, no augmentation. ``rgb-augmented``: 3x8x8 images
    of one random colour per class (so crops and flips keep the class), with crop and flip.
    """
    g = torch.Generator().manual_seed(2024)
    num_classes = CLASSES_PER_EXPERIENCE * EXPERIENCES
    if kind == "grey":
        shape = (1, 8, 8)
        transform = ImageTransform((0.0,), (1.0,))
        prototypes = torch.randint(30, 226, (num_classes, *shape), generator=g)
    else:
        shape = (3, 8, 8)
        transform = ImageTransform((0.5,) * 3, (0.25,) * 3, crop_padding=2, hflip=True)
        colours = torch.randint(30, 226, (num_classes, 3, 1, 1), generator=g)
        prototypes = colours.expand(num_classes, *shape)

    def images(label: int, n: int) -> ImageSet:
        noise = torch.randint(-30, 31, (n, *shape), generator=g)
        x = (prototypes[label] + noise).clamp(0, 255).to(torch.uint8)
        return ImageSet(x, torch.full((n,), label, dtype=torch.int64))

    experiences = []
    for t in range(EXPERIENCES):
        classes = tuple(range(t * CLASSES_PER_EXPERIENCE, (t + 1) * CLASSES_PER_EXPERIENCE))
        train = ImageSet.concat([images(c, TRAIN_PER_CLASS) for c in classes])
        test = ImageSet.concat([images(c, TEST_PER_CLASS) for c in classes])
        experiences.append(Experience(t, classes, train, test))
    names = tuple(str(c) for c in range(num_classes))
    return Stream(
        f"synthetic-{kind}", tuple(experiences), num_classes, "class-il", transform, names
    )


ADAM_LR = 0.01
"""Learning rate of methods whose optimiser is Adam (0.05 makes Adam diverge in a few steps)."""


def build_method(name: str, stream: Stream, seed: int = 0, **overrides: Any) -> Method:
    """Seed, build the mlp backbone and the method (with momentum: optimiser state matters).

    The SGD learning rate 0.05 becomes ``ADAM_LR`` for a method that optimises with Adam.
    """
    method = _build_method(name, stream, seed, overrides)
    if isinstance(method.optimizer, torch.optim.Adam) and "lr" not in overrides:
        method = _build_method(name, stream, seed, {**overrides, "lr": ADAM_LR})
    return method


# Settings these streams' few dozen steps and 24-slot memories need. Methods that predict with
# an EMA memory of the network: the authors' decays (0.99-0.999) leave the memory an average of
# every step so far, at chance on the current experience, so it gets a short window.
SMALL_STREAM_SETTINGS: dict[str, dict[str, float]] = {
    "cls_er": {"plastic_model_alpha": 0.5, "stable_model_alpha": 0.5},
    "scommer": {"ema_alpha": 0.5},
    # BiC fits its correction on the held-out tenth of a 24-slot memory, 4-6 images here; fitted
    # to convergence (the default) on so few, alpha reaches about 9 and the later experiences
    # train through that correction, so these tests keep the fit near the identity.
    "bic": {"bias_lr": 0.001},
}


def _build_method(name: str, stream: Stream, seed: int, overrides: dict[str, Any]) -> Method:
    generator = seed_everything(seed)
    entry = METHODS.get(name)
    backbone = BACKBONES.get("mlp").build(
        MLPConfig(hidden=HIDDEN), stream.image_shape, stream.num_classes
    )
    kwargs: dict[str, Any] = {"lr": 0.05, "momentum": 0.5}
    if issubclass(entry.config_cls, RehearsalConfig):
        kwargs.update(buffer_size=24, minibatch_size=8)
    if "inc_lr" in {f.name for f in dataclasses.fields(entry.config_cls)}:
        kwargs.update(inc_lr=0.05, rm_sz=24)  # AR1*: the same rate in every experience
    kwargs.update(SMALL_STREAM_SETTINGS.get(name, {}))
    kwargs.update(overrides)
    ctx = MethodContext(
        backbone, stream.num_classes, stream.image_shape, stream.transform, CPU, generator
    )
    return entry.build(entry.make_config(kwargs), ctx)  # a variant: its defaults under kwargs


def train_steps(method: Method, stream: Stream, steps_per_experience: int, upto: int) -> None:
    """A few observe() calls on experiences 0..upto, batches drawn as the loop draws them."""
    method.train()
    for t in range(upto + 1):
        method.before_experience(stream[t])
        for batch in batches(
            stream[t].train,
            steps_per_experience,
            16,
            2,
            stream.transform,
            stream.ordered,
            method.ctx.generator,
            CPU,
            t,
        ):
            method.observe(batch)
        method.after_experience(stream[t])


def fixed_batch(stream: Stream, t: int, size: int = 12) -> Batch:
    """A batch of experience ``t`` drawn from its own generator (independent of the method)."""
    g = torch.Generator().manual_seed(100 + t)
    index = torch.randperm(len(stream[t].train), generator=g)[:size]
    x, x_clean = training_inputs(stream[t].train.x[index], stream.transform, g)
    return Batch(x, stream[t].train.y[index], x_clean, t)


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def assert_same(a: Any, b: Any, where: str = "state") -> None:
    """Exact recursive equality of tensors, dicts, lists and scalars."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype, where
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def serialised(payload: dict[str, Any]) -> dict[str, Any]:
    """A deep, detached copy through torch.save / torch.load(weights_only=True)."""
    blob = io.BytesIO()
    torch.save(payload, blob)
    blob.seek(0)
    loaded: dict[str, Any] = torch.load(blob, weights_only=True)
    return loaded


def _rehearsal_names() -> list[str]:
    stream = make_stream("grey")
    return [n for n in METHODS.names() if hasattr(build_method(n, stream), "buffer")]


METHOD_NAMES = METHODS.names()
REHEARSAL_NAMES = _rehearsal_names()

pytestmark = pytest.mark.parametrize("kind", STREAM_KINDS)


def test_registry_is_not_empty(kind: str) -> None:
    assert len(METHOD_NAMES) >= 5
    assert set(REHEARSAL_NAMES) >= {"er", "der", "derpp"}


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_observe_returns_finite_detached_scalar_loss(name: str, kind: str) -> None:
    stream = make_stream(kind)
    method = build_method(name, stream)
    method.train()
    for t in (0, 0, 1, 1):  # the second experience exercises replay for rehearsal methods
        out = method.observe(fixed_batch(stream, t))
        assert out.loss.dim() == 0
        assert not out.loss.requires_grad
        assert math.isfinite(float(out.loss))
        assert float(out.loss) >= 0 or not method.nonnegative_loss
        for term, value in out.terms.items():
            assert value.dim() == 0, term
            assert not value.requires_grad, term
            assert math.isfinite(float(value)), term


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_parameters_move(name: str, kind: str) -> None:
    stream = make_stream(kind)
    method = build_method(name, stream)
    before = snapshot(method.net)
    train_steps(method, stream, steps_per_experience=3, upto=0)
    after = snapshot(method.net)
    for key in before:
        assert not torch.equal(before[key], after[key]), f"{key} did not move"


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_frozen_parameters_stay(name: str, kind: str) -> None:
    stream = make_stream(kind)
    method = build_method(name, stream, weight_decay=1e-3)
    first = method.net.body[1]  # the first Linear layer of the mlp
    first.requires_grad_(False)
    frozen = snapshot(first)
    head = method.net.head.weight.detach().clone()
    train_steps(method, stream, steps_per_experience=3, upto=1)
    for key, value in snapshot(first).items():
        assert torch.equal(value, frozen[key]), f"frozen {key} moved"
    assert not torch.equal(head, method.net.head.weight)


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_predict_and_features_shapes(name: str, kind: str) -> None:
    stream = make_stream(kind)
    method = build_method(name, stream)
    method.eval()
    x = stream.transform.normalize(stream[1].test.x[:7])
    with torch.no_grad():
        logits = method.predict(x)
        features = method.features(x)
    assert logits.shape == (7, stream.num_classes)
    # the features feed the head (HIDDEN[-1] wide for methods that train the given backbone;
    # gr's generator and bir build their own networks)
    assert features.shape == (7, method.net.head.in_features)
    if method.net is method.ctx.backbone:
        assert features.shape == (7, HIDDEN[-1])
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_fit_runs_every_hook_and_fills_the_accuracy_matrix(name: str, kind: str) -> None:
    stream = make_stream(kind)
    method = build_method(name, stream)
    calls: list[tuple[Any, ...]] = []
    batch_sizes: list[int] = []  # what the method asks for, per experience
    original = (method.before_experience, method.after_epoch, method.after_experience)
    cfg = TrainConfig(epochs=2, batch_size=16, eval_batch_size=32, chunk_batches=2, progress=False)

    def before(experience: Experience) -> None:
        calls.append(("before", experience.id))
        original[0](experience)
        size = len(experience.train) * (experience.id + 1 if cumulative else 1)
        batch_sizes.append(method.batch_size(size, cfg.batch_size))

    def epoch_end(experience: Experience, epoch: int) -> None:
        calls.append(("epoch", experience.id, epoch))
        original[1](experience, epoch)

    def after(experience: Experience) -> None:
        calls.append(("after", experience.id))
        original[2](experience)

    method.before_experience = before  # type: ignore[method-assign]
    method.after_epoch = epoch_end  # type: ignore[method-assign]
    method.after_experience = after  # type: ignore[method-assign]
    cumulative = method.training_scope() == "cumulative"
    state = fit(
        method,
        stream,
        cfg,
        Evaluator(stream, cfg.eval_batch_size, CPU),
        RunLogger(None, log_every=5),
        method.ctx.generator,
    )
    expected_calls = []
    for t in range(EXPERIENCES):
        expected_calls += [("before", t), ("epoch", t, 0), ("epoch", t, 1), ("after", t)]
    assert calls == expected_calls
    per_experience = CLASSES_PER_EXPERIENCE * TRAIN_PER_CLASS
    sizes = [per_experience * (t + 1) if cumulative else per_experience for t in range(EXPERIENCES)]
    assert all(0 < b <= cfg.batch_size for b in batch_sizes)
    steps = [math.ceil(n / b) for n, b in zip(sizes, batch_sizes, strict=True)]
    assert state.step == cfg.epochs * sum(steps)
    assert state.next_experience == EXPERIENCES
    assert len(state.seconds) == EXPERIENCES
    assert set(state.rows) == {"class-il", "task-il"}
    for protocol, rows in state.rows.items():
        assert len(rows) == EXPERIENCES
        for row in rows:
            assert len(row) == EXPERIENCES
            assert all(0.0 <= v <= 100.0 for v in row), protocol
        assert len(state.initial[protocol]) == EXPERIENCES
    for t in range(EXPERIENCES):
        # task-IL picks among a subset of the units class-IL picks from: never worse
        assert all(
            ti >= ci
            for ti, ci in zip(state.rows["task-il"][t], state.rows["class-il"][t], strict=True)
        )
    # the current experience is learnt (prototypes are far apart): well above chance (50%)
    assert state.rows["task-il"][-1][-1] > 75.0


def _fit_once(name: str, kind: str, seed: int) -> Method:
    stream = make_stream(kind)
    method = build_method(name, stream, seed=seed)
    cfg = TrainConfig(epochs=1, batch_size=16, eval_batch_size=64, chunk_batches=2, progress=False)
    fit(
        method,
        stream,
        cfg,
        Evaluator(stream, cfg.eval_batch_size, CPU),
        RunLogger(None, log_every=5),
        method.ctx.generator,
    )
    return method


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_same_seed_gives_identical_state(name: str, kind: str) -> None:
    first = _fit_once(name, kind, seed=7)
    second = _fit_once(name, kind, seed=7)
    assert_same(serialised(first.state_dict()), serialised(second.state_dict()))
    other = _fit_once(name, kind, seed=8)
    assert not torch.equal(first.net.head.weight, other.net.head.weight)


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_state_dict_round_trip_gives_same_predictions_and_next_update(name: str, kind: str) -> None:
    stream = make_stream(kind)
    original = build_method(name, stream, seed=1)
    train_steps(original, stream, steps_per_experience=4, upto=1)
    checkpoint = serialised(
        {"method": original.state_dict(), "rng": rng_state(original.ctx.generator)}
    )

    restored = build_method(name, stream, seed=99)  # different init and generators until loaded
    restored.load_state_dict(checkpoint["method"])
    restore_rng_state(restored.ctx.generator, checkpoint["rng"])
    assert_same(serialised(original.state_dict()), serialised(restored.state_dict()))

    original.eval()
    restored.eval()
    x = stream.transform.normalize(stream[2].test.x)
    with torch.no_grad():
        assert torch.equal(original.predict(x), restored.predict(x))

    # the next update matches too: optimiser (momentum), buffer and generators travelled
    batch = fixed_batch(stream, 2)
    original.train()
    restored.train()
    restore_rng_state(original.ctx.generator, checkpoint["rng"])
    out_original = original.observe(batch)
    restore_rng_state(restored.ctx.generator, checkpoint["rng"])
    out_restored = restored.observe(batch)
    assert torch.equal(out_original.loss, out_restored.loss)
    assert_same(serialised(original.state_dict()), serialised(restored.state_dict()))
    with torch.no_grad():
        original.eval()
        restored.eval()
        assert torch.equal(original.predict(x), restored.predict(x))


@pytest.mark.parametrize("name", REHEARSAL_NAMES)
def test_rehearsal_buffer_holds_clean_inputs_and_experience_ids(name: str, kind: str) -> None:
    stream = make_stream(kind)
    method = _fit_once(name, kind, seed=3)
    buffer = method.buffer  # type: ignore[attr-defined]
    seen = EXPERIENCES * CLASSES_PER_EXPERIENCE * TRAIN_PER_CLASS
    assert buffer.num_seen == seen
    assert len(buffer) == min(seen, buffer.capacity) == 24
    x = buffer.field("x")
    # uint8 when replay re-augments; the normalised input itself when the stream does not augment
    augments = stream.transform.augments
    assert x.dtype == (torch.uint8 if augments else torch.float32)
    assert tuple(x.shape[1:]) == stream.image_shape
    # every stored input is an un-augmented training image, stored with its label and experience
    origin = {}
    for experience in stream:
        images = experience.train.x if augments else stream.transform.normalize(experience.train.x)
        for image, label in zip(images, experience.train.y.tolist(), strict=True):
            origin[image.numpy().tobytes()] = (label, experience.id)
    for image, label, exp in zip(
        x, buffer.field("y").tolist(), buffer.field("experience").tolist(), strict=True
    ):
        key = image.numpy().tobytes()
        assert key in origin, "the buffer holds an image that is not a clean training input"
        assert origin[key] == (label, exp)
    # reservoir over the whole stream: more than one experience is represented
    assert len(set(buffer.field("experience").tolist())) > 1
