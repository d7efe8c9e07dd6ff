"""``lifelong probe RUN_DIR``: several probes and probing modes on a finished run's encoder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lifelong.evaluation.probe_names import PROBE_KINDS, PROBING_MODES

PROBES_FILE = "probes.json"


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def add_probe_parser(sub: Any) -> None:
    """The ``probe`` sub-command and its flags."""
    probe = sub.add_parser(
        "probe",
        help="fit ridge / k-NN / linear probes on a run's encoder, per experience and jointly",
        description="Probe a finished run's encoder (its checkpoint) with several probes under "
        "the continual-SSL reference's separate and joint modes; writes RUN_DIR/probes.json.",
    )
    probe.add_argument("run_dir", type=Path)
    probe.add_argument("--probes", nargs="+", choices=PROBE_KINDS, default=list(PROBE_KINDS))
    probe.add_argument("--modes", nargs="+", choices=PROBING_MODES, default=list(PROBING_MODES))
    probe.add_argument(
        "--per-class", type=_positive, default=500, help="training images per class (500)"
    )
    probe.add_argument(
        "--val-ratio", type=_fraction, default=0.1, help="held out to stop the linear probe (0.1)"
    )
    probe.add_argument("--data-root", "--data_root", help="the dataset folder, if it moved")
    probe.add_argument("--seed", type=int, default=0, help="sampling and linear-probe seed")


def command_probe(args: argparse.Namespace) -> int:
    """Rebuild the run from its config and checkpoint, probe it, print and write the results."""
    import dataclasses

    import torch

    from lifelong.checkpoint import atomic_write_text, check_writable_file
    from lifelong.evaluation.probes import ProbeConfig
    from lifelong.evaluation.probing import probe_encoder
    from lifelong.running.run import build, load_run_config, restore
    from lifelong.running.run_dir import CHECKPOINT

    check_writable_file(args.run_dir / PROBES_FILE, "copy the run folder somewhere writable")
    cfg = load_run_config(args.run_dir)
    if args.data_root is not None:
        cfg = dataclasses.replace(
            cfg, dataset=dataclasses.replace(cfg.dataset, root=args.data_root)
        )
    built = build(cfg)
    restore(built, args.run_dir / CHECKPOINT)
    method = built.method
    encoder = method.probe_encoder()
    probe_cfg = ProbeConfig(
        ridge_alpha=getattr(cfg.method, "ridge_alpha", 1.0), knn_k=getattr(cfg.method, "knn_k", 50)
    )
    results = probe_encoder(
        encoder, encoder.features, built.stream, args.probes, args.modes, probe_cfg,
        args.per_class, args.val_ratio, torch.Generator().manual_seed(args.seed),
        built.evaluator.device,
    )  # fmt: skip
    record = {"per_class": args.per_class, "val_ratio": args.val_ratio, "seed": args.seed}
    atomic_write_text(args.run_dir / PROBES_FILE, json.dumps({**record, **results}, indent=2))
    for mode, scores in results.items():
        for probe, value in scores.items():
            if isinstance(value, dict):
                per = " ".join(f"{v:.1f}" for v in value["experiences"])
                line = f"{mode:<9} {probe:<7} mean {value['mean']:.2f}  ({per})"
            else:
                line = f"{mode:<9} {probe:<7} {value:.2f}"
            sys.stdout.write(line + "\n")
    sys.stdout.write(f"wrote {args.run_dir / PROBES_FILE}\n")
    return 0
