"""What each ``lifelong`` sub-command does, given its parsed arguments."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from lifelong.cli.flags import layered_from_args
from lifelong.cli.mammoth import (
    MammothRequest,
    check_best_args,
    mammoth_request,
    write_after_run,
)
from lifelong.cli.parser import FLAGS
from lifelong.config import REQUEST_KEYS, RunConfig
from lifelong.errors import ConfigError, UserInterruptError
from lifelong.reporting.wandb_sink import WandbTarget

log = logging.getLogger("lifelong")


def command_run(args: argparse.Namespace) -> int:
    """``lifelong run`` (mammoth's flags included, see :mod:`lifelong.cli.mammoth`)."""
    from lifelong.running.run import load_run_config
    from lifelong.running.run_dir import claim_run_dir, default_run_dir

    mammoth = mammoth_request(args)
    wandb = wandb_target(args, mammoth)
    if args.resume is not None:
        given = [REQUEST_KEYS[f] for f in FLAGS if getattr(args, f) is not None]
        given += [f"--{name}" for name in ("preset", "config", "run_dir") if getattr(args, name)]
        given += [t for t in args.field_flags if t.startswith("--")] + list(mammoth.run_flags)
        if given or args.set or args.download:
            raise ConfigError(
                "--resume continues a run with the config saved in it: drop the other settings "
                f"({', '.join(given + ['--set'] * bool(args.set))}) or start a new run"
            )
        cfg = load_run_config(args.resume)
        run_dir = args.resume
    else:
        layered = layered_from_args(args, mammoth.overrides)
        check_best_args(mammoth, layered.config)
        if args.explain_config:
            sys.stdout.write(layered.explain())
            return 0
        cfg = layered.config
        wanted = default_run_dir(cfg, mammoth.output_root or Path("runs"))
        run_dir = args.run_dir or claim_run_dir(wanted)
    if args.no_progress or mammoth.no_progress:
        cfg = _without_progress(cfg)
    results = run_and_report(
        cfg,
        run_dir,
        resume=args.resume is not None,
        tensorboard=not args.no_tensorboard,
        pdf=args.pdf,
        visdom=args.visdom,
        wandb=wandb,
    )
    for path in write_after_run(mammoth, results, run_dir):
        sys.stdout.write(f"wrote {path}\n")
    sys.stdout.write(f"\nrun directory: {run_dir}\n")
    return 0


def wandb_target(args: argparse.Namespace, mammoth: MammothRequest) -> WandbTarget | None:
    """Where ``--wandb`` (or mammoth's ``--wandb_project``) sends the run; ``None``: nowhere.

    Raises:
        ConfigError: for a mode or entity without a project, two different projects, or a
            project with ``--nowand``.
    """
    projects = {p for p in (args.wandb, mammoth.wandb_project) if p is not None}
    if len(projects) > 1:
        raise ConfigError(
            f"--wandb {args.wandb!r} and --wandb_project {mammoth.wandb_project!r} name two "
            "Weights & Biases projects: give one"
        )
    if not projects:
        if args.wandb_mode is not None or mammoth.wandb_entity is not None:
            flag = "--wandb-mode" if args.wandb_mode is not None else "--wandb_entity"
            raise ConfigError(f"{flag} needs a project: add --wandb PROJECT")
        return None
    if mammoth.nowand:
        raise ConfigError(
            "--nowand turns off the Weights & Biases logging that --wandb asks for: drop one"
        )
    return WandbTarget(projects.pop(), args.wandb_mode or "online", mammoth.wandb_entity)


def run_and_report(
    cfg: RunConfig,
    run_dir: Path,
    resume: bool = False,
    tensorboard: bool = True,
    pdf: bool = False,
    visdom: bool = False,
    wandb: WandbTarget | None = None,
) -> dict[str, Any]:
    """Train ``cfg`` into ``run_dir``, print the report; Ctrl-C says what was saved."""
    from lifelong.reporting.report import full_report
    from lifelong.running.run import execute
    from lifelong.running.run_dir import saved_progress

    log.info("run directory: %s", run_dir)
    try:
        results = execute(cfg, run_dir, resume, tensorboard, pdf, visdom, wandb=wandb)
    except KeyboardInterrupt as stop:
        raise UserInterruptError(saved_progress(run_dir)) from stop
    sys.stdout.write(full_report(results))
    return results


def _without_progress(cfg: RunConfig) -> RunConfig:
    import dataclasses

    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, progress=False))


def command_report(args: argparse.Namespace) -> int:
    """``lifelong report RUN_DIR``."""
    from lifelong.checkpoint import check_writable_file
    from lifelong.reporting.pdf_report import REPORT_NAME
    from lifelong.reporting.report import PLOT_NAMES, full_report, write_plots
    from lifelong.reporting.results import read_results
    from lifelong.reporting.tables import TABLE_NAMES, write_run_tables

    results = read_results(args.run_dir)
    fix = "copy the run folder somewhere you can write and report that copy"
    for name in PLOT_NAMES + TABLE_NAMES + ((REPORT_NAME,) if args.pdf else ()):
        check_writable_file(args.run_dir / name, fix)
    sys.stdout.write(full_report(results))
    for path in write_plots(results, args.run_dir) + write_run_tables(results, args.run_dir):
        sys.stdout.write(f"wrote {path}\n")
    if args.pdf:
        from lifelong.running.run import pdf_for_finished_run

        sys.stdout.write(f"wrote {pdf_for_finished_run(args.run_dir)}\n")
    return 0


def command_pretrain(args: argparse.Namespace) -> int:
    """``lifelong pretrain``: BI-R's conv layers, trained as a plain classifier, saved to a file."""
    from lifelong.data.scenarios import DatasetConfig
    from lifelong.running.pretrain import PretrainConfig, pretrain_conv
    from lifelong.running.run import resolve_device

    cfg = PretrainConfig(
        dataset=DatasetConfig(
            name=args.dataset,
            root=args.data_root,
            classes=tuple(args.classes) if args.classes else None,
            image_size=args.image_size,
        ),
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
    """``lifelong compare RUN...``: writes comparison.md, comparison.csv and comparison.png."""
    import lifelong.components  # noqa: F401  (registers every method)
    from lifelong.methods.base import METHODS
    from lifelong.reporting.compare import find_runs, group_runs, write_comparison
    from lifelong.running.run_dir import prepare_run_dir

    own_network = frozenset(n for n, m in METHODS.items() if not m.method_class.uses_backbone)
    groups = group_runs(find_runs(args.runs), own_network)
    prepare_run_dir(args.out, resume=True)
    table, paths = write_comparison(groups, args.out)
    sys.stdout.write(table + f"wrote {', '.join(map(str, paths))}\n")
    return 0
