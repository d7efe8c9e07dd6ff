"""The one training loop: ``fit(method, stream, ...)``.

config → stream → experience → batch → ``method.observe`` → step log; at each experience boundary
method → evaluator → accuracy matrix → checkpoint. Online training is a setting of this loop
(``epochs=1`` with small batches, or ``iters``), not another loop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm import tqdm

from lifelong.config.training import TrainConfig
from lifelong.data.stream import Experience, Stream
from lifelong.data.tensors import ImageSet
from lifelong.data.transforms import ImageTransform
from lifelong.errors import ConfigError
from lifelong.evaluation.confusion import per_class_accuracy
from lifelong.evaluation.evaluator import Evaluation, Evaluator
from lifelong.evaluation.probes import ProbeConfig
from lifelong.evaluation.probing import probe_after_experience
from lifelong.methods.base import Method
from lifelong.methods.epoch_need import EpochNeed
from lifelong.reporting.run_logger import RunLogger
from lifelong.running.cost import ExperienceCost, peak_device_mib, peak_rss_mib
from lifelong.running.lr_schedule import learning_rate, set_epoch_learning_rate
from lifelong.types import Batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitState:
    """Progress of a run, saved at every experience boundary so a run can resume.

    Attributes:
        next_experience: Index of the next experience to train.
        rows: Protocol → accuracy rows so far (one per trained experience).
        initial: Protocol → accuracies of the untrained network (NaN when not evaluated).
        step: Global step counter.
        seconds: Training wall time of each trained experience.
        validation: Protocol → accuracies on each experience's validation set after the last
            experience (empty without validation sets).
        eval_seconds: Evaluation wall time after each trained experience.
        images: Training images fed to ``observe`` during each trained experience.
        peak_rss_mib: Peak process memory (RSS, MiB) of the process after each experience.
        peak_device_mib: Peak CUDA memory (MiB) after each experience (empty on the CPU).
        per_class: Accuracy (%) of every class after each experience (argmax over all units,
            on the test sets seen so far; NaN for classes not tested yet).
        top5: Top-5 accuracy (%) on the seen test sets after each experience (NaN with ten
            classes or fewer).
        confusion: Confusion counts (true × predicted) after the last trained experience.
        test_sizes: Test examples of every experience.
        probing: ``train.probes``' accuracies after each experience, ``{mode: {probe: …}}``
            (:func:`~lifelong.evaluation.probing.probe_encoder`; empty without probes).
    """

    next_experience: int = 0
    rows: dict[str, list[list[float]]] = field(default_factory=dict)
    initial: dict[str, list[float]] = field(default_factory=dict)
    step: int = 0
    seconds: list[float] = field(default_factory=list)
    validation: dict[str, list[float]] = field(default_factory=dict)
    eval_seconds: list[float] = field(default_factory=list)
    images: list[int] = field(default_factory=list)
    peak_rss_mib: list[float] = field(default_factory=list)
    peak_device_mib: list[float] = field(default_factory=list)
    per_class: list[list[float]] = field(default_factory=list)
    top5: list[float] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    test_sizes: list[int] = field(default_factory=list)
    probing: list[dict[str, Any]] = field(default_factory=list)


def training_inputs(
    x_clean: torch.Tensor, transform: ImageTransform, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``(x, x_clean)`` pair of a :class:`~lifelong.types.Batch` from clean uint8 inputs.

    ``x`` is augmented and normalised. ``x_clean`` is what buffers store: the uint8 inputs when
    the stream augments (replay draws a fresh augmentation), else the normalised inputs
    themselves, so replay has nothing to recompute.
    """
    if transform.augments:
        return transform.train(x_clean, generator), x_clean
    x = transform.normalize(x_clean)
    return x, x


def batches(
    data: ImageSet,
    num_steps: int,
    batch_size: int,
    chunk_batches: int,
    transform: ImageTransform,
    ordered: bool,
    generator: torch.Generator,
    device: torch.device,
    experience_id: int,
) -> Iterator[Batch]:
    """Yield ``num_steps`` shuffled batches of ``data``, reshuffling after each full pass.

    With ``ordered`` the data are taken in their stored order (a scenario whose order matters,
    such as MNIST-360) instead of a fresh permutation per pass. Examples are gathered and
    augmented ``chunk_batches`` batches at a time (per-sample random
    parameters), then sliced into batches without copies (see :func:`training_inputs`).
    """
    step = 0
    while step < num_steps:
        order = (
            torch.arange(len(data)) if ordered else torch.randperm(len(data), generator=generator)
        )
        start = 0
        while start < len(order) and step < num_steps:
            chunk = min(chunk_batches, num_steps - step) * batch_size
            index = order[start : start + chunk]
            start += chunk
            x, x_clean = training_inputs(data.x[index].to(device), transform, generator)
            y = data.y[index].to(device)
            parts = zip(
                x.split(batch_size), y.split(batch_size), x_clean.split(batch_size), strict=True
            )
            for x_part, y_part, clean_part in parts:
                yield Batch(x_part, y_part, clean_part, experience_id)
                step += 1
                if step == num_steps:
                    return


IID_SPLIT_SEED = 0
"""Seed of the permutation that cuts the IID stream into parts (fixed: every run sees the same
parts; the order within a part is the run's)."""


def training_data(method: Method, stream: Stream, t: int) -> ImageSet:
    """What experience ``t`` trains on under the method's :meth:`~Method.training_scope`.

    ``current``: experience t's data; ``cumulative``: the union of experiences 0..t; ``iid``:
    part t of ``len(stream)`` near-equal parts of the union of all experiences, shuffled once.
    """
    scope = method.training_scope()
    if scope == "cumulative":
        return ImageSet.concat([stream[i].train for i in range(t + 1)])
    if scope == "iid":
        union = ImageSet.concat([experience.train for experience in stream])
        generator = torch.Generator().manual_seed(IID_SPLIT_SEED)
        parts = torch.randperm(len(union), generator=generator).tensor_split(len(stream))
        return union.select(parts[t])
    return stream[t].train


def training_size(method: Method, stream: Stream, t: int) -> int:
    """``len(training_data(method, stream, t))`` without building it."""
    scope = method.training_scope()
    if scope == "cumulative":
        return sum(len(stream[i].train) for i in range(t + 1))
    if scope == "iid":
        total = sum(len(experience.train) for experience in stream)
        return total // len(stream) + (1 if t < total % len(stream) else 0)
    return len(stream[t].train)


def epoch_steps(experience_size: int, batch_size: int, cfg: TrainConfig) -> list[int]:
    """Steps of each epoch of one experience; an epoch is one pass over its data.

    Under ``cfg.iters`` the iterations are split into passes of ``ceil(N / batch_size)`` steps,
    the last one partial, so that epoch-counted schedules (warm-ups, learning-rate milestones,
    first-epoch collection) mean the same under ``epochs`` and ``iters``. The batch order is
    that of one ``iters``-step draw: :func:`batches` reshuffles after each full pass anyway.
    """
    steps_per_epoch = math.ceil(experience_size / batch_size)
    if cfg.iters is None:
        return [steps_per_epoch] * cfg.epochs
    full, rest = divmod(cfg.iters, steps_per_epoch)
    return [steps_per_epoch] * full + ([rest] if rest else [])


def check_epoch_schedules(method: Method, stream: Stream, cfg: TrainConfig, start: int) -> None:
    """Refuse an ``iters`` run in which a method's epoch-counted schedule can never act.

    Asks the method's config (:meth:`~lifelong.methods.base.MethodConfig.epochs_needed`) about
    every experience from ``start`` on, counting passes with the configured batch size. Under
    ``train.epochs`` a too-short experience is the user's explicit choice and only logged.

    Raises:
        ConfigError: Under ``train.iters``, an experience that trains fewer passes than needed
            (the message names the longest such experience and the iterations it needs).
    """
    short: list[tuple[int, int, int, EpochNeed]] = []  # (iters needed, experience, steps, need)
    for t in range(start, len(stream)):
        need = method.cfg.epochs_needed(t)
        if need is None:
            continue
        size = training_size(method, stream, t)
        steps = math.ceil(size / cfg.batch_size)
        if len(epoch_steps(size, cfg.batch_size, cfg)) < need.epochs:
            short.append(((need.epochs - 1) * steps + 1, t, steps, need))
    if not short:
        return
    iters, t, steps, need = max(short, key=lambda s: (s[0], -s[1]))  # the first longest
    if cfg.iters is None:
        log.warning(
            "train.epochs=%d is too few for %s's %s: %s only from epoch %d",
            *(cfg.epochs, method.name, need.setting, need.effect, need.epochs),
        )
        return
    raise ConfigError(
        f"train.iters={cfg.iters} makes {math.ceil(cfg.iters / steps)} passes of {steps} steps "
        f"over experience {t + 1}, but with {method.name}'s {need.setting} {need.effect} only "
        f"from pass {need.epochs}: set train.iters >= {iters} or lower {need.setting.split('=')[0]}"
    )


def train_experience(
    method: Method,
    experience: Experience,
    data: ImageSet,
    cfg: TrainConfig,
    stream: Stream,
    logger: RunLogger,
    generator: torch.Generator,
    device: torch.device,
) -> int:
    """Train ``method`` on one experience: hooks, epochs (or iterations), step logs.

    On an accelerator the experience's images move to it once (``cfg.data_on_device``), so
    batches, augmentation and buffers stay there; losses are read every ``cfg.log_every`` steps
    (:class:`~lifelong.reporting.run_logger.RunLogger`), not at every step.

    Returns:
        The number of training images fed to ``observe``.
    """
    method.train()
    method.before_experience(experience)
    batch_size = method.batch_size(len(data), cfg.batch_size)
    epochs = epoch_steps(len(data), batch_size, cfg)
    bar = tqdm(
        total=sum(epochs),
        desc=f"experience {experience.id + 1}/{len(stream)}",
        disable=None if cfg.progress else True,  # None: only when stderr is a terminal
        mininterval=0.5,
        leave=False,
    )
    if cfg.data_on_device and device.type != "cpu":
        data = ImageSet(data.x.to(device), data.y.to(device))
    images = 0
    for epoch, num_steps in enumerate(epochs):
        if cfg.lr_milestones:
            set_epoch_learning_rate(method, epoch, cfg.lr_milestones, cfg.lr_gamma)
        for batch in batches(
            data,
            num_steps,
            batch_size,
            cfg.chunk_batches,
            stream.transform,
            stream.ordered,
            generator,
            device,
            experience.id,
        ):
            with training_precision(cfg.precision, device):
                out = method.observe(batch)
            logger.step(out, experience.id, epoch, learning_rate(method))
            images += len(batch.y)
            bar.update(1)
        logger.flush(experience.id, epoch)
        method.after_epoch(experience, epoch)
    bar.close()
    method.after_experience(experience)
    return images


def training_precision(
    precision: str, device: torch.device
) -> torch.autocast | contextlib.nullcontext[None]:
    """The context ``observe`` runs in: bf16 autocast on ``device``, or nothing for fp32.

    The whole step runs under autocast, backward and optimiser step included: backward ops take
    the dtypes their forward ops had, and bf16 needs no loss scaling. Evaluation stays in fp32.
    """
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def after_experience(
    state: FitState,
    evaluation: Evaluation,
    step: int,
    cost: ExperienceCost,
    probing: dict[str, Any] | None = None,
) -> FitState:
    """The progress after one more experience: accuracy row, prediction counts, cost, probes.

    ``probing`` holds the probe accuracies when ``train.probes`` are set.
    """
    peak_device = [] if cost.peak_device_mib is None else [cost.peak_device_mib]
    return dataclasses.replace(
        state,
        probing=[*state.probing, probing] if probing is not None else state.probing,
        next_experience=state.next_experience + 1,
        rows={p: [*state.rows.get(p, []), v] for p, v in evaluation.rows.items()},
        step=step,
        seconds=[*state.seconds, cost.train_seconds],
        eval_seconds=[*state.eval_seconds, cost.eval_seconds],
        images=[*state.images, cost.images],
        peak_rss_mib=[*state.peak_rss_mib, cost.peak_rss_mib],
        peak_device_mib=[*state.peak_device_mib, *peak_device],
        per_class=[*state.per_class, per_class_accuracy(evaluation.confusion)],
        top5=[*state.top5, evaluation.top5],
        confusion=evaluation.confusion.tolist(),
        test_sizes=evaluation.test_sizes,
    )


def fit(
    method: Method,
    stream: Stream,
    cfg: TrainConfig,
    evaluator: Evaluator,
    logger: RunLogger,
    generator: torch.Generator,
    state: FitState | None = None,
    on_boundary: Callable[[FitState], None] | None = None,
) -> FitState:
    """Train ``method`` on ``stream`` from ``state`` (or the start), evaluating after each one.

    Args:
        method: The method to train.
        stream: The experiences, in order.
        cfg: Loop settings.
        evaluator: Computes accuracy rows.
        logger: Receives step logs and evaluation rows.
        generator: The run's random generator (data order, augmentation).
        state: Progress to resume from; ``None`` starts fresh.
        on_boundary: Called with the new state after each experience (checkpointing).

    Returns:
        The final state, whose rows form the accuracy matrices.
    """
    device = evaluator.device
    state = state or FitState()
    check_epoch_schedules(method, stream, cfg, state.next_experience)
    if state.next_experience == 0 and not state.initial:
        initial = evaluator.evaluate(method) if cfg.evaluate_future else {}
        state = dataclasses.replace(state, initial={p: list(v) for p, v in initial.items()})
    for t in range(state.next_experience, len(stream)):
        experience = stream[t]
        started = time.perf_counter()
        logger.global_step = state.step
        logger.restart_clock()
        data = training_data(method, stream, t)
        images = train_experience(method, experience, data, cfg, stream, logger, generator, device)
        seconds = time.perf_counter() - started
        evaluation = evaluator.evaluate_counting(method, None if cfg.evaluate_future else t, t)
        probing = None
        if cfg.probes:  # a cssl run's own k-NN and ridge settings, else the probes' defaults
            settings = ProbeConfig(
                ridge_alpha=getattr(method.cfg, "ridge_alpha", ProbeConfig.ridge_alpha),
                knn_k=getattr(method.cfg, "knn_k", ProbeConfig.knn_k),
                batch_size=cfg.eval_batch_size,
            )
            probing = probe_after_experience(
                method.probe_encoder(), stream, cfg.probes, cfg.probe_modes, settings,
                cfg.probe_per_class, cfg.probe_val_ratio, t,
            )  # fmt: skip
        eval_seconds = time.perf_counter() - started - seconds
        cost = ExperienceCost(
            seconds, eval_seconds, images, peak_rss_mib(), peak_device_mib(device)
        )
        state = after_experience(state, evaluation, logger.global_step, cost, probing)
        row = evaluation.rows
        logger.evaluation(t, row, seconds)
        if t == len(stream) - 1 and stream.has_validation:
            state = dataclasses.replace(state, validation=evaluator.validate(method))
            averages = ", ".join(f"{p} {sum(v) / len(v):.2f}" for p, v in state.validation.items())
            log.info("average accuracy on the validation images after the stream: %s", averages)
        if on_boundary is not None:
            on_boundary(state)
    return state
