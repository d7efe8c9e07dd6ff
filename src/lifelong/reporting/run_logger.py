"""Step and evaluation logs: ``metrics.jsonl`` and TensorBoard events in the run directory."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch

from lifelong.checkpoint import atomic_write_text
from lifelong.errors import NonFiniteLossError
from lifelong.reporting.live_plot import LivePlot
from lifelong.reporting.wandb_sink import WandbSink
from lifelong.types import StepOutput

log = logging.getLogger(__name__)


TENSORBOARD_SECONDS = 2.0
"""Step records reach TensorBoard's writer at most this often (and at every evaluation)."""


class RunLogger:
    """Accumulates step outputs without synchronising; writes averages every ``log_every`` steps.

    ``metrics.jsonl`` gets each record at once. TensorBoard's scalars are handed to its writer in
    bursts, at most every :data:`TENSORBOARD_SECONDS` and at each evaluation: each hand-over wakes
    the writer's thread, which then competes with the training step for the interpreter lock
    (about 0.15 s over a 6,000-step seq-mnist run when handed over every record).

    Every flush checks the averaged loss: a NaN or infinite loss stops the run with
    :class:`NonFiniteLossError` before anything (such as a checkpoint) is overwritten.

    Args:
        run_dir: Where ``metrics.jsonl`` and ``tensorboard/`` go; ``None`` logs nothing to disk.
        log_every: Steps between records.
        tensorboard: Also write TensorBoard events.
        live: Also send the values to live curves (``--visdom``).
        wandb: Also send the values to Weights & Biases (``--wandb``).
    """

    def __init__(
        self,
        run_dir: Path | None,
        log_every: int,
        tensorboard: bool = True,
        live: LivePlot | None = None,
        wandb: WandbSink | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.live = live
        self.wandb = wandb
        self.log_every = log_every
        self.global_step = 0
        self._pending: list[StepOutput] = []
        self._lr: float | None = None
        self._since = time.perf_counter()
        self._writer: Any = None
        self._tensorboard = tensorboard and run_dir is not None
        self._scalars: list[tuple[str, float, int]] = []  # for TensorBoard, not handed over yet
        self._handed = time.perf_counter()
        self._jsonl = None if run_dir is None else (run_dir / "metrics.jsonl").open("a")

    def _tb(self) -> Any:
        if self._writer is None and self._tensorboard and self.run_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(
                str(self.run_dir / "tensorboard"), purge_step=self.global_step
            )
        return self._writer

    def step(self, out: StepOutput, experience: int, epoch: int, lr: float | None = None) -> None:
        """Record one step's output (no host-device synchronisation) and the learning rate."""
        self._pending.append(out)
        self._lr = lr
        self.global_step += 1
        if len(self._pending) >= self.log_every:
            self.flush(experience, epoch)

    def restart_clock(self) -> None:
        """Start the ``seconds`` of the next step record now.

        The loop calls it as each experience's training starts, so evaluation and checkpoint
        time stay out of the step records.
        """
        self._since = time.perf_counter()

    def flush(self, experience: int, epoch: int) -> None:
        """Average the pending steps, check them for NaN/inf, and write one record."""
        if not self._pending:
            return
        names = sorted({name for out in self._pending for name in out.terms})
        losses = torch.stack([out.loss.float() for out in self._pending]).mean()
        terms = [
            torch.stack([o.terms[n].float() for o in self._pending if n in o.terms]).mean()
            for n in names
        ]
        values = torch.stack([losses, *terms]).tolist()
        self._pending.clear()
        record = {
            "step": self.global_step,
            "experience": experience,
            "epoch": epoch,
            "loss": values[0],
        }
        record.update(zip(names, values[1:], strict=True))
        now = time.perf_counter()
        record["lr"], record["seconds"], self._since = self._lr, now - self._since, now
        if not math.isfinite(values[0]):
            raise NonFiniteLossError(
                f"the loss became {values[0]} at step {self.global_step} "
                f"(experience {experience}): "
                "lower the learning rate (--lr) or check the inputs"
            )
        self._write({"kind": "step", **record})
        if self._tensorboard:
            self._scalars += [(f"train/{k}", record[k], self.global_step) for k in ("loss", *names)]
            if now - self._handed >= TENSORBOARD_SECONDS:
                self._hand_over()
        if self.live is not None:
            self.live.scalars("train", self.global_step, {k: record[k] for k in ("loss", *names)})
        if self.wandb is not None:
            self.wandb.step(self.global_step, {k: record[k] for k in ("loss", *names)})

    def evaluation(self, experience: int, row: dict[str, list[float]], seconds: float) -> None:
        """Record the accuracies after training ``experience``."""
        trained = {p: [v for v in values[: experience + 1]] for p, values in row.items()}
        means = {p: sum(v) / len(v) for p, v in trained.items()}
        summary = ", ".join(f"{p} {m:.2f}" for p, m in means.items())
        log.info(
            "after experience %d: average accuracy %s (%.1fs)", experience + 1, summary, seconds
        )
        self._write({"kind": "eval", "experience": experience, "accuracy": row, "seconds": seconds})
        if self._tensorboard:
            for protocol, mean in means.items():
                self._scalars.append((f"eval/{protocol}/average_accuracy", mean, experience + 1))
            self._hand_over()
            self._tb().flush()
        if self.live is not None:
            self.live.scalars("eval", experience + 1, means)
        if self.wandb is not None:
            self.wandb.evaluation(experience, means, seconds)

    def _hand_over(self) -> None:
        """Give the waiting scalars to TensorBoard's writer."""
        writer = self._tb()
        for tag, value, step in self._scalars:
            writer.add_scalar(tag, value, step)
        self._scalars.clear()
        self._handed = time.perf_counter()

    def _write(self, record: dict[str, Any]) -> None:
        if self._jsonl is not None:
            self._jsonl.write(json.dumps(record) + "\n")
            self._jsonl.flush()

    def close(self) -> None:
        """Close the files."""
        if self._jsonl is not None:
            self._jsonl.close()
        if self._scalars:
            self._hand_over()
        if self._writer is not None:
            self._writer.close()


def truncate_metrics(path: Path, step: int, next_experience: int) -> None:
    """Drop records written after a checkpoint: steps past ``step``, later evaluations."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("kind") == "step" and record["step"] > step:
            continue
        if record.get("kind") == "eval" and record["experience"] >= next_experience:
            continue
        kept.append(line)
    atomic_write_text(path, "".join(f"{line}\n" for line in kept))
