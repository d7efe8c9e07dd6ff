"""Under ``train.iters`` an epoch is one pass over the data, as under ``train.epochs``.

Epoch-counted schedules (SARL's warm-up and learning-rate steps, AR1*'s first-epoch collection)
therefore mean the same in both; an ``iters`` run too short for a warm-up is refused.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import torch

import lifelong.components  # noqa: F401
from lifelong.backbones import BACKBONES
from lifelong.backbones.mlp import MLPConfig
from lifelong.config.training import TrainConfig
from lifelong.data.catalog import GREY
from lifelong.data.stream import Experience, Stream
from lifelong.data.tensors import ImageSet
from lifelong.errors import ConfigError
from lifelong.evaluation.evaluator import Evaluator
from lifelong.methods.ar1_star import AR1Star, AR1StarConfig
from lifelong.methods.base import METHODS, Method, MethodConfig, MethodContext
from lifelong.methods.finetune import Finetune
from lifelong.methods.sarl import SARL, SARLConfig
from lifelong.reporting.run_logger import RunLogger
from lifelong.running.seed import seed_everything
from lifelong.running.train import batches, epoch_steps, fit
from lifelong.types import Batch, StepOutput

CPU = torch.device("cpu")
PER_EXPERIENCE, BATCH = 60, 16  # 4 steps per pass, the last one of 12 examples


def _stream(experiences: int = 3) -> Stream:
    generator = torch.Generator().manual_seed(0)
    parts = []
    for t in range(experiences):
        classes = (2 * t, 2 * t + 1)
        y = torch.tensor(classes).repeat_interleave(PER_EXPERIENCE // 2)
        x = torch.randint(0, 256, (PER_EXPERIENCE, 1, 8, 8), generator=generator)
        x = x.to(torch.uint8)
        x[y == classes[1], :, :4] = 255
        parts.append(Experience(t, classes, ImageSet(x, y), ImageSet(x[:20], y[:20])))
    names = tuple(str(c) for c in range(6))  # six classes, of which the first experiences
    return Stream("synthetic", tuple(parts), 6, "class-il", GREY, names)


def _context(stream: Stream, seed: int = 0) -> MethodContext:
    generator = seed_everything(seed)
    net = BACKBONES.get("mlp").build(MLPConfig(hidden=(16,)), stream.image_shape, 6)
    return MethodContext(net, 6, stream.image_shape, stream.transform, CPU, generator)


class Recorder(Finetune):
    """Finetune that records every batch and every ``after_epoch`` call."""

    name = "epoch_recorder"

    def __init__(self, cfg: MethodConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)
        self.epochs: list[tuple[int, int, int]] = []  # (experience, epoch, steps so far)
        self.inputs: list[torch.Tensor] = []

    def observe(self, batch: Batch) -> StepOutput:
        self.inputs.append(batch.x_clean.clone())
        return super().observe(batch)

    def after_epoch(self, experience: Experience, epoch: int) -> None:
        self.epochs.append((experience.id, epoch, len(self.inputs)))


def _fit(method: Method, stream: Stream, logger: RunLogger | None = None, **train: Any) -> None:
    cfg = TrainConfig(batch_size=BATCH, chunk_batches=3, progress=False, **train)
    evaluator = Evaluator(stream, 100, CPU)
    fit(method, stream, cfg, evaluator, logger or RunLogger(None, 1000), method.ctx.generator)


def test_epoch_steps_split_iterations_into_passes() -> None:
    assert epoch_steps(60, 16, TrainConfig(iters=10)) == [4, 4, 2]
    assert epoch_steps(60, 16, TrainConfig(iters=8)) == [4, 4]
    assert epoch_steps(60, 16, TrainConfig(iters=3)) == [3]
    assert epoch_steps(60, 16, TrainConfig(epochs=2)) == [4, 4]


def test_after_epoch_runs_once_per_pass_under_iters() -> None:
    stream = _stream()
    method = Recorder(MethodConfig(lr=0.05), _context(stream))
    _fit(method, stream, iters=10)
    expected = []
    for t in range(3):
        expected += [(t, 0, 10 * t + 4), (t, 1, 10 * t + 8), (t, 2, 10 * t + 10)]
    assert method.epochs == expected


def test_the_split_keeps_the_batch_order_of_one_iters_draw() -> None:
    stream = _stream(experiences=1)
    method = Recorder(MethodConfig(lr=0.05), _context(stream, seed=3))
    generator = torch.Generator().manual_seed(11)
    method.ctx.generator.set_state(generator.get_state())
    _fit(method, stream, iters=11, evaluate_future=False)
    drawn = batches(stream[0].train, 11, BATCH, 3, stream.transform, False, generator, CPU, 0)
    expected = [b.x_clean for b in drawn]
    assert len(method.inputs) == len(expected) == 11
    assert all(torch.equal(a, b) for a, b in zip(method.inputs, expected, strict=True))


class TermRecorder(RunLogger):
    """Keeps, per experience, the (epoch, loss-term names) of every step."""

    def __init__(self) -> None:
        super().__init__(None, 1000)
        self.seen: dict[int, list[tuple[int, set[str]]]] = {}

    def step(self, out: StepOutput, experience: int, epoch: int, lr: float | None = None) -> None:
        self.seen.setdefault(experience, []).append((epoch, set(out.terms)))
        super().step(out, experience, epoch, lr)


def _sarl(stream: Stream, **overrides: Any) -> SARL:
    settings: dict[str, Any] = {"lr": 0.05, "buffer_size": 40, "minibatch_size": 8}
    return SARL(SARLConfig(**{**settings, **overrides}), _context(stream))


def test_sarl_warmup_counts_passes_under_iters() -> None:
    stream = _stream(experiences=2)
    method = _sarl(stream, warmup_epochs=1, lr_steps=(1,))
    recorder = TermRecorder()
    _fit(method, stream, recorder, iters=14)  # passes of 4, 4, 4 and 2 steps
    assert all("distill" not in terms for _, terms in recorder.seen[0])
    # experience 2: grouping after pass 2, distillation and semantic terms from pass 3 on
    for epoch, terms in recorder.seen[1]:
        assert ({"distill", "semantic"} <= terms) == (epoch >= 2), (epoch, terms)
    assert method.grouped


def test_sarl_learning_rate_steps_count_passes_under_iters() -> None:
    stream = _stream(experiences=1)
    method = _sarl(stream, warmup_epochs=0, lr_steps=(2,))
    rates: list[float] = []
    original = method.after_epoch

    def after_epoch(experience: Experience, epoch: int) -> None:
        original(experience, epoch)
        rates.append(method.optimizer.param_groups[0]["lr"])

    method.after_epoch = after_epoch  # type: ignore[method-assign]
    _fit(method, stream, iters=10)
    assert rates == pytest.approx([0.05, 0.005, 0.005])


def test_sarl_iters_too_short_for_the_warmup_is_refused_before_any_step() -> None:
    stream = _stream(experiences=2)
    method = _sarl(stream, warmup_epochs=1)
    before = {k: v.clone() for k, v in method.net.state_dict().items()}
    with pytest.raises(ConfigError) as error:
        _fit(method, stream, iters=8)  # 2 passes; the terms act from pass 3
    message = str(error.value)
    assert "train.iters=8" in message and "method.warmup_epochs=1" in message
    assert "train.iters >= 9" in message
    assert all(torch.equal(v, method.net.state_dict()[k]) for k, v in before.items())


def test_sarl_epochs_too_short_for_the_warmup_only_warn(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = _stream(experiences=2)
    method = _sarl(stream, warmup_epochs=0)
    with caplog.at_level(logging.WARNING, logger="lifelong.running.train"):
        _fit(method, stream, epochs=1)
    assert any("method.warmup_epochs=0" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("name", ["sarl_online", "er", "der", "bir", "ar1_star", "cssl"])
def test_methods_without_an_epoch_warmup_need_nothing(name: str) -> None:
    cfg = METHODS.get(name).make_config({})  # a variant's config carries its defaults
    assert all(cfg.epochs_needed(t) is None for t in range(3))


def test_ar1_star_collects_one_pass_of_patterns_under_iters() -> None:
    stream = _stream(experiences=1)
    method = AR1Star(AR1StarConfig(lr=0.05, rm_sz=24), _context(stream))
    counts: list[int] = []
    original = method.after_epoch

    def after_epoch(experience: Experience, epoch: int) -> None:
        counts.append(sum(len(y) for _, y in method.collected))
        original(experience, epoch)

    method.after_epoch = after_epoch  # type: ignore[method-assign]
    _fit(method, stream, iters=10)
    assert counts == [PER_EXPERIENCE] * 3  # each example once, not 10 x 16
