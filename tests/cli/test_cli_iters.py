"""``--iters`` runs: SARL's epoch-counted warm-up counts passes, or the run is refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

FAST = ("--no-progress", "--no-tensorboard")
SARL = ("--method", "sarl", "--dataset", "seq-digits", "--seed", "0")
# seq-digits: about 290 training images per experience, batch 16 -> 19 steps per pass


def _steps(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return [r for r in records if r.get("kind") == "step"]


def test_sarl_distills_after_the_warmup_passes_under_iters(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    args = ("--iters", "45", "--set", "warmup_epochs=0", "--set", "train.log_every=1")
    result = cli("run", *FAST, *SARL, *args, "--run-dir", run_dir)
    assert result.code == 0, result.err
    steps = _steps(run_dir)
    assert {r["epoch"] for r in steps} == {0, 1, 2}  # 45 steps = passes of 19, 19 and 7
    assert not any("distill" in r for r in steps if r["experience"] == 0)
    for t in range(1, 5):
        later = [r for r in steps if r["experience"] == t]
        assert len(later) == 45
        # grouped after pass 1; distillation and the semantic ratio from pass 2 on
        assert all(("distill" in r and "semantic" in r) == (r["epoch"] >= 1) for r in later)


def test_sarl_iters_too_short_for_the_warmup_is_one_line_exit_2(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    result = cli("run", *FAST, *SARL, "--iters", "60", "--run-dir", run_dir)
    assert result.code == 2, (result.code, result.err)
    assert "Traceback" not in result.err
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    message = lines[0]
    assert message.startswith("lifelong: error: ")
    for needle in ("train.iters=60", "method.warmup_epochs=5", "train.iters >= 115"):
        assert needle in message, message
    assert not (run_dir / "results.json").exists()
