"""Run orchestration: build everything from a :class:`RunConfig`, train, write the run directory."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from lifelong.backbones import BACKBONES
from lifelong.checkpoint import atomic_write_text, load_checkpoint, save_checkpoint
from lifelong.config import RunConfig, resolve
from lifelong.config.schema import check_device_name
from lifelong.config.training import TrainConfig
from lifelong.config.yaml_files import load_yaml
from lifelong.data.catalog import build_stream
from lifelong.data.scenarios import SCENARIOS
from lifelong.data.stream import Stream
from lifelong.errors import ConfigError, NonFiniteLossError, RunDirError
from lifelong.evaluation.evaluator import Evaluator
from lifelong.methods.base import METHODS, Method, MethodContext
from lifelong.reporting.child_process import ChildProcess
from lifelong.reporting.live_plot import LivePlot, VisdomPlot
from lifelong.reporting.pdf_report import (
    REPORT_NAME,
    Generates,
    generated_samples,
    read_steps,
    write_pdf,
)
from lifelong.reporting.pdf_worker import pdf_message
from lifelong.reporting.report import write_plots
from lifelong.reporting.results import read_results, results_dict, write_results
from lifelong.reporting.run_details import last_confusion
from lifelong.reporting.run_logger import RunLogger, truncate_metrics
from lifelong.reporting.tables import write_confusion, write_run_tables
from lifelong.reporting.wandb_sink import WandbSink, WandbTarget
from lifelong.running.run_dir import (
    CHECKPOINT,
    RESULTS,
    check_destination,
    owning,
    prepare_run_dir,
    stopped_before_first_checkpoint,
    what_is_kept,
)
from lifelong.running.run_log import run_log
from lifelong.running.seed import restore_rng_state, rng_state, seed_everything
from lifelong.running.train import FitState, fit

log = logging.getLogger(__name__)
SAMPLES_PER_CLASS = 8
"""Generated samples per class shown in the PDF report."""
PDF_HELPER = "lifelong.reporting.pdf_worker"
"""The module of the helper process that draws ``lifelong run --pdf``'s report."""


@dataclass(frozen=True)
class Built:
    """Everything a run needs, built from its config."""

    stream: Stream
    method: Method
    evaluator: Evaluator
    generator: torch.Generator


def resolve_device(name: str) -> torch.device:
    """Parse ``--device`` (``cpu``, ``cuda`` or ``cuda:N``), failing clearly when it is not here.

    Other torch devices (``meta``, ``mps``, ...) are refused: the loop, the buffers and the data
    transforms are written for the CPU and CUDA.
    """
    check_device_name(name)
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} is not available on this machine: use --device cpu")
    count = torch.cuda.device_count() if device.type == "cuda" else 0
    if device.index is not None and device.index >= count:
        raise ConfigError(
            f"device {name!r} is not available on this machine: it has {count} GPU(s), "
            f"cuda:0 to cuda:{count - 1}"
        )
    return device


def check_setting(method: str, setting: str, scenario: str) -> None:
    """Refuse a method on a scenario setting it does not support (one ConfigError line)."""
    supported = METHODS.get(method).supported_settings
    if setting not in supported:
        raise ConfigError(
            f"method {method!r} does not support {setting} scenarios such as {scenario!r} "
            f"(it supports {', '.join(sorted(supported))}): pick another method or dataset"
        )


def build(cfg: RunConfig, stream: Stream | None = None) -> Built:
    """Seed, build the stream (unless given), the backbone, the method and the evaluator.

    With ``train.compile`` the method's network is compiled in place (``nn.Module.compile``):
    its forward passes run through ``torch.compile`` and everything else is unchanged.

    Args:
        cfg: The run configuration.
        stream: A stream built by the caller (for example from their own tensors); when given,
            ``cfg.dataset`` is not used.
    """
    entry = METHODS.get(cfg.method_name)
    device = resolve_device(cfg.device)
    generator = seed_everything(cfg.seed)
    if stream is None:  # refuse an unsupported setting before the data load
        check_setting(cfg.method_name, SCENARIOS.get(cfg.dataset.name).setting, cfg.dataset.name)
        stream = build_stream(cfg.dataset, cfg.seed)
    check_setting(cfg.method_name, stream.setting, stream.name)
    spec = BACKBONES.get(cfg.backbone_name)
    backbone = spec.build(cfg.backbone, stream.image_shape, stream.num_classes)
    ctx = MethodContext(
        backbone,
        stream.num_classes,
        stream.image_shape,
        stream.transform,
        device,
        generator,
        num_experiences=len(stream),
        setting=stream.setting,
    )
    method = entry.build(cfg.method, ctx)
    if cfg.train.compile:
        method.net.compile()  # in place: parameter names, checkpoints and hooks stay as they are
    return Built(stream, method, Evaluator(stream, cfg.train.eval_batch_size, device), generator)


def execute(
    cfg: RunConfig,
    run_dir: Path,
    resume: bool = False,
    tensorboard: bool = True,
    pdf: bool = False,
    visdom: bool = False,
    plots: bool = True,
    wandb: WandbTarget | None = None,
) -> dict[str, Any]:
    """Train ``cfg`` into ``run_dir`` (resuming from its checkpoint if asked); return results.

    With ``pdf`` the run's PDF report (:mod:`lifelong.reporting.pdf_report`) is written at the end;
    with ``visdom`` the step logs and accuracies also go to a running visdom server, with
    ``wandb`` to Weights & Biases (:mod:`lifelong.reporting.wandb_sink`); without ``plots`` no
    PNG is drawn (``lifelong reproduce --smoke`` runs hundreds of tiny runs). Every log line of
    the run, other packages' included, goes to ``RUN_DIR/run.log``.
    """
    live = VisdomPlot(env=run_dir.name) if visdom else None
    # helper processes start now and import what they need while the data loads and the run trains
    sink = None if wandb is None else WandbSink(wandb)
    pdf_helper = ChildProcess(PDF_HELPER, "the PDF helper") if pdf else None
    try:
        return write_run(cfg, run_dir, resume, tensorboard, plots, live, sink, pdf_helper)
    finally:  # a helper that has not finished takes this as the run's failure
        if sink is not None:
            sink.close()
        if pdf_helper is not None:
            pdf_helper.close()


def write_run(
    cfg: RunConfig,
    run_dir: Path,
    resume: bool,
    tensorboard: bool,
    plots: bool,
    live: LivePlot | None,
    sink: WandbSink | None,
    pdf_helper: ChildProcess | None,
) -> dict[str, Any]:
    """:func:`execute`'s work once its helper processes have started.

    At the end, the PDF helper draws the report while the plots are drawn: by the W&B helper,
    which then logs them, or else by the run itself.
    """
    check_destination(run_dir, resume)
    built = build(cfg)  # loads and validates the data before anything is written
    prepare_run_dir(run_dir, resume)
    with owning(run_dir):
        check_destination(run_dir, resume)  # again: another process may have started meanwhile
        with run_log(run_dir):
            if sink is not None:
                sink.open(run_dir, cfg.to_raw(), draws_plots=plots)
            results = train_and_write(built, cfg, run_dir, resume, tensorboard, live, sink)
            if pdf_helper is not None:
                contents = pdf_contents(run_dir, results, built.method, cfg.seed)
                pdf_helper.send(*pdf_message(*contents))
            if sink is not None:
                sink.finish(results, run_dir)
            elif plots:
                write_plots(results, run_dir)
            if pdf_helper is not None:
                pdf_helper.wait_for("reported")
                pdf_helper.close(wait=False)  # the report is written
            if sink is not None:
                sink.wait()
    return results


def train_and_write(
    built: Built,
    cfg: RunConfig,
    run_dir: Path,
    resume: bool,
    tensorboard: bool,
    live: LivePlot | None,
    wandb: WandbSink | None,
) -> dict[str, Any]:
    """Train from the run's starting state and write ``results.json``; return the results."""
    raw_config = cfg.to_raw()
    state = starting_state(built, run_dir, resume, raw_config)
    try:
        state = train_into(built, cfg, run_dir, state, tensorboard, live, wandb)
    except NonFiniteLossError as err:
        raise NonFiniteLossError(f"{err}; {what_is_kept(run_dir)}") from err
    results = results_dict(state, len(built.stream), raw_config)
    write_results(run_dir / RESULTS, results)
    return results


def starting_state(
    built: Built, run_dir: Path, resume: bool, raw_config: dict[str, Any]
) -> FitState:
    """The progress to train from: the checkpoint's, or a clean start (config written, no log).

    A run that stopped before its first checkpoint starts again from its first experience,
    whether it is resumed or started again in the same folder.
    """
    if resume and (run_dir / CHECKPOINT).exists():
        state = restore(built, run_dir / CHECKPOINT)
        truncate_metrics(run_dir / "metrics.jsonl", state.step, state.next_experience)
        log.info(
            "resuming %s at experience %d/%d", run_dir, state.next_experience + 1, len(built.stream)
        )
        return state
    if resume or stopped_before_first_checkpoint(run_dir):
        log.warning(
            "%s has no checkpoint yet (its run stopped before the first one): the run starts "
            "again from its first experience",
            run_dir,
        )
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(raw_config, sort_keys=False))
    (run_dir / "metrics.jsonl").unlink(missing_ok=True)
    return FitState()


def pdf_contents(
    run_dir: Path, results: dict[str, Any], method: Method, seed: int
) -> tuple[Any, ...]:
    """:func:`~lifelong.reporting.pdf_report.write_pdf`'s arguments for ``RUN_DIR/report.pdf``.

    With samples when ``method`` generates inputs.
    """
    samples = generated_samples(method, SAMPLES_PER_CLASS, seed)
    steps = read_steps(run_dir / "metrics.jsonl")
    confusion = last_confusion(results, run_dir)
    return results, steps, run_dir / REPORT_NAME, samples, confusion


def pdf_for_finished_run(run_dir: Path) -> Path:
    """Write a finished run's PDF report; a generative method is rebuilt from its checkpoint."""
    results = read_results(run_dir)
    cfg = load_run_config(run_dir)
    steps = read_steps(run_dir / "metrics.jsonl")
    samples = None
    if issubclass(METHODS.get(cfg.method_name).method_class, Generates):
        built = build(cfg)
        restore(built, run_dir / CHECKPOINT)
        samples = generated_samples(built.method, SAMPLES_PER_CLASS, cfg.seed)
    confusion = last_confusion(results, run_dir)
    return write_pdf(results, steps, run_dir / REPORT_NAME, samples, confusion)


def train_into(
    built: Built,
    cfg: RunConfig,
    run_dir: Path,
    state: FitState,
    tensorboard: bool = True,
    live: LivePlot | None = None,
    wandb: WandbSink | None = None,
) -> FitState:
    """Run the loop from ``state``, logging into ``run_dir`` and checkpointing every boundary."""
    logger = RunLogger(run_dir, cfg.train.log_every, tensorboard, live, wandb)
    logger.global_step = state.step
    on_boundary = boundary_writer(built, run_dir, cfg.to_raw(), cfg.train, state.next_experience)
    try:
        return fit(
            built.method,
            built.stream,
            cfg.train,
            built.evaluator,
            logger,
            built.generator,
            state,
            on_boundary,
        )
    finally:
        logger.close()


AUTO_CHECKPOINTS = 20
"""With ``train.checkpoint_every: 0``, about this many checkpoints per stream."""


def checkpoint_interval(every: int, num_experiences: int) -> int:
    """Experiences between checkpoints: ``every``, or automatic (``every == 0``)."""
    return every if every > 0 else max(1, math.ceil(num_experiences / AUTO_CHECKPOINTS))


def boundary_writer(
    built: Built, run_dir: Path, raw_config: dict[str, Any], cfg: TrainConfig, start: int
) -> Callable[[FitState], None]:
    """The experience-boundary callback: when due, write the checkpoint, then partial results.

    The confusion counts of every experience go to ``confusion/after_<k>.csv``. A checkpoint
    (with ``results.json`` and the CSV tables) is due every ``checkpoint_interval``
    experiences, at the first boundary ``cfg.checkpoint_minutes`` after the previous one, and
    always after the last experience. A
    resumed run restarts from the last checkpoint and repeats the experiences after it; with
    the saved generator state it ends as an uninterrupted run would.

    Args:
        built: The run's method, stream and generator.
        run_dir: Where the checkpoint and ``results.json`` go.
        raw_config: The resolved config, copied into ``results.json``.
        cfg: The loop settings that hold the checkpoint cadence.
        start: Experiences already done when the loop starts (0, or the resumed checkpoint's).
    """
    total = len(built.stream)
    interval = checkpoint_interval(cfg.checkpoint_every, total)
    last_done, last_time = start, time.monotonic()

    def on_boundary(state: FitState) -> None:
        nonlocal last_done, last_time
        done = state.next_experience
        if state.confusion:
            write_confusion(run_dir, done, state.confusion)
        late = time.monotonic() - last_time >= 60 * cfg.checkpoint_minutes
        if done < total and done - last_done < interval and not late:
            return
        payload = {
            "format": 1,
            "method": built.method.state_dict(),
            "rng": rng_state(built.generator),
            "state": dataclasses.asdict(state),
        }
        save_checkpoint(run_dir / CHECKPOINT, payload)
        results = results_dict(state, total, raw_config)
        write_results(run_dir / RESULTS, results)
        write_run_tables(results, run_dir)
        last_done, last_time = done, time.monotonic()

    return on_boundary


def restore(built: Built, path: Path) -> FitState:
    """Load a checkpoint into the built method and generator; return the saved progress."""
    payload = load_checkpoint(path)
    try:
        built.method.load_state_dict(payload["method"])
        restore_rng_state(built.generator, payload["rng"])
        return FitState(**payload["state"])
    except (RuntimeError, KeyError, TypeError, ValueError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise RunDirError(
            f"checkpoint {path} does not match the run's config.yaml ({first}); "
            "start the run again without --resume"
        ) from err


def load_run_config(run_dir: Path) -> RunConfig:
    """Read and validate ``RUN_DIR/config.yaml`` (bounded and one-line, as every user file)."""
    path = run_dir / "config.yaml"
    if not path.exists():
        raise RunDirError(f"no config.yaml in {run_dir}: is it a lifelong run directory?")
    return resolve(load_yaml(path, "the run's config"))
