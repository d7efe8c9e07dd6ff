"""Weights & Biases logging (``lifelong run --wandb PROJECT``), an optional extra.

``pip install "lifelong[wandb]"``; wandb is imported only when a run asks for it, and then in a
child process (:mod:`lifelong.reporting.wandb_worker`) that overlaps the run. A run sends its
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

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifelong.errors import ConfigError
from lifelong.reporting.child_process import ChildProcess
from lifelong.reporting.wandb_worker import WANDB_MISSING

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


def require_wandb() -> None:
    """Check that wandb is installed (without importing it), or fail with one clear line."""
    if importlib.util.find_spec("wandb") is None:
        raise ConfigError(WANDB_MISSING)


class WandbSink:
    """One W&B run that receives a lifelong run's logs, through a helper process.

    The helper (:mod:`lifelong.reporting.wandb_worker`) starts with the sink, before the run loads
    its data, and imports wandb meanwhile; :meth:`open` starts the W&B run there while the run
    trains. The logging calls only write to the helper's pipe. Offline, a failure of the helper
    is raised at the next call; online, :meth:`open` waits for the W&B run, so a missing login
    fails before training starts.

    Args:
        target: Project, mode and entity.

    Raises:
        ConfigError: when wandb is not installed.
    """

    def __init__(self, target: WandbTarget) -> None:
        require_wandb()
        self.target = target
        self._helper = ChildProcess(
            "lifelong.reporting.wandb_worker", "the Weights & Biases process"
        )

    def open(self, run_dir: Path, config: dict[str, Any], draws_plots: bool) -> None:
        """Start the W&B run in ``run_dir`` (its name names the run) with the resolved config.

        Online, wait until it has started (a missing login fails here, before training).

        Args:
            run_dir: The run directory.
            config: The resolved run config (``RunConfig.to_raw()``).
            draws_plots: The helper draws the run's PNG plots at :meth:`finish` (it loads
                matplotlib while the run trains).
        """
        target = self.target
        init = ("init", target.project, target.entity, target.mode, run_dir, config, draws_plots)
        self._helper.send(*init)
        if target.mode == "online":
            self._helper.wait_for("ready")
            log.info("Weights & Biases: run %s started", run_dir.name)
        else:
            log.info(
                "Weights & Biases: offline run in %s (upload it with `wandb sync`)",
                run_dir / "wandb",
            )
        self._helper.send("warm-up")

    def step(self, step: int, losses: dict[str, float]) -> None:
        """Log one step record's losses (``train/NAME``) at global step ``step``."""
        self._helper.send("step", step, losses)

    def evaluation(self, experience: int, means: dict[str, float], seconds: float) -> None:
        """Log the average accuracies after training ``experience`` (0-based) and its time."""
        self._helper.send("evaluation", experience, means, seconds)

    def finish(self, results: dict[str, Any], run_dir: Path) -> None:
        """Send the results (table, summary, plots of ``run_dir``); :meth:`wait` closes the run.

        The helper draws the plots first if :meth:`open` asked it to. The run's other end-of-run
        outputs (the PDF) can be written between the two calls.
        """
        self._helper.send("finish", results, run_dir)

    def wait(self) -> None:
        """Wait until the helper has logged the results and closed the W&B run."""
        self._helper.wait_for("done")  # run.finish() has returned: the W&B files are complete
        self._helper.close(wait=False)

    def close(self) -> None:
        """Stop the helper; a W&B run it has not finished is closed as failed."""
        self._helper.close()
