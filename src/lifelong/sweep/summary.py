"""Sweep summary: mean ± std over seeds per experiment and grid point, the best point marked.

Written as ``OUT/summary.md`` (table), ``OUT/summary.csv`` (one row per experiment, grid point
and protocol), ``OUT/summary.json`` and ``OUT/summary.png`` (the bar plot
of :func:`lifelong.reporting.compare.comparison_plot`; the means and stds are
:class:`lifelong.reporting.compare.Group` values, so they match ``lifelong compare`` on the same
run directories).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lifelong.checkpoint import atomic_write_text
from lifelong.reporting.compare import STD_NOTE, Group, comparison_plot
from lifelong.reporting.tables import csv_text
from lifelong.sweep.plan import Sweep, Trial
from lifelong.sweep.runner import TRIAL_LOG, VALIDATION, Attempt

SELECTION_NOTE = (
    "★ marks the best grid point of each experiment: the highest mean final average accuracy "
    "({protocol}) over seeds, among grid points whose runs all finished. It is chosen on the TEST "
    "split, because these runs hold out no validation images: the best value is optimistically "
    "biased; set dataset.validation (e.g. 0.1) to select on held-out training images, or re-run "
    "the chosen point on new seeds before reporting it."
)
VALIDATION_NOTE = (
    "★ marks the best grid point of each experiment: the highest mean final average accuracy on "
    "the validation images ({protocol}) over seeds, among grid points whose runs all finished. "
    "The test columns of that row are unbiased by the choice (they were not used to make it)."
)


def selection_protocol(protocols: Sequence[str]) -> str:
    """The score that picks the best point: validation of the first protocol when measured."""
    first = next(p for p in protocols if not p.startswith(VALIDATION))
    validation = f"{VALIDATION} {first}"
    return validation if validation in protocols else first


@dataclass(frozen=True)
class PointSummary:
    """The runs of one experiment at one grid point, over seeds."""

    experiment: str
    point: str
    groups: tuple[Group, ...]
    """One per protocol: the final average accuracy of each finished seed."""
    runs: int
    failed: int
    running_elsewhere: int = 0
    """Trials skipped because another process holds their folder (not finished here)."""

    @property
    def finished(self) -> int:
        """Runs with results."""
        return self.runs - self.failed - self.running_elsewhere

    def group(self, protocol: str) -> Group | None:
        """The group of ``protocol``, if any run finished."""
        return next((g for g in self.groups if g.protocol == protocol), None)


def summarize(sweep: Sweep, outcomes: Sequence[tuple[Trial, Attempt]]) -> list[PointSummary]:
    """Group outcomes by experiment and grid point, in the order of the sweep file."""
    attempts = {trial.run_dir: attempt for trial, attempt in outcomes}
    order: dict[tuple[str, str], list[Trial]] = {}
    for trial in sweep.trials:
        order.setdefault((trial.experiment, trial.point_label), []).append(trial)
    points = []
    for (experiment, point), trials in order.items():
        values: dict[str, list[float]] = {}
        failed = elsewhere = 0
        for trial in trials:
            attempt = attempts.get(trial.run_dir)
            if attempt is not None and attempt.status == "running elsewhere":
                elsewhere += 1
                continue
            if attempt is None or attempt.status == "failed":
                failed += 1
                continue
            for protocol, accuracy in attempt.accuracy.items():
                values.setdefault(protocol, []).append(accuracy)
        dataset = str(trials[0].config["dataset"]["name"])
        label = f"{experiment} ({point})" if point != "–" else experiment
        groups = tuple(Group(dataset, label, p, tuple(v)) for p, v in values.items())
        points.append(PointSummary(experiment, point, groups, len(trials), failed, elsewhere))
    return points


def protocols_of(points: Sequence[PointSummary]) -> list[str]:
    """Protocols in the order the runs report them (test first, then ``validation <p>``)."""
    return list(dict.fromkeys(g.protocol for p in points for g in p.groups))


def best_points(points: Sequence[PointSummary], protocol: str) -> set[tuple[str, str]]:
    """``(experiment, point)`` of each experiment's best grid point (experiments with a grid)."""
    best: dict[str, tuple[float, str]] = {}
    for p in points:
        group = p.group(protocol)
        grid = sum(q.experiment == p.experiment for q in points) > 1
        if not grid or p.finished < p.runs or group is None:
            continue
        if p.experiment not in best or group.mean > best[p.experiment][0]:
            best[p.experiment] = (group.mean, p.point)
    return {(experiment, point) for experiment, (_mean, point) in best.items()}


def summary_table(points: Sequence[PointSummary]) -> str:
    """Markdown table: mean ± std (n) per protocol, finished/failed runs, the best point."""
    protocols = protocols_of(points)
    chosen = selection_protocol(protocols) if protocols else ""
    best = best_points(points, chosen) if protocols else set()
    lines = ["| experiment | grid point | " + " | ".join(protocols) + " | runs | best |"]
    lines.append("|---|---|" + "---|" * len(protocols) + "---|---|")
    for p in points:
        cells = []
        for protocol in protocols:
            g = p.group(protocol)
            cells.append(g.cell() if g else "–")
        runs = f"{p.finished}/{p.runs}" + (f", {p.failed} FAILED" if p.failed else "")
        runs += f", {p.running_elsewhere} running elsewhere" if p.running_elsewhere else ""
        mark = "★" if (p.experiment, p.point) in best else ""
        lines.append(f"| {p.experiment} | {p.point} | {' | '.join(cells)} | {runs} | {mark} |")
    notes = ["", STD_NOTE]
    if best:
        note = VALIDATION_NOTE if chosen.startswith(VALIDATION) else SELECTION_NOTE
        notes.append(note.format(protocol=chosen))
    return "\n".join(lines + notes) + "\n"


CSV_COLUMNS = (
    "experiment", "point", "protocol", "n", "mean", "std", "runs", "failed", "running_elsewhere",
    "best",
)  # fmt: skip
"""The columns of ``summary.csv`` (``std``: sample std, empty for one run)."""


def summary_csv(points: Sequence[PointSummary], best: set[tuple[str, str]]) -> str:
    """One row per experiment, grid point and protocol (a point with no finished run: no row)."""
    rows = [
        {
            "experiment": p.experiment,
            "point": p.point,
            "protocol": g.protocol,
            "n": len(g.values),
            "mean": g.mean,
            "std": g.std,
            "runs": p.runs,
            "failed": p.failed,
            "running_elsewhere": p.running_elsewhere,
            "best": (p.experiment, p.point) in best,
        }
        for p in points
        for g in p.groups
    ]
    return csv_text(CSV_COLUMNS, rows)


def write_summary(sweep: Sweep, outcomes: Sequence[tuple[Trial, Attempt]]) -> tuple[str, Path]:
    """Write ``summary.md``, ``summary.csv``, ``summary.json`` and ``summary.png`` (if any run).

    Returns:
        The markdown text (table, notes and the failed trials) and the path of ``summary.md``.
    """
    points = summarize(sweep, outcomes)
    failures = [
        f"- {trial.label}: {attempt.error} (log: {trial.run_dir / TRIAL_LOG})"
        for trial, attempt in outcomes
        if attempt.status == "failed"
    ]
    elsewhere = [
        f"- {trial.label}: {trial.run_dir}"
        for trial, attempt in outcomes
        if attempt.status == "running elsewhere"
    ]
    text = f"# Sweep {sweep.path.name}\n\n" + summary_table(points)
    if failures:
        text += "\nFailed trials:\n\n" + "\n".join(failures) + "\n"
    if elsewhere:
        text += (
            "\nTrials running elsewhere (skipped: another process holds their folder's lock; "
            "run the sweep again once it ends):\n\n" + "\n".join(elsewhere) + "\n"
        )
    path = sweep.out / "summary.md"
    atomic_write_text(path, text)
    protocols = protocols_of(points)
    best = best_points(points, selection_protocol(protocols)) if protocols else set()
    records = [
        {
            "experiment": p.experiment,
            "point": p.point,
            "runs": p.runs,
            "failed": p.failed,
            "running_elsewhere": p.running_elsewhere,
            "best": (p.experiment, p.point) in best,
            "accuracy": {
                g.protocol: {"mean": g.mean, "std": g.std, "values": g.values} for g in p.groups
            },
        }
        for p in points
    ]
    atomic_write_text(sweep.out / "summary.json", json.dumps(records, indent=2) + "\n")
    atomic_write_text(sweep.out / "summary.csv", summary_csv(points, best))
    groups = [
        Group(g.dataset, g.label + (" ★" * ((p.experiment, p.point) in best)), g.protocol, g.values)
        for p in points
        for g in p.groups
    ]
    if groups:
        comparison_plot(groups, sweep.out / "summary.png")
    return text, path
