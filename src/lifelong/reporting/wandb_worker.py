"""The helper process that talks to Weights & Biases for one run (``--wandb``).

Importing wandb and starting a W&B run cost about 1.5 s of CPU here, and logging the results a few
tenths more. :class:`~lifelong.reporting.wandb_sink.WandbSink` starts this helper
(:mod:`lifelong.reporting.child_process`) before the run loads its data, so that work overlaps
the run instead of adding to it. The helper also draws the run's PNG plots, which it logs: it
loads matplotlib while the run trains, and the plots then wait for no other process.

Messages: ``("init", project, entity, mode, run_dir, config, draws_plots)`` starts the W&B run
(answer ``ready``); ``("step", step, losses)`` and ``("evaluation", experience, means,
seconds)`` log values; ``("finish", results, run_dir)`` draws the plots (when asked at
``init``), logs the results and plots and closes the run (answer ``done``). The end of the
input closes the run as failed.
"""

from __future__ import annotations

import math
import secrets
from pathlib import Path
from typing import Any

from lifelong.reporting.child_process import first_line, lower_priority, serve

WANDB_MISSING = '--wandb needs the wandb package: pip install "lifelong[wandb]" (or drop --wandb)'


RUN_ID_FILE = "wandb-run-id"
"""The file in the run directory that keeps the W&B run's id, so a resumed run continues it."""


def start_run(wandb: Any, message: tuple[Any, ...]) -> Any:
    """``wandb.init`` from an ``init`` message, with the step axes defined.

    The W&B run id is kept in the run directory (:data:`RUN_ID_FILE`): ``lifelong run --resume``
    with ``--wandb`` continues the same W&B run (``resume="allow"``) instead of starting another.
    Offline, each session writes its own folder under ``wandb/``; ``wandb sync`` joins them by id.
    """
    _, project, entity, mode, run_dir, config = message
    id_file = Path(run_dir) / RUN_ID_FILE
    run_id = id_file.read_text().strip() if id_file.is_file() else secrets.token_hex(4)
    try:
        run = wandb.init(
            project=project,
            entity=entity,
            mode=mode,
            dir=str(run_dir),
            name=Path(run_dir).name,
            id=run_id,
            resume="allow",
            config=config,
            settings=wandb.Settings(silent=True, console="off"),  # run.log has the lines
        )
    except wandb.errors.Error as err:
        raise RuntimeError(
            f"Weights & Biases could not start a run ({first_line(err)}): run `wandb login`, "
            "or log to files with --wandb-mode offline"
        ) from err
    id_file.write_text(run_id + "\n")
    for axis, values in (("train/step", "train/*"), ("eval/experience", "eval/*")):
        run.define_metric(axis, hidden=True)
        run.define_metric(values, step_metric=axis)
    return run


def log_results(wandb: Any, run: Any, results: dict[str, Any], run_dir: Path) -> None:
    """Log the accuracy matrices as one table, the run directory's plots and the summary."""
    rows = [
        [protocol, i + 1, j + 1, value]
        for protocol, entry in results["protocols"].items()
        for i, row in enumerate(entry["matrix"][: results["experiences_trained"]])
        for j, value in enumerate(row)
        if value is not None
    ]
    columns = ["protocol", "after_experience", "tested_experience", "accuracy"]
    logged: dict[str, Any] = {"accuracy_matrix": wandb.Table(columns, rows)}
    for path in plots_of(run_dir):
        name = path.relative_to(run_dir).with_suffix("").as_posix()
        logged[f"plots/{name}"] = wandb.Image(str(path))
    run.log(logged)
    run.summary.update(summary_of(results))


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


class WandbWorker:
    """The helper's state: the wandb module and, once started, the W&B run."""

    def __init__(self) -> None:
        try:
            import wandb  # type: ignore[import-not-found,unused-ignore]
        except ImportError as err:
            raise ImportError(WANDB_MISSING) from err
        self.wandb = wandb
        self.run: Any = None
        self.draws_plots = False

    def handle(self, message: tuple[Any, ...]) -> str | None:
        """Act on one message from the run; return the answer line, if any."""
        kind = message[0]
        if kind == "init":
            self.run = start_run(self.wandb, message[:-1])
            self.draws_plots = message[-1]
            return "ready"
        if kind == "warm-up" and self.draws_plots:
            from lifelong.reporting.report import warm_up_figures

            warm_up_figures()
        elif kind == "step":
            losses = {f"train/{name}": value for name, value in message[2].items()}
            self.run.log({"train/step": message[1], **losses})
        elif kind == "evaluation":
            _, experience, means, seconds = message
            values = {f"eval/{protocol}/average_accuracy": m for protocol, m in means.items()}
            values["eval/train_seconds"] = seconds
            self.run.log({"eval/experience": experience + 1, **values})
        elif kind == "finish":
            if self.draws_plots:
                from lifelong.reporting.report import write_plots

                write_plots(message[1], Path(message[2]))
            log_results(self.wandb, self.run, message[1], Path(message[2]))
            self.run.finish()
            return "done"
        return None

    def fail(self) -> None:
        """Close the W&B run as failed (the lifelong run stopped without finishing)."""
        if self.run is not None:
            self.run.finish(exit_code=1)


def main() -> None:
    """Import wandb, then serve the run's messages."""
    lower_priority()
    try:
        worker = WandbWorker()
    except ImportError as err:
        print(f"error: {err}", flush=True)
        return
    serve(worker.handle, worker.fail)


if __name__ == "__main__":
    main()
