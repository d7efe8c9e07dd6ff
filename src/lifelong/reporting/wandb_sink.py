"""Weights & Biases logging (``lifelong run --wandb PROJECT``), an optional extra.

``pip install "lifelong[wandb]"``; wandb is imported only when a run asks for it. A run sends its
resolved config when it starts, the step losses (``train/*`` over ``train/step``) and the average
accuracies after each experience (``eval/*`` over ``eval/experience``) while it trains, then at
the end the accuracy matrices as one table (``accuracy_matrix``: protocol, after experience,
tested experience, accuracy), the summary metrics (``PROTOCOL/METRIC`` in the run summary) and the
run directory's plots, the accuracy-matrix heatmap among them (``plots/NAME``, ``NAME`` the
file's path in the run directory without ``.png``).

wandb's own folder is ``RUN_DIR/wandb``. In offline mode nothing leaves the machine: upload the
run later with ``wandb sync RUN_DIR/wandb/offline-run-*``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifelong.errors import ConfigError

log = logging.getLogger(__name__)
WANDB_MODES = ("online", "offline")
"""Where a W&B run goes: to the server (``wandb login`` first), or to files to sync later."""
FORBIDDEN = set("/\\#?%:")
"""Characters W&B refuses in project and entity names."""
MAX_NAME = 128


def _check_name(what: str, name: str) -> None:
    if not name or len(name) > MAX_NAME or FORBIDDEN & set(name) or not name.isprintable():
        raise ConfigError(
            f"{what} {name[:MAX_NAME]!r} is not a Weights & Biases name: 1 to {MAX_NAME} "
            "printable characters, none of / \\ # ? % :"
        )


@dataclass(frozen=True)
class WandbTarget:
    """Where a run's Weights & Biases logs go.

    Attributes:
        project: The W&B project (``--wandb PROJECT``).
        mode: ``online`` (the server; needs ``wandb login``) or ``offline`` (files only).
        entity: The W&B user or team (``None``: wandb's default, e.g. ``WANDB_ENTITY``).
    """

    project: str
    mode: str = "online"
    entity: str | None = None

    def __post_init__(self) -> None:
        _check_name("--wandb project", self.project)
        if self.entity is not None:
            _check_name("wandb entity", self.entity)
        if self.mode not in WANDB_MODES:
            raise ConfigError(f"--wandb-mode must be one of {', '.join(WANDB_MODES)}")


def import_wandb() -> Any:
    """The ``wandb`` module, or one clear error saying how to install it."""
    try:
        import wandb  # type: ignore[import-not-found,unused-ignore]
    except ImportError as err:
        raise ConfigError(
            '--wandb needs the wandb package: pip install "lifelong[wandb]" (or drop --wandb)'
        ) from err
    return wandb


class WandbSink:
    """One W&B run that receives a lifelong run's logs (see the module docstring).

    Args:
        target: Project, mode and entity.
        run_dir: The run directory: its name names the W&B run, and wandb writes in it.
        config: The resolved run config (``RunConfig.to_raw()``).

    Raises:
        ConfigError: when wandb is not installed or cannot start a run (e.g. not logged in).
    """

    def __init__(self, target: WandbTarget, run_dir: Path, config: dict[str, Any]) -> None:
        wandb = import_wandb()
        self._wandb = wandb
        try:
            self._run: Any = wandb.init(
                project=target.project,
                entity=target.entity,
                mode=target.mode,
                dir=str(run_dir),
                name=run_dir.name,
                config=config,
                settings=wandb.Settings(silent=True, console="off"),  # run.log has the lines
            )
        except wandb.errors.Error as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ConfigError(
                f"Weights & Biases could not start a run ({first}): run `wandb login`, "
                "or log to files with --wandb-mode offline"
            ) from err
        for axis, values in (("train/step", "train/*"), ("eval/experience", "eval/*")):
            self._run.define_metric(axis, hidden=True)
            self._run.define_metric(values, step_metric=axis)
        if target.mode == "offline":
            folder = Path(self._run.dir).parent
            log.info("Weights & Biases: offline run %s (upload it with `wandb sync`)", folder)
        else:
            log.info("Weights & Biases: %s", self._run.url)

    def step(self, step: int, losses: dict[str, float]) -> None:
        """Log one step record's losses (``train/NAME``) at global step ``step``."""
        self._run.log({"train/step": step, **{f"train/{k}": v for k, v in losses.items()}})

    def evaluation(self, experience: int, means: dict[str, float], seconds: float) -> None:
        """Log the average accuracies after training ``experience`` (0-based) and its time."""
        values = {f"eval/{protocol}/average_accuracy": m for protocol, m in means.items()}
        self._run.log({"eval/experience": experience + 1, **values, "eval/train_seconds": seconds})

    def finish(self, results: dict[str, Any], run_dir: Path) -> None:
        """Log the results (table, summary, plots of ``run_dir``) and close the W&B run."""
        rows = [
            [protocol, i + 1, j + 1, value]
            for protocol, entry in results["protocols"].items()
            for i, row in enumerate(entry["matrix"][: results["experiences_trained"]])
            for j, value in enumerate(row)
            if value is not None
        ]
        columns = ["protocol", "after_experience", "tested_experience", "accuracy"]
        logged: dict[str, Any] = {"accuracy_matrix": self._wandb.Table(columns, rows)}
        for path in plots_of(run_dir):
            name = path.relative_to(run_dir).with_suffix("").as_posix()
            logged[f"plots/{name}"] = self._wandb.Image(str(path))
        self._run.log(logged)
        self._run.summary.update(summary_of(results))
        self._run.finish()

    def abort(self) -> None:
        """Close the W&B run as failed (the lifelong run stopped with an error)."""
        self._run.finish(exit_code=1)


def plots_of(run_dir: Path) -> list[Path]:
    """The PNG plots of a run directory (wandb's own folder left out)."""
    return sorted(p for p in run_dir.rglob("*.png") if "wandb" not in p.relative_to(run_dir).parts)


def summary_of(results: dict[str, Any]) -> dict[str, float]:
    """The summary metrics as flat ``PROTOCOL/METRIC`` numbers (undefined ones left out)."""
    summary: dict[str, float] = {
        "experiences_trained": results["experiences_trained"],
        "train_seconds": sum(results["train_seconds"]),
    }
    for protocol, entry in results["protocols"].items():
        for metric, value in entry["summary"].items():
            if isinstance(value, int | float) and math.isfinite(value):
                summary[f"{protocol}/{metric}"] = value
    for protocol, entry in results.get("validation", {}).items():
        summary[f"{protocol}/validation_accuracy"] = entry["average_accuracy"]
    return summary
