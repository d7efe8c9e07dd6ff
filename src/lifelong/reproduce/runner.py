"""Run a ledger row: its seeds as a sweep (resumable, local processes or Ray), or a smoke run.

A row becomes a sweep of one experiment (``common``: the row's preset, its overrides, the data
root and the device; ``seeds``: the row's or the user's) planned by
:func:`lifelong.sweep.plan_sweep`, so a row resolves its configuration exactly as ``lifelong run
--preset PRESET`` would. The runs go to ``OUT/<scenario>/<preset>[-<overrides hash>][-<device>]/
run/seed<N>``; rows that share a preset and overrides (the class-IL and task-IL cells of one
table) share their runs, and running a row again skips the seeds that finished.

A smoke run (:func:`smoke_row`) plans the same sweep on tiny data with
:func:`lifelong.reproduce.smoke_data.smoke_overrides` added, for the row's first seed, and runs
it in this process (many rows in one process: CI runs every row this way).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifelong.config import Raw, resolve
from lifelong.errors import ConfigError, DataError
from lifelong.reproduce.ledger import Row
from lifelong.reproduce.smoke_data import smoke_overrides, write_tiny_data
from lifelong.sweep import Sweep, plan_sweep, run_sweep, write_summary
from lifelong.sweep.plan import completed_results, quiet_logger

log = logging.getLogger(__name__)
EXPERIMENT = "run"


@dataclass(frozen=True)
class Reproduction:
    """What running a row gave: the row protocol's final average accuracy per finished seed."""

    row: Row
    seeds: tuple[int, ...]
    values: tuple[float, ...]
    failures: tuple[str, ...]
    seconds: float
    folder: Path
    peak_device_mib: float | None = None
    """The largest peak CUDA memory of the finished seeds (None on the CPU)."""


def run_folder(out: Path, row: Row, device: str, extra: Sequence[tuple[str, Any]] = ()) -> Path:
    """``OUT/<scenario>/<preset>[-<hash of the overrides>][-<device>]``."""
    name = row.preset.split("/", 1)[1]
    fields = [*row.overrides, *extra]
    if fields:
        name += "-" + hashlib.sha1(repr(sorted(fields, key=str)).encode()).hexdigest()[:8]
    if device != "cpu":
        name += "-" + device.replace(":", "")
    return out / row.scenario / name


def plan_row(
    row: Row,
    seeds: Sequence[int],
    folder: Path,
    data_root: str | None,
    device: str,
    extra: Sequence[tuple[str, Any]] = (),
) -> Sweep:
    """The row's sweep: its preset and overrides, ``extra`` on top, one trial per seed."""
    common: Raw = {"preset": row.preset, "device": device, **dict(row.overrides), **dict(extra)}
    if data_root is not None:
        common["dataset.root"] = data_root
    data = {"common": common, "experiments": {EXPERIMENT: {}}, "seeds": list(seeds)}
    try:
        return plan_sweep(data, Path(f"<ledger row {row.id}>"), folder)
    except ConfigError as err:
        raise ConfigError(f"ledger row {row.id!r} does not resolve: {err}") from err


def _value(row: Row, accuracy: dict[str, float]) -> float:
    if row.protocol not in accuracy:
        reported = ", ".join(accuracy) or "nothing"
        raise ConfigError(f"row {row.id!r}: its runs report {reported}, not {row.protocol}")
    return float(accuracy[row.protocol])


def check_data(sweep: Sweep) -> None:
    """Fail before anything runs when a trial's data folder is missing or holds no dataset.

    The first unfinished trial's stream is built in this process (the dataset is loaded once
    more by the trial; small next to training); finished trials are not checked again.
    """
    from lifelong.data.catalog import build_stream

    for trial in sweep.trials:
        if completed_results(trial.run_dir) is not None:
            continue
        cfg = resolve(trial.config)
        if cfg.dataset.name != "seq-digits" and not Path(cfg.dataset.root).expanduser().is_dir():
            raise DataError(
                f"data root {cfg.dataset.root} is not a folder: pass --data-root DIR with the "
                f"data of {cfg.dataset.name} in its official layout"
            )
        build_stream(cfg.dataset, trial.seed)
        return


def reproduce_row(
    row: Row,
    seeds: Sequence[int],
    out: Path,
    data_root: str | None,
    device: str,
    jobs: int = 1,
    backend: str = "local",
    precision: str = "fp32",
) -> Reproduction:
    """Run (or resume) the row's seeds as ``lifelong run`` processes; collect the accuracies.

    ``precision`` is the runs' ``train.precision``; bf16 runs go to their own folder.

    Raises:
        ConfigError, DataError: before anything runs (a bad row, missing data).
    """
    extra = [] if precision == "fp32" else [("train.precision", precision)]
    folder = run_folder(out, row, device, extra)
    sweep = plan_row(row, seeds, folder, data_root, device, extra)
    check_data(sweep)
    start = time.perf_counter()
    outcomes = run_sweep(sweep, jobs, backend, tensorboard=False)
    write_summary(sweep, outcomes)
    values, done, failures, peaks = [], [], [], []
    for trial, attempt in sorted(outcomes, key=lambda pair: pair[0].seed):
        if attempt.status in ("ok", "done before"):
            values.append(_value(row, attempt.accuracy))
            done.append(trial.seed)
            peaks.append(_peak_device_mib(trial.run_dir))
        else:
            failures.append(f"seed {trial.seed}: {attempt.status}: {attempt.error}")
    seconds = time.perf_counter() - start
    measured = [p for p in peaks if p is not None]
    peak = max(measured) if measured else None
    return Reproduction(row, tuple(done), tuple(values), tuple(failures), seconds, folder, peak)


def _peak_device_mib(run_dir: Path) -> float | None:
    """The run's peak CUDA memory from its ``results.json`` cost (None when not measured)."""
    results = completed_results(run_dir)
    cost = results.get("cost") if results is not None else None
    peak = cost.get("peak_device_mib") if isinstance(cost, dict) else None
    return float(peak) if isinstance(peak, int | float) and peak == peak else None


def smoke_row(row: Row, workdir: Path, device: str = "cpu") -> Reproduction:
    """Run the row's first seed for a few iterations on tiny data, in this process.

    Runs that finished in ``workdir`` before (another row with the same preset and overrides)
    are reused. Nothing is written outside ``workdir``.

    Raises:
        ConfigError: when the row does not resolve, or its runs do not report its protocol.
    """
    from lifelong.running.run import execute

    root = str(write_tiny_data(workdir / "data", row.scenario))
    seeds = row.seeds[:1]
    base = plan_row(row, seeds, workdir / "plan", root, device)
    extra = [*smoke_overrides(base.trials[0].config), *row.smoke]
    folder = run_folder(workdir / "runs", row, device, extra)
    sweep = plan_row(row, seeds, folder, root, device, extra)
    start = time.perf_counter()
    values = []
    with quiet_logger("lifelong"):  # one INFO line per experience otherwise
        for trial in sweep.trials:
            results = completed_results(trial.run_dir)
            if results is None:
                results = execute(
                    resolve(trial.config), trial.run_dir, tensorboard=False, plots=False
                )
            accuracy = {
                p: e["summary"]["average_accuracy"] for p, e in results["protocols"].items()
            }
            values.append(_value(row, accuracy))
    return Reproduction(row, seeds, tuple(values), (), time.perf_counter() - start, folder)


SmokeOutcome = tuple[Row, Reproduction | None, str]
"""A row, its smoke run (None when it failed) and the error (empty when it ran)."""


def _smoke_group(rows: tuple[Row, ...], workdir: Path, device: str, threads: int) -> list[Any]:
    """Smoke-run rows that share their runs, one after the other (a worker process's task)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    outcomes: list[SmokeOutcome] = []
    for row in rows:
        try:
            outcomes.append((row, smoke_row(row, workdir, device), ""))
        except Exception as err:  # a broken row is reported; the others still run
            message = " ".join(str(err).split())[:300]
            outcomes.append((row, None, f"{type(err).__name__}: {message}"))
    return outcomes


def smoke_rows(
    rows: Sequence[Row], workdir: Path, device: str = "cpu", jobs: int = 1
) -> Iterator[SmokeOutcome]:
    """Smoke-run every row; yield each outcome as it is known (failures do not stop the rest).

    Rows with the same preset and fields share their run folder and go to the same worker, so two
    processes never train in one folder; with ``jobs > 1`` the groups run in ``jobs`` processes of
    one thread each. The tiny data are written before any run starts.
    """
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for row in rows:
        write_tiny_data(workdir / "data", row.scenario)
        groups.setdefault((row.preset, row.overrides, row.smoke), []).append(row)
    tasks = [tuple(group) for group in groups.values()]
    if jobs == 1:
        for task in tasks:
            yield from _smoke_group(task, workdir, device, 0)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=context) as pool:
        futures = [pool.submit(_smoke_group, task, workdir, device, 1) for task in tasks]
        for future in as_completed(futures):
            yield from future.result()
