"""mammoth's ``main.py`` flags in ``lifelong run``: one table of what each one means here.

mammoth users (SARL's README: ``python main.py --model sarl --dataset seq-cifar10 --buffer_size
200 --load_best_args``) paste their command lines unchanged. ``--model``, ``--dataset``,
``--buffer_size``, ``--lr``, ``--n_epochs``, ``--batch_size``, ``--minibatch_size`` and ``--seed``
are request flags of ``lifelong run`` already (:data:`lifelong.cli.parser.FLAGS`). The others are
in :data:`MAMMOTH_FLAGS`: each either changes the :class:`MammothRequest` (a config override, the
run directory's root, files written after the run), has no effect here (and says why), or is
refused with the lifelong equivalent (exit 2).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifelong.checkpoint import atomic_write_text
from lifelong.errors import ConfigError

if TYPE_CHECKING:
    from lifelong.config import RunConfig

NOTES_FILE = "notes.txt"
DEFAULT_VALIDATION_PERCENT = 10.0
"""mammoth's held-out share of each class with a bare ``--validation`` (its ``val_perc`` 0.1)."""


@dataclass(frozen=True)
class MammothRequest:
    """What the mammoth flags of one ``lifelong run`` ask for.

    Attributes:
        overrides: Config overrides, below the field flags and ``--set`` of the same run.
        run_flags: The given flags that change the run's config or place (refused with
            ``--resume``).
        best_args: ``--load_best_args``: the run must use a paper preset.
        csv_log: Write the accuracy matrices as CSV after the run.
        no_progress: Hide progress bars (``--non_verbose``).
        output_root: Folder the default run directory goes under (``--output_dir``).
        notes: Text for ``notes.txt`` in the run directory (``--notes``).
        wandb_project: The Weights & Biases project (``--wandb_project``, as ``--wandb``).
        wandb_entity: The Weights & Biases user or team (``--wandb_entity``).
        nowand: ``--nowand``: no Weights & Biases logging.
    """

    overrides: tuple[tuple[str, Any], ...] = ()
    run_flags: tuple[str, ...] = ()
    best_args: bool = False
    csv_log: bool = False
    no_progress: bool = False
    output_root: Path | None = None
    notes: str | None = None
    wandb_project: str | None = None
    wandb_entity: str | None = None
    nowand: bool = False


Meaning = Callable[[MammothRequest, Any], MammothRequest]


@dataclass(frozen=True)
class MammothFlag:
    """One mammoth flag: how it is read and what it means in lifelong.

    Attributes:
        note: The help text: what the flag does here, or why it does nothing.
        meaning: How the flag changes the request (None: no effect).
        refusal: When set, the flag has no meaning here: exit 2 naming this equivalent.
        value: The type of the flag's value (None: a switch).
        metavar: The value's name in the help.
        bare_value: The value of the flag given without one (None: a value is required).
        changes_run: Whether the flag changes the run's config or place.
    """

    note: str
    meaning: Meaning | None = None
    refusal: str | None = None
    value: type | None = None
    metavar: str | None = None
    bare_value: Any = None
    changes_run: bool = False


def _validation(request: MammothRequest, percent: float) -> MammothRequest:
    overrides = (*request.overrides, ("dataset.validation", percent / 100.0))
    return dataclasses.replace(request, overrides=overrides)


def _override(request: MammothRequest, key: str, value: Any) -> MammothRequest:
    return dataclasses.replace(request, overrides=(*request.overrides, (key, value)))


def _lr_scheduler(request: MammothRequest, name: str) -> MammothRequest:
    """Accept mammoth's ``multisteplr`` (``train.lr_milestones`` sets its epochs)."""
    if name.lower() != "multisteplr":
        raise ConfigError(
            f"--lr_scheduler {name}: lifelong has the multistep decay only "
            "(--lr_scheduler multisteplr --lr_milestones 35 45)"
        )
    return request


MAMMOTH_FLAGS: dict[str, MammothFlag] = {
    "load_best_args": MammothFlag(
        "the paper's settings for dataset/model/buffer size: lifelong's automatic paper preset "
        "(the flags you give still win over it); exit 2 when there is none",
        meaning=lambda r, _: dataclasses.replace(r, best_args=True),
        changes_run=True,
    ),
    "csv_log": MammothFlag(
        "also write each accuracy matrix as accuracy-PROTOCOL.csv in the run directory",
        meaning=lambda r, _: dataclasses.replace(r, csv_log=True),
    ),
    "tensorboard": MammothFlag(
        "no effect: lifelong writes TensorBoard events by default (--no-tensorboard: none)"
    ),
    "nowand": MammothFlag(
        "no Weights & Biases logging (lifelong logs there only with --wandb anyway)",
        meaning=lambda r, _: dataclasses.replace(r, nowand=True),
    ),
    "wandb_project": MammothFlag(
        "log to this Weights & Biases project, as --wandb PROJECT",
        meaning=lambda r, project: dataclasses.replace(r, wandb_project=project),
        value=str,
        metavar="PROJECT",
    ),
    "wandb_entity": MammothFlag(
        "the Weights & Biases user or team of --wandb/--wandb_project",
        meaning=lambda r, entity: dataclasses.replace(r, wandb_entity=entity),
        value=str,
        metavar="ENTITY",
    ),
    "non_verbose": MammothFlag(
        "same as `lifelong -q run --no-progress`",
        meaning=lambda r, _: dataclasses.replace(r, no_progress=True),
    ),
    "output_dir": MammothFlag(
        "put the run directory under DIR: DIR/DATASET/METHOD-TIME-sSEED",
        meaning=lambda r, root: dataclasses.replace(r, output_root=root),
        value=Path,
        metavar="DIR",
        changes_run=True,
    ),
    "notes": MammothFlag(
        "write TEXT to notes.txt in the run directory",
        meaning=lambda r, text: dataclasses.replace(r, notes=text),
        value=str,
        metavar="TEXT",
    ),
    "validation": MammothFlag(
        "hold out PCT%% of each class's training images as a validation set "
        f"(dataset.validation; bare: {DEFAULT_VALIDATION_PERCENT:g})",
        meaning=_validation,
        value=float,
        metavar="PCT",
        bare_value=DEFAULT_VALIDATION_PERCENT,
        changes_run=True,
    ),
    "lr_scheduler": MammothFlag(
        "multisteplr: the lr decays at train.lr_milestones (--lr_milestones 35 45) by "
        "train.lr_gamma over each experience's epochs; the only scheduler here",
        meaning=_lr_scheduler,
        value=str,
        metavar="NAME",
        changes_run=True,
    ),
    "sched_multistep_lr_gamma": MammothFlag(
        "the factor of each milestone (train.lr_gamma; mammoth's default 0.1)",
        meaning=lambda r, gamma: _override(r, "train.lr_gamma", gamma),
        value=float,
        metavar="GAMMA",
        changes_run=True,
    ),
    "savecheck": MammothFlag(
        "no effect: lifelong checkpoints at experience boundaries anyway (train.checkpoint_every)"
    ),
    "loadcheck": MammothFlag(
        "refused: continue a run with `lifelong run --resume RUN_DIR`",
        refusal="continue a lifelong run with `lifelong run --resume RUN_DIR` instead",
        value=str,
        metavar="PATH",
    ),
}
"""mammoth flag (its own spelling) → its meaning in lifelong."""


def add_mammoth_flags(parser: argparse.ArgumentParser) -> None:
    """Add :data:`MAMMOTH_FLAGS` to the ``lifelong run`` parser (with ``_`` or ``-``)."""
    group = parser.add_argument_group("mammoth flags (python main.py ... pastes in unchanged)")
    for name, flag in MAMMOTH_FLAGS.items():
        spellings = sorted({f"--{name}", f"--{name.replace('_', '-')}"})
        if flag.value is None:
            group.add_argument(*spellings, dest=name, action="store_true", help=flag.note)
        elif flag.bare_value is None:
            group.add_argument(
                *spellings, dest=name, type=flag.value, metavar=flag.metavar, help=flag.note
            )
        else:
            group.add_argument(
                *spellings,
                dest=name,
                type=flag.value,
                nargs="?",
                const=flag.bare_value,
                metavar=flag.metavar,
                help=flag.note,
            )


def mammoth_request(args: argparse.Namespace) -> MammothRequest:
    """What the mammoth flags of parsed ``lifelong run`` arguments ask for.

    Raises:
        ConfigError: for a refused flag, or one that contradicts a lifelong flag.
    """
    request = MammothRequest()
    for name, flag in MAMMOTH_FLAGS.items():
        value = getattr(args, name, None)
        if value is None or value is False:
            continue
        if flag.refusal is not None:
            raise ConfigError(f"--{name} has no meaning in lifelong: {flag.refusal}")
        if flag.meaning is not None:
            request = flag.meaning(request, value)
        if flag.changes_run:
            request = dataclasses.replace(request, run_flags=(*request.run_flags, f"--{name}"))
    if request.best_args and args.preset == "none":
        raise ConfigError(
            "--load_best_args asks for the paper preset and --preset none turns it off: "
            "drop one of them"
        )
    if request.output_root is not None and args.run_dir is not None:
        raise ConfigError(
            "--output_dir and --run-dir both place the run: give the root (--output_dir) or "
            "the exact folder (--run-dir)"
        )
    return request


def check_best_args(request: MammothRequest, cfg: RunConfig) -> None:
    """With ``--load_best_args``, fail unless ``cfg`` was built on a paper preset."""
    if request.best_args and cfg.preset is None:
        raise ConfigError(
            f"--load_best_args: no paper preset for dataset {cfg.dataset.name!r}, method "
            f"{cfg.method_name!r}, buffer size {getattr(cfg.method, 'buffer_size', None)} "
            "(see `lifelong list presets`): drop --load_best_args to run on defaults"
        )


def write_after_run(request: MammothRequest, results: dict[str, Any], run_dir: Path) -> list[Path]:
    """Write the files the mammoth flags ask for into a finished run's folder; return them."""
    from lifelong.reporting.csv_log import write_accuracy_csvs

    written = write_accuracy_csvs(results, run_dir) if request.csv_log else []
    if request.notes is not None:
        atomic_write_text(run_dir / NOTES_FILE, request.notes + "\n")
        written.append(run_dir / NOTES_FILE)
    return written
