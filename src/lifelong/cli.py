"""The command line: ``lifelong run | list | report | compare | pretrain | sweep``.

``main(argv)`` returns the exit code.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import yaml

from lifelong.config import REQUEST_KEYS, Layered, RunConfig, layered_config
from lifelong.errors import ConfigError, UserError

log = logging.getLogger("lifelong")

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
    run.add_argument(
        "--explain-config",
        action="store_true",
        help="print every config field, its value and the layer that set it, then stop",
    )


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
    pretrain.add_argument("--seed", type=int, default=0)
    pretrain.add_argument("--device", default="cpu")
    pretrain.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    compare = sub.add_parser("compare", help="mean ± std over seeds of finished runs, with a plot")
    compare.add_argument("runs", type=Path, nargs="+", help="run directories or folders of them")
    compare.add_argument("--out", type=Path, default=Path("."), help="where to write the files")
    _add_sweep_parser(sub)
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


def parse_field_flags(tokens: Sequence[str]) -> list[tuple[str, Any]]:
    """``--FIELD VALUE [VALUE ...]`` flags for any config field, as ``--set`` pairs.

    ``--op_weight 0.1`` → ``("op_weight", 0.1)``; several values make a list
    (``--kw 0.8 0.8``); no value means ``true``; ``--FIELD=VALUE`` works too. Values are YAML
    scalars, as with ``--set``.
    """
    pairs: list[tuple[str, Any]] = []
    for token in tokens:
        if token.startswith("--"):
            name, _, text = token[2:].partition("=")
            if not name:
                raise ConfigError(f"cannot read the argument {token!r}")
            pairs.append((name.replace("-", "_"), [text] if text else []))
        elif pairs:
            pairs[-1][1].append(token)
        else:
            raise ConfigError(f"unexpected argument {token!r}: flags start with --")
    return [(name, _field_value(name, texts)) for name, texts in pairs]


def _field_value(name: str, texts: list[str]) -> Any:
    values = [parse_value(f"--{name}", t) for t in texts]
    return True if not values else values[0] if len(values) == 1 else values


def parse_value(where: str, text: str) -> Any:
    """A flag's value text as a YAML scalar or list (``""`` stays an empty string)."""
    try:
        return yaml.safe_load(text) if text else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"{where}: cannot parse value {text!r}") from err


def parse_set(items: list[str]) -> list[tuple[str, Any]]:
    """Parse ``--set key=value`` items; values are YAML scalars or lists."""
    pairs = []
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        key, text = item.split("=", 1)
        pairs.append((key.strip(), parse_value(f"--set {key}", text)))
    return pairs


def layered_from_args(args: argparse.Namespace) -> Layered:
    """The run's config and each field's layer, from the flags (see :mod:`lifelong.config`)."""
    request = {field: getattr(args, field) for field in FLAGS}
    request["download"] = args.download
    overrides = [*parse_field_flags(args.field_flags), *parse_set(args.set)]
    return layered_config(request, args.preset, args.config, overrides)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The resolved config of ``lifelong run`` flags (the same function as the Python API)."""
    return layered_from_args(args).config


def command_run(args: argparse.Namespace) -> int:
    """``lifelong run``."""
    from lifelong.report import full_report
    from lifelong.run import default_run_dir, execute, load_run_config

    if args.resume is not None:
        given = [REQUEST_KEYS[f] for f in FLAGS if getattr(args, f) is not None]
        given += [f"--{name}" for name in ("preset", "config", "run_dir") if getattr(args, name)]
        given += [t for t in args.field_flags if t.startswith("--")]
        if given or args.set or args.download:
            raise ConfigError(
                "--resume continues a run with the config saved in it: drop the other settings "
                f"({', '.join(given + ['--set'] * bool(args.set))}) or start a new run"
            )
        cfg = load_run_config(args.resume)
        run_dir = args.resume
    else:
        layered = layered_from_args(args)
        if args.explain_config:
            sys.stdout.write(layered.explain())
            return 0
        cfg = layered.config
        run_dir = args.run_dir or default_run_dir(cfg)
    if args.no_progress:
        cfg = _without_progress(cfg)
    log.info("run directory: %s", run_dir)
    results = execute(
        cfg,
        run_dir,
        resume=args.resume is not None,
        tensorboard=not args.no_tensorboard,
        pdf=args.pdf,
        visdom=args.visdom,
    )
    sys.stdout.write(full_report(results))
    sys.stdout.write(f"\nrun directory: {run_dir}\n")
    return 0


def _without_progress(cfg: RunConfig) -> RunConfig:
    import dataclasses

    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, progress=False))


def command_report(args: argparse.Namespace) -> int:
    """``lifelong report RUN_DIR``."""
    from lifelong.report import full_report, write_plots
    from lifelong.results import read_results

    results = read_results(args.run_dir)
    sys.stdout.write(full_report(results))
    for path in write_plots(results, args.run_dir):
        sys.stdout.write(f"wrote {path}\n")
    if args.pdf:
        from lifelong.run import pdf_for_finished_run

        sys.stdout.write(f"wrote {pdf_for_finished_run(args.run_dir)}\n")
    return 0


def command_pretrain(args: argparse.Namespace) -> int:
    """``lifelong pretrain``: BI-R's conv layers, trained as a plain classifier, saved to a file."""
    from lifelong.data.scenarios import DatasetConfig
    from lifelong.pretrain import PretrainConfig, pretrain_conv
    from lifelong.run import resolve_device

    cfg = PretrainConfig(
        dataset=DatasetConfig(name=args.dataset, root=args.data_root),
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        augment=not args.no_augment,
        seed=args.seed,
        progress=not args.no_progress,
    )
    accuracy = pretrain_conv(cfg, args.out, resolve_device(args.device))
    sys.stdout.write(f"test accuracy {accuracy:.2f}%; conv layers written to {args.out}\n")
    return 0


def command_compare(args: argparse.Namespace) -> int:
    """``lifelong compare RUN...``: writes comparison.md and comparison.png."""
    from lifelong.checkpoint import atomic_write_text
    from lifelong.compare import comparison_plot, comparison_table, find_runs, group_runs
    from lifelong.run import prepare_run_dir

    groups = group_runs(find_runs(args.runs))
    table = comparison_table(groups)
    prepare_run_dir(args.out, resume=True)
    atomic_write_text(args.out / "comparison.md", table)
    plot = comparison_plot(groups, args.out / "comparison.png")
    sys.stdout.write(table + f"wrote {args.out / 'comparison.md'} and {plot}\n")
    return 0


def command_sweep(args: argparse.Namespace) -> int:
    """``lifelong sweep FILE``: exit code 0, or 1 when a trial failed (2 for a bad file)."""
    from lifelong.sweep import (
        check_backend,
        completed_results,
        load_sweep,
        run_sweep,
        write_summary,
    )

    if args.jobs < 1:
        raise ConfigError(f"--jobs must be 1 or more, got {args.jobs}")

    def resolve_run(arguments: Sequence[str]) -> RunConfig:
        return config_from_args(parse_command(build_parser(), ["run", *arguments]))

    sweep = load_sweep(args.file, resolve_run, args.out)
    check_backend(args.backend)
    if args.dry_run:
        for trial in sweep.trials:
            done = " (finished before)" if completed_results(trial.run_dir) else ""
            sys.stdout.write(f"{trial.label}: {trial.run_dir}{done}\n")
        sys.stdout.write(f"{len(sweep.trials)} trials; nothing run (--dry-run)\n")
        return 0
    log.info("sweep %s: %d trials in %s", args.file, len(sweep.trials), sweep.out)
    outcomes = run_sweep(sweep, args.jobs, args.backend, tensorboard=not args.no_tensorboard)
    text, path = write_summary(sweep, outcomes)
    failed = sum(attempt.status == "failed" for _trial, attempt in outcomes)
    sys.stdout.write(text + f"\nwrote {path}\n")
    if failed:
        sys.stderr.write(f"lifelong: {failed} of {len(outcomes)} trials failed (see {path})\n")
    return 1 if failed else 0


def parse_command(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> Any:
    """Parse ``argv``; ``lifelong run`` keeps unknown ``--FIELD VALUE`` flags as config fields."""
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "run":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.field_flags = extra
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv``; return the exit code (2 for bad input)."""
    parser = build_parser()
    try:
        args = parse_command(parser, argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s"
        )
    try:
        if args.command == "run":
            return command_run(args)
        if args.command == "list":
            from lifelong.describe import list_text

            sys.stdout.write(list_text(args.what))
            return 0
        if args.command == "compare":
            return command_compare(args)
        if args.command == "pretrain":
            return command_pretrain(args)
        if args.command == "sweep":
            return command_sweep(args)
        return command_report(args)
    except UserError as err:
        sys.stderr.write(f"lifelong: error: {err}\n")
        return 2


def entry_point() -> None:
    """Console-script entry point."""
    sys.exit(main())
