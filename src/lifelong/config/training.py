"""``TrainConfig``: how the training loop (:mod:`lifelong.running.train`) trains and evaluates."""

from __future__ import annotations

from dataclasses import dataclass

from lifelong.errors import ConfigError
from lifelong.evaluation.probe_names import PROBE_KINDS, PROBING_MODES

MAX_EPOCHS = 100_000
"""The most passes over an experience (papers use at most a few hundred)."""
MAX_ITERS = 1_000_000_000
"""The most iterations per experience (papers use at most a few thousand)."""
PRECISIONS = ("fp32", "bf16")
"""The training precisions: full float32, or bfloat16 autocast (no loss scaling needed)."""
MAX_COUNT = 2**31 - 1
"""The largest batch size, step count or interval: torch indexes tensors with 32-bit counts."""


@dataclass(frozen=True)
class TrainConfig:
    """How the loop trains and evaluates."""

    epochs: int = 1
    """Epochs per experience (ignored when ``iters`` is set)."""
    iters: int | None = None
    """Fixed number of iterations per experience (as in the BI-R code); overrides ``epochs``.
    They run as passes over the data (epochs, the last one partial), so epoch-counted
    schedules keep their meaning."""
    batch_size: int = 32
    """Examples of the current experience per step."""
    eval_batch_size: int = 1000
    """Test batch size."""
    log_every: int = 50
    """Steps between step-log records; the loss is also checked for NaN/inf there."""
    chunk_batches: int = 64
    """Batches gathered and augmented in one tensor operation (speed only, not semantics)."""
    evaluate_future: bool = True
    """Evaluate not-yet-trained experiences too (the untrained row feeds forward transfer)."""
    progress: bool = True
    """Show progress bars (only ever on a terminal: off one, a run logs one line per experience)."""
    checkpoint_every: int = 0
    """Experiences between checkpoints (0: automatic, about 20 per stream; the last is always)."""
    checkpoint_minutes: float = 10.0
    """Also checkpoint at the first boundary this many minutes after the previous checkpoint."""
    precision: str = "fp32"
    """Training forward passes in ``fp32``, or in ``bf16`` under ``torch.autocast``."""
    compile: bool = False
    """Compile the network with ``torch.compile`` (speed only; the first steps compile it)."""
    data_on_device: bool = True
    """On an accelerator, copy each experience's images to it once rather than chunk by chunk."""
    probes: tuple[str, ...] = ()
    """Probes fitted on the frozen encoder after every experience (ridge, knn, linear); empty:
    none. The continual-SSL reference's --probing-all-exp; results.json's ``probing``."""
    probe_modes: tuple[str, ...] = ("separate", "joint")
    """Modes of those probes: ``separate`` (one per experience), ``joint`` (one on all of them)."""
    probe_per_class: int = 500
    """Training images per class kept for each of those probes."""
    probe_val_ratio: float = 0.1
    """Fraction of those images held out to stop the linear probe early (0: no early stop)."""
    lr_milestones: tuple[int, ...] = ()
    """Epochs of each experience after which the lr is multiplied by ``lr_gamma`` (mammoth's
    multisteplr: ``--lr_milestones 35 45``); reset at each experience; empty: a constant lr."""
    lr_gamma: float = 0.1
    """The factor of each ``lr_milestones`` step (mammoth's ``--sched_multistep_lr_gamma``)."""

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"train.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        for name in ("epochs", "batch_size", "eval_batch_size", "log_every", "chunk_batches"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"train.{name} must be positive, got {getattr(self, name)}")
        if self.checkpoint_every < 0:
            raise ConfigError(
                f"train.checkpoint_every must be >= 0 (0: automatic), got {self.checkpoint_every}"
            )
        if not self.checkpoint_minutes > 0:
            raise ConfigError(
                f"train.checkpoint_minutes must be positive, got {self.checkpoint_minutes}"
            )
        if self.iters is not None and self.iters <= 0:
            raise ConfigError(f"train.iters must be positive, got {self.iters}")
        self._check_probes()
        self._check_bounds()
        self._check_lr_schedule()

    def _check_lr_schedule(self) -> None:
        """Refuse milestones that are not increasing positive epochs, or a factor outside (0, 1]."""
        milestones = self.lr_milestones
        if (
            not isinstance(milestones, tuple)
            or not all(isinstance(m, int) and not isinstance(m, bool) for m in milestones)
            or any(m <= 0 or m > MAX_EPOCHS for m in milestones)
            or list(milestones) != sorted(set(milestones))
        ):
            raise ConfigError(
                "train.lr_milestones must be increasing epochs between 1 and "
                f"{MAX_EPOCHS}, got {milestones!r}"
            )
        if not 0 < self.lr_gamma <= 1:
            raise ConfigError(f"train.lr_gamma must be in (0, 1], got {self.lr_gamma}")

    def _check_probes(self) -> None:
        """Refuse unknown, repeated or empty probe choices before any training."""
        for name, allowed in (("probes", PROBE_KINDS), ("probe_modes", PROBING_MODES)):
            values = getattr(self, name)
            if not isinstance(values, tuple) or any(v not in allowed for v in values):
                raise ConfigError(
                    f"train.{name} must be a list of {', '.join(allowed)}, got {values!r}"
                )
            if len(set(values)) != len(values):
                raise ConfigError(f"train.{name} names a choice twice: {list(values)}")
        if self.probes and not self.probe_modes:
            raise ConfigError("train.probe_modes must name at least one mode when probes are set")
        if not 1 <= self.probe_per_class <= MAX_COUNT or not 0 <= self.probe_val_ratio < 1:
            raise ConfigError(
                "train.probe_per_class must be >= 1 and train.probe_val_ratio in [0, 1), got "
                f"{self.probe_per_class} and {self.probe_val_ratio}"
            )

    def _check_bounds(self) -> None:
        """Refuse counts no run could finish: a run would otherwise start and never end."""
        bounds = {"epochs": (MAX_EPOCHS, "passes over each experience; papers use a few hundred")}
        bounds["iters"] = (MAX_ITERS, "iterations per experience; papers use a few thousand")
        for name in ("batch_size", "eval_batch_size", "log_every", "chunk_batches"):
            bounds[name] = (MAX_COUNT, "the largest count torch indexes")
        bounds["checkpoint_every"] = (MAX_COUNT, "the largest count torch indexes")
        for name, (bound, why) in bounds.items():
            value = getattr(self, name)
            if value is not None and value > bound:
                raise ConfigError(f"train.{name} must be at most {bound} ({why}), got {value}")
