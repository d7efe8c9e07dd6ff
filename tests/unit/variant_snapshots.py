"""Snapshots of the method variants: resolved configs and a short seeded run of each.

``python tests/unit/variant_snapshots.py`` rewrites ``fixtures/method_variants.json``. The file
was written with the code *before* the variants became registry entries (when they were
subclasses), so :mod:`test_method_variants` checks that the entries resolve and train exactly as
the subclasses did. Only stable entry points are used: ``layered_config`` and ``lifelong run``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from lifelong.cli.main import main
from lifelong.config import flatten, layered_config
from lifelong.config.presets import load_preset, preset_names
from lifelong.data.scenarios import SCENARIOS

FIXTURE = Path(__file__).parent / "fixtures" / "method_variants.json"
VARIANTS = {
    "sarl": ("sarl_enhanced", "sarl_enhanced_gelu", "sarl_enhanced_gelu_balanced", "sarl_online"),
    "bir": ("bir_si",),
    "ar1_star": ("cwr_star",),
}
"""Base method → the names that were its subclasses."""
NAMES = tuple(n for base, variants in VARIANTS.items() for n in (base, *variants))
RUN_SETTINGS: dict[str, tuple[str, ...]] = {
    "sarl": ("--set", "method.warmup_epochs=0"),
    "sarl_enhanced": ("--set", "method.warmup_epochs=0"),
    "sarl_enhanced_gelu": ("--set", "method.warmup_epochs=0"),
    "sarl_enhanced_gelu_balanced": ("--set", "method.warmup_epochs=0"),
    "sarl_online": ("--set", "method.warmup_iters=3"),
}
"""Per name, settings that make every loss term act within the short run."""


def config_requests() -> Iterator[tuple[str, dict[str, Any], str | None]]:
    """``(id, request, preset)``: every name on every scenario, and every preset of a name."""
    for name in NAMES:
        for dataset in SCENARIOS.names():
            yield f"{dataset}/{name}", {"method": name, "dataset": dataset}, None
    for preset in preset_names():
        raw = load_preset(preset)
        name = raw.get("method", {}).get("name")
        if name not in NAMES:
            continue
        dataset = raw.get("dataset", {}).get("name", preset.split("/")[0])
        request = {"method": name, "dataset": dataset}
        buffer = raw.get("method", {}).get("buffer_size")
        if buffer is not None:
            request["buffer_size"] = buffer
        yield f"preset {preset}", request, preset
        yield f"matched {preset}", request, None


def resolved_configs() -> dict[str, Any]:
    """Each request's resolved config, compacted (:func:`compact`)."""
    out: dict[str, Any] = {}
    for key, request, preset in config_requests():
        try:
            layered = layered_config(request, preset=preset)
        except Exception as err:  # the refusal itself is part of the snapshot
            out[key] = {"error": type(err).__name__}
            continue
        out[key] = compact(flatten(layered.config.to_raw()), layered.sources)
    return out


def compact(fields: dict[str, Any], sources: dict[str, str]) -> dict[str, Any]:
    """The method's fields and backbone in clear; a digest of every field and its layer."""
    shown = {k: v for k, v in fields.items() if k.startswith("method.") or k == "backbone.name"}
    every = json.dumps({"fields": fields, "sources": sources}, sort_keys=True)
    return {"shown": shown, "all": hashlib.sha256(every.encode()).hexdigest()[:16]}


def digest(tensor: torch.Tensor) -> str:
    """The sha256 of a tensor's bytes (bit identity)."""
    return hashlib.sha256(tensor.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


SNAPSHOT_SUMMARY = (
    "average_accuracy",
    "average_incremental_accuracy",
    "backward_transfer",
    "forgetting",
    "forward_transfer",
)
"""The summary metrics the snapshot holds (later ones, e.g. stream accuracy, are not in it)."""


def seeded_run(name: str) -> dict[str, Any]:
    """Train ``name`` for 2 epochs per experience on seq-digits; its losses and final network."""
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        argv = ["run", "--no-progress", "--no-tensorboard", "--method", name]
        argv += ["--dataset", "seq-digits", "--preset", "none", "--epochs", "2", "--seed", "3"]
        argv += ["--run-dir", str(run_dir), "--set", "train.log_every=1"]
        argv += list(RUN_SETTINGS.get(name, ()))
        with contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
        assert code == 0, f"{name} run failed"
        steps = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        results = json.loads((run_dir / "results.json").read_text())
        state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    method_state = state["method"]
    # fields added after the snapshot was taken: the learning rate and the steps' wall seconds
    logged = [
        {k: v for k, v in s.items() if k not in ("lr", "seconds")} for s in steps if "loss" in s
    ]
    protocols = {
        protocol: {
            "initial": entry["initial"],
            "matrix": entry["matrix"],
            "summary": {k: entry["summary"][k] for k in SNAPSHOT_SUMMARY},
        }
        for protocol, entry in results["protocols"].items()
    }
    return {
        "losses": [s["loss"] for s in logged],
        "steps": hashlib.sha256(json.dumps(logged, sort_keys=True).encode()).hexdigest()[:16],
        "protocols": protocols,
        "net": {
            k: digest(v)
            for k, v in sorted(method_state.items())
            if k.startswith("net.") and isinstance(v, torch.Tensor)
        },
    }


def snapshot() -> dict[str, Any]:
    """Everything the fixture holds."""
    return {"configs": resolved_configs(), "runs": {name: seeded_run(name) for name in NAMES}}


if __name__ == "__main__":
    FIXTURE.write_text(json.dumps(snapshot(), sort_keys=True, separators=(",", ":")) + "\n")
    sys.exit(0)
