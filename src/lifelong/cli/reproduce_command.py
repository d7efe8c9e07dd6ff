"""``lifelong reproduce``: run a ledger row's seeds, judge them against the paper, record them."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lifelong.errors import ConfigError

log = logging.getLogger("lifelong")
DEFAULT_OUT = Path("runs") / "reproduce"


def add_reproduce_parser(sub: Any) -> None:
    """The ``reproduce`` sub-command and its flags."""
    parser = sub.add_parser(
        "reproduce",
        help="run a ledger row (a paper number we claim) and judge it; --list, --table",
        description="Run the seeds of ledger rows through the sweep machinery (resumable), "
        "compare mean ± std with the paper (pass when within max(paper std, 3 points)) and "
        "record the result.",
    )
    parser.add_argument("ids", nargs="*", metavar="ID", help="ledger row ids (see --list)")
    what = parser.add_argument_group("which rows")
    what.add_argument("--all", action="store_true", help="every row of the ledger")
    what.add_argument("--gpu-rows", action="store_true", help="every row that needs a GPU")
    what.add_argument("--list", action="store_true", help="print the ledger with each status")
    what.add_argument("--table", action="store_true", help="print the ledger as Markdown")
    parser.add_argument(
        "--short",
        action="store_true",
        help="with --table: only the rows judged against verified values, and the misses",
    )
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds to run (default: the row's)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a few iterations of each row on tiny generated data (records nothing)",
    )
    parser.add_argument("--data-root", "--data_root", help="folder with the row's dataset")
    parser.add_argument("--out", type=Path, help=f"where the runs go (default {DEFAULT_OUT})")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda with --gpu-rows)")
    parser.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        help="the runs' train.precision (default: bf16 with --gpu-rows, else fp32)",
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="seeds (--smoke: rows) at a time, one thread each"
    )
    parser.add_argument("--backend", choices=["local", "ray"], default="local")
    parser.add_argument("--ledger", type=Path, help="ledger file (default: the shipped one)")
    parser.add_argument(
        "--results", type=Path, help="results file (default: LEDGER_results.yaml beside it)"
    )


def _results_path(ledger: Path, given: Path | None) -> Path:
    if given is not None:
        return given
    real = ledger.resolve()
    return real.with_name(f"{real.stem}_results.yaml")


def _check_mode(args: argparse.Namespace) -> None:
    modes = [bool(args.ids), args.all, args.gpu_rows, args.list, args.table]
    if sum(modes) != 1:
        raise ConfigError(
            "give row ids, --all, --gpu-rows, --list or --table (exactly one of them; "
            "`lifelong reproduce --list` shows the ids)"
        )
    if (args.list or args.table) and (args.smoke or args.seeds):
        raise ConfigError("--list and --table only print the ledger: drop --smoke and --seeds")
    if args.jobs < 1:
        raise ConfigError(f"--jobs must be 1 or more, got {args.jobs}")


def command_reproduce(args: argparse.Namespace) -> int:
    """``lifelong reproduce``; returns the exit code (1 when a run or smoke run failed)."""
    from lifelong.reproduce import DEFAULT_LEDGER, find_row, load_ledger, read_results
    from lifelong.reproduce.ledger import check_seeds
    from lifelong.reproduce.table import list_text, markdown_table

    _check_mode(args)
    ledger = args.ledger or DEFAULT_LEDGER
    rows = load_ledger(ledger)
    results_file = _results_path(ledger, args.results)
    results = read_results(results_file)
    if args.list:
        sys.stdout.write(list_text(rows, results, results_file))
        return 0
    if args.table:
        sys.stdout.write(markdown_table(rows, results, results_file, args.short))
        return 0
    if args.seeds is not None:
        check_seeds(args.seeds, "--seeds")
    if args.all:
        chosen = rows
    elif args.gpu_rows:
        chosen = tuple(r for r in rows if r.device == "gpu")
    else:
        chosen = tuple(find_row(rows, i, ledger) for i in dict.fromkeys(args.ids))
    if args.smoke:
        return _smoke(chosen, args)
    return _reproduce(chosen, args, results_file)


@contextmanager
def _smoke_folder(out: Path | None) -> Iterator[Path]:
    """A temporary folder (or ``OUT/smoke``, kept) whose decoded-image cache is its own."""
    before = os.environ.get("LIFELONG_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="lifelong-smoke-") as tmp:
        folder = out / "smoke" if out is not None else Path(tmp)
        os.environ["LIFELONG_CACHE_DIR"] = str(folder / "cache")
        try:
            yield folder
        finally:
            if before is None:
                os.environ.pop("LIFELONG_CACHE_DIR", None)
            else:
                os.environ["LIFELONG_CACHE_DIR"] = before


def _smoke(rows: tuple[Any, ...], args: argparse.Namespace) -> int:
    """Smoke-run every row; every failure is listed, none stops the others."""
    from lifelong.reproduce.runner import smoke_rows

    if args.data_root is not None:
        log.info("--smoke writes its own tiny data; --data-root %s is not used", args.data_root)
    failed = 0
    start = time.perf_counter()
    with _smoke_folder(args.out) as folder:
        for row, done, error in smoke_rows(rows, folder, args.device or "cpu", args.jobs):
            if done is None:
                failed += 1
                sys.stdout.write(f"{row.id}: SMOKE FAILED: {error}\n")
            else:
                sys.stdout.write(
                    f"{row.id}: smoke ok, {row.protocol} {done.values[0]:.1f} % on tiny data "
                    f"({done.seconds:.1f} s)\n"
                )
            sys.stdout.flush()
    seconds = time.perf_counter() - start
    sys.stdout.write(
        f"smoke: {len(rows) - failed} of {len(rows)} rows ran in {seconds:.0f} s on tiny data; "
        "nothing was recorded\n"
    )
    if failed:
        sys.stderr.write(f"lifelong: {failed} of {len(rows)} rows failed their smoke run\n")
    return 1 if failed else 0


def _device(args: argparse.Namespace) -> str:
    if args.device is not None:
        return str(args.device)
    if not args.gpu_rows:
        return "cpu"
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            "--gpu-rows runs on CUDA and this machine has none: run them on a GPU machine, "
            "or check them here with --smoke"
        )
    return "cuda"


def _reproduce(rows: tuple[Any, ...], args: argparse.Namespace, results_file: Path) -> int:
    """Run each row's seeds, print and record its result; 1 when a seed failed."""
    from lifelong.checkpoint import check_writable_file
    from lifelong.reproduce import reproduce_row

    device = _device(args)
    precision = args.precision or ("bf16" if args.gpu_rows else "fp32")
    needs_data = [r.id for r in rows if r.scenario != "seq-digits"]
    if needs_data and args.data_root is None:
        raise ConfigError(
            f"--data-root is required: the folder with the dataset of {needs_data[0]} "
            "(e.g. ../shared/data/mnist for the MNIST rows)"
        )
    check_writable_file(results_file, "choose another with --results")
    failed = 0
    for row in rows:
        seeds = tuple(args.seeds) if args.seeds is not None else row.seeds
        done = reproduce_row(
            row, seeds, args.out or DEFAULT_OUT, args.data_root, device, args.jobs, args.backend,
            precision,
        )  # fmt: skip
        if done.failures:
            failed += 1
            sys.stderr.write(
                f"lifelong: {row.id}: {len(done.failures)} of {len(seeds)} seeds did not finish "
                f"({done.failures[0]}; see {done.folder / 'summary.md'}); nothing recorded\n"
            )
            continue
        sys.stdout.write(_record(done, results_file, device, precision) + "\n")
    if rows:
        sys.stdout.write(f"results: {results_file}\n")
    return 1 if failed else 0


def _record(done: Any, results_file: Path, device: str, precision: str) -> str:
    """Write ``done`` to the results file; the line that says what it was."""
    from lifelong.reproduce import Result, decide, mean_std, write_result
    from lifelong.reproduce.provenance import commit, machine, today

    row = done.row
    mean, std = mean_std(done.values)
    decision = decide(mean, row)
    result = Result(
        mean, std, len(done.values), done.values, done.seeds, today(), machine(device),
        commit(), device, round(done.seconds, 1), decision, precision, done.peak_device_mib,
    )  # fmt: skip
    write_result(results_file, row.id, result)
    ours = f"{mean:.2f} (n=1)" if len(done.values) == 1 else f"{mean:.2f} ± {std:.2f}"
    ours += "" if len(done.values) == 1 else f" (n={len(done.values)})"
    if row.value is None:
        return f"{row.id}: {row.protocol} {ours}, no paper value"
    paper = f"paper {row.value:.2f} ± {row.std:.2f}"
    paper += "" if row.verified else " (unverified)"
    return f"{row.id}: {row.protocol} {ours}, {paper}: {decision}"
