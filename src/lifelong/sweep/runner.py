"""Run a sweep's trials as ``lifelong run`` subprocesses: local threads or Ray tasks.

A trial runs from its resolved config: the config is written to ``RUN_DIR/trial-config.yaml``
and the process is ``lifelong run --config RUN_DIR/trial-config.yaml --preset none``, which
rebuilds exactly that config (a full config file leaves no field to the lower layers).

A trial process dies with the sweep, even with ``kill -9`` on Linux
(:mod:`lifelong.sweep.children`), and holds its folder's lock while it lives
(:mod:`lifelong.sweep.lock`): a sweep never clears or runs a trial folder another process owns,
it reports that trial as "running elsewhere" and goes on with the others.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Generator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from lifelong.checkpoint import atomic_write_text
from lifelong.errors import ConfigError, RunDirError
from lifelong.reporting.wandb_sink import WandbTarget
from lifelong.running.run_dir import INHERITED_LOCK
from lifelong.sweep.children import TrialProcesses
from lifelong.sweep.lock import LOCK_FILE, clear_locked_folder, trial_lock
from lifelong.sweep.plan import Raw, Sweep, Trial, completed_results

log = logging.getLogger(__name__)
TRIAL_LOG = "trial.log"
TRIAL_CONFIG = "trial-config.yaml"
"""The trial's resolved config, read by its ``lifelong run --config`` process."""
VALIDATION = "validation"
"""Prefix of the validation scores in :attr:`Attempt.accuracy` (``validation class-il``)."""


@dataclass(frozen=True)
class Attempt:
    """The outcome of one ``lifelong run``: status, final average accuracy per protocol.

    ``running elsewhere``: the trial folder is locked by another process (another sweep's trial
    still running); it was left alone. With ``dataset.validation`` the accuracy also holds
    ``validation <protocol>`` entries: the final average accuracy on the held-out validation
    images.
    """

    status: Literal["done before", "ok", "failed", "running elsewhere"]
    accuracy: dict[str, float]
    error: str = ""
    seconds: float = 0.0


def run_once(
    arguments: Sequence[str],
    run_dir: Path,
    one_thread: bool,
    cwd: Path | None = None,
    config: Raw | None = None,
    processes: TrialProcesses | None = None,
) -> Attempt:
    """Run ``lifelong run ARGUMENTS --run-dir RUN_DIR`` unless it finished before.

    Everything happens under the folder's lock (:mod:`lifelong.sweep.lock`), which the process
    inherits: a folder locked by another process is left alone ("running elsewhere"). An
    unfinished ``run_dir`` is cleared and the run starts again. The process output goes to
    ``RUN_DIR/trial.log``; a failure is reported, never raised.

    Args:
        arguments: ``lifelong run`` arguments.
        run_dir: The run directory.
        one_thread: Set ``OMP_NUM_THREADS=1`` (for runs side by side).
        cwd: Working directory of the process (relative data paths); default: the current one.
        config: A resolved config (``RunConfig.to_raw()``): written to ``RUN_DIR/{TRIAL_CONFIG}``
            and run with ``--config FILE --preset none`` before ``arguments``.
        processes: Starts the process and can stop it (default: a new one, for this run only).

    Raises:
        SweepStoppedError: When ``processes`` was stopped before the run started.
    """
    env = {**os.environ, **({"OMP_NUM_THREADS": "1"} if one_thread else {})}
    config_file = run_dir / TRIAL_CONFIG
    from_config = ["--config", str(config_file), "--preset", "none"] if config is not None else []
    command = [sys.executable, "-m", "lifelong", "run", *from_config, *arguments]
    command += ["--run-dir", str(run_dir), "--no-progress"]
    start = time.perf_counter()
    try:
        with trial_lock(run_dir) as lock:
            if lock is None:
                return Attempt("running elsewhere", {}, f"{run_dir / LOCK_FILE} is held")
            results = completed_results(run_dir)
            if results is not None:
                return Attempt("done before", _accuracy(results))
            clear_locked_folder(run_dir)
            if config is not None:
                atomic_write_text(config_file, yaml.safe_dump(config, sort_keys=False))
            with (run_dir / TRIAL_LOG).open("w") as output:
                env[INHERITED_LOCK] = str(lock)  # the trial's process owns the folder
                code = (processes or TrialProcesses()).run(command, output, env, cwd, (lock,))
            results = completed_results(run_dir)
    except OSError as err:
        return Attempt("failed", {}, f"cannot run in {run_dir}: {err}")
    seconds = time.perf_counter() - start
    if code != 0 or results is None:
        lines = [ln for ln in (run_dir / TRIAL_LOG).read_text().splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("lifelong: error:")] or lines
        return Attempt("failed", {}, errors[-1] if errors else f"exit code {code}", seconds)
    return Attempt("ok", _accuracy(results), "", seconds)


def _accuracy(results: Raw) -> dict[str, float]:
    """Final average accuracy per protocol, then per ``validation <protocol>`` when measured."""
    scores = {p: e["summary"]["average_accuracy"] for p, e in results["protocols"].items()}
    for protocol, entry in results.get("validation", {}).items():
        scores[f"{VALIDATION} {protocol}"] = entry["average_accuracy"]
    return scores


def run_trial(
    trial: Trial, one_thread: bool, extra: tuple[str, ...], processes: TrialProcesses | None = None
) -> Attempt:
    """Run one trial from its resolved config with :func:`run_once`, ``extra`` flags added."""
    return run_once(extra, trial.run_dir, one_thread, trial.cwd, trial.config, processes)


def output_flags(tensorboard: bool, wandb: WandbTarget | None) -> tuple[str, ...]:
    """The ``lifelong run`` flags that give every trial the sweep's outputs."""
    flags: tuple[str, ...] = () if tensorboard else ("--no-tensorboard",)
    if wandb is not None:
        flags += ("--wandb", wandb.project, "--wandb-mode", wandb.mode)
        flags += ("--wandb_entity", wandb.entity) if wandb.entity else ()
    return flags


def check_backend(backend: str) -> None:
    """Fail before anything runs when the chosen backend is not installed."""
    if backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError as err:
            raise ConfigError(
                "--backend ray needs Ray: pip install 'lifelong[ray]' (or use the default "
                "--backend local)"
            ) from err


def run_sweep(
    sweep: Sweep,
    jobs: int = 1,
    backend: str = "local",
    tensorboard: bool = True,
    wandb: WandbTarget | None = None,
) -> list[tuple[Trial, Attempt]]:
    """Run every trial, ``jobs`` at a time; log each outcome to ``OUT/sweep.log`` and the logger.

    With ``wandb`` every trial logs its own W&B run (named by its folder) to that project.

    With ``backend="ray"`` each trial is a Ray task asking for one CPU (``jobs`` is ignored); the
    output folder and data paths must then be visible from every Ray node. When the iteration
    stops early (an exception such as ``KeyboardInterrupt``), the running trial processes are
    stopped and no further trial starts.
    """
    check_backend(backend)
    try:
        sweep.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunDirError(f"cannot create the sweep folder {sweep.out} ({err.strerror})") from err
    one_thread = jobs > 1 or backend == "ray"
    outcomes = []
    mapped = _ray_map if backend == "ray" else _local_map
    extra = output_flags(tensorboard, wandb)
    trials = closing(mapped(sweep.trials, jobs, one_thread, extra))  # stops them on errors
    with (sweep.out / "sweep.log").open("a") as record, trials as finished:
        record.write(f"{time.strftime('%F %T')} sweep {sweep.path}: {len(sweep.trials)} trials\n")
        for trial, attempt in finished:
            outcomes.append((trial, attempt))
            line = f"[{len(outcomes)}/{len(sweep.trials)}] {trial.label}: {_describe(attempt)}"
            (log.warning if attempt.status == "failed" else log.info)("%s", line)
            record.write(f"{time.strftime('%F %T')} {line}\n")
            record.flush()
    return outcomes


def _describe(attempt: Attempt) -> str:
    if attempt.status == "failed":
        return f"FAILED after {attempt.seconds:.1f} s: {attempt.error}"
    if attempt.status == "running elsewhere":
        return f"skipped, running elsewhere ({attempt.error} by another process)"
    scores = ", ".join(f"{p} {a:.2f}%" for p, a in attempt.accuracy.items())
    return f"{attempt.status}, {scores}" + (
        f" ({attempt.seconds:.1f} s)" if attempt.seconds else ""
    )


def _local_map(
    trials: Sequence[Trial], jobs: int, one_thread: bool, extra: tuple[str, ...]
) -> Generator[tuple[Trial, Attempt], None, None]:
    pool = ThreadPoolExecutor(max_workers=jobs)
    processes = TrialProcesses()
    try:
        futures = {pool.submit(run_trial, t, one_thread, extra, processes): t for t in trials}
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:  # on Ctrl-C or SIGTERM, stop the running trials and start no further one
        processes.stop_all()
        pool.shutdown(wait=True, cancel_futures=True)


def _ray_map(
    trials: Sequence[Trial], jobs: int, one_thread: bool, extra: tuple[str, ...]
) -> Generator[tuple[Trial, Attempt], None, None]:
    """Run the trials as Ray tasks of one CPU each, yielding them as they finish.

    Connects to the cluster named by ``RAY_ADDRESS`` when set, otherwise starts a local Ray
    instance (without its dashboard) for the sweep and shuts it down at the end. On an
    interruption, the trials not yet finished are cancelled (a forced cancel kills the Ray
    worker, and its trial process dies with it).
    """
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(include_dashboard=False, logging_level=logging.WARNING)
    task = ray.remote(num_cpus=1)(run_trial)
    pending = {task.remote(t, one_thread, extra): t for t in trials}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            yield pending.pop(ready[0]), ray.get(ready[0])
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()
