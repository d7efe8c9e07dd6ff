"""The ``lifelong`` argument parser: sub-commands, the request flags and their aliases."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from lifelong.cli.mammoth import add_mammoth_flags
from lifelong.reporting.wandb_sink import WANDB_MODES

# request field (lifelong.config.REQUEST_KEYS) → (type, help); the flag is the field with dashes,
# and every flag is also accepted with underscores (--buffer_size).
FLAGS: dict[str, tuple[type, str]] = {
    "method": (str, "method name (alias --model)"),
    "dataset": (str, "scenario name"),
    "backbone": (str, "backbone name"),
    "buffer_size": (int, "rehearsal buffer capacity"),
    "minibatch_size": (int, "examples replayed per step"),
    "lr": (float, "learning rate"),
    "alpha": (float, "DER/DER++ logit-replay weight"),
    "beta": (float, "DER++ replay cross-entropy weight"),
    "epochs": (int, "epochs per experience (alias --n-epochs)"),
    "iters": (int, "iterations per experience instead of epochs"),
    "batch_size": (int, "batch size of the current experience"),
    "data_root": (str, "folder with the dataset"),
    "seed": (int, "random seed"),
    "device": (str, "cpu, cuda or cuda:N"),
}
ALIASES = {"method": ["model"], "epochs": ["n-epochs"]}


def _add_run_parser(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="train a method on a scenario and write a run directory",
        allow_abbrev=False,
        epilog="Any config field is also a flag of its own: --FIELD VALUE [VALUE ...], e.g. "
        "--op_weight 0.1 or --kw 0.8 0.8 0.8 0.8 (`lifelong list` shows every field).",
    )
    run.set_defaults(field_flags=[])
    for field, (kind, help_text) in FLAGS.items():
        names = [field.replace("_", "-"), *ALIASES.get(field, [])]
        spellings = {f"--{n}" for n in names} | {f"--{n.replace('-', '_')}" for n in names}
        run.add_argument(*sorted(spellings), dest=field, type=kind, help=help_text, default=None)
    run.add_argument("--download", action="store_true", help="download the dataset if missing")
    run.add_argument("--preset", help="a preset name (see `lifelong list presets`), or 'none'")
    run.add_argument("--config", type=Path, help="a YAML config file (like a run's config.yaml)")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any config field, e.g. train.log_every=10",
    )
    run.add_argument(
        "--run-dir", "--run_dir", type=Path, help="output folder (default runs/DATASET/METHOD-TIME)"
    )
    run.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted run")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    run.add_argument(
        "--pdf", action="store_true", help="also write report.pdf (accuracies, losses, samples)"
    )
    run.add_argument(
        "--visdom", action="store_true", help="live curves in a running visdom server (optional)"
    )
    run.add_argument(
        "--no-tensorboard", action="store_true", help="do not write TensorBoard events"
    )
    add_wandb_flags(run)
    run.add_argument(
        "--explain-config",
        action="store_true",
        help="print every config field, its value and the layer that set it, then stop",
    )
    add_mammoth_flags(run)


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line and exit code 2, like every other user error."""

    def error(self, message: str) -> NoReturn:
        """Print ``lifelong: error: MESSAGE (see PROG --help)`` and exit with code 2."""
        self.exit(2, f"lifelong: error: {message} (see `{self.prog} --help`)\n")


LIST_CHOICES = [
    "all", "methods", "datasets", "backbones", "presets", "ssl_models", "strategies", "buffers",
    "train",
]  # fmt: skip
"""What ``lifelong list`` can show."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``lifelong`` command."""
    parser = OneLineParser(prog="lifelong", description="Continual learning in PyTorch.")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run_parser(sub)
    listing = sub.add_parser(
        "list", help="show methods, datasets, backbones, presets and their fields"
    )
    listing.add_argument(
        "what",
        nargs="?",
        default="all",
        choices=LIST_CHOICES,
    )
    report = sub.add_parser("report", help="print a run's tables and write its plots")
    report.add_argument("run_dir", type=Path)
    report.add_argument(
        "--pdf", action="store_true", help="also write report.pdf (accuracies, losses, samples)"
    )
    pretrain = sub.add_parser(
        "pretrain", help="pre-train BI-R's conv layers on a dataset and save them to a file"
    )
    pretrain.add_argument("--dataset", default="seq-cifar10", help="scenario whose data to use")
    pretrain.add_argument("--data-root", "--data_root", default="data", help="dataset folder")
    pretrain.add_argument("--out", type=Path, required=True, help="file to write the layers to")
    pretrain.add_argument("--epochs", type=int, default=100, help="passes over the data (100)")
    pretrain.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (1e-4)")
    pretrain.add_argument("--batch-size", "--batch_size", type=int, default=256, help="(256)")
    pretrain.add_argument("--no-augment", action="store_true", help="no random crop and flip")
    pretrain.add_argument(
        "--classes", type=int, nargs="+", help="only these labels (held-out pre-training)"
    )
    pretrain.add_argument(
        "--image-size", "--image_size", type=int, help="resize images to this side length"
    )
    pretrain.add_argument("--seed", type=int, default=0)
    pretrain.add_argument("--device", default="cpu")
    pretrain.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    compare = sub.add_parser("compare", help="mean ± std over seeds of finished runs, with a plot")
    compare.add_argument("runs", type=Path, nargs="+", help="run directories or folders of them")
    compare.add_argument("--out", type=Path, default=Path("."), help="where to write the files")
    _add_sweep_parser(sub)
    from lifelong.cli.cssl import add_cssl_parser  # after parser.py is loaded: cssl may use it

    add_cssl_parser(sub)
    from lifelong.cli.bir import add_bir_parser

    add_bir_parser(sub)
    from lifelong.cli.reproduce_command import add_reproduce_parser

    add_reproduce_parser(sub)
    from lifelong.cli.probe_command import add_probe_parser

    add_probe_parser(sub)
    return parser


def _add_sweep_parser(sub: Any) -> None:
    sweep = sub.add_parser(
        "sweep", help="experiments × grid × seeds from a YAML file, resumable, with a summary"
    )
    sweep.add_argument("file", type=Path, help="the sweep file (see configs/sweeps/example.yaml)")
    sweep.add_argument(
        "--jobs", type=int, default=1, help="runs at a time (each with OMP_NUM_THREADS=1 when > 1)"
    )
    sweep.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="local processes (default) or Ray tasks (pip install 'lifelong[ray]')",
    )
    sweep.add_argument("--out", type=Path, help="output folder (default: the file's `out`)")
    sweep.add_argument("--dry-run", action="store_true", help="validate and list the trials only")
    sweep.add_argument(
        "--no-tensorboard", action="store_true", help="runs write no TensorBoard events"
    )
    add_wandb_flags(sweep)


def add_wandb_flags(parser: argparse.ArgumentParser) -> None:
    """``--wandb PROJECT`` and ``--wandb-mode`` (``lifelong run`` and ``lifelong sweep``)."""
    parser.add_argument(
        "--wandb",
        metavar="PROJECT",
        help='also log to this Weights & Biases project (pip install "lifelong[wandb]")',
    )
    parser.add_argument(
        "--wandb-mode",
        "--wandb_mode",
        choices=WANDB_MODES,
        help="online (default; `wandb login` first) or offline (files in RUN_DIR/wandb to "
        "upload later with `wandb sync`)",
    )


def parse_command(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> Any:
    """Parse ``argv``; ``lifelong run`` keeps unknown ``--FIELD VALUE`` flags as config fields."""
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "run":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.field_flags = extra
    return args
