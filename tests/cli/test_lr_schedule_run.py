"""``train.lr_milestones`` in a run: the step log's learning rate per epoch."""

from __future__ import annotations

import json
from pathlib import Path


def test_a_run_logs_the_decayed_rate_per_epoch(cli, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    argv = ("run", "--no-progress", "--no-tensorboard", "--epochs", "3", "--lr", "0.08")
    schedule = ("--set", "train.lr_milestones=[1,2]", "--set", "train.lr_gamma=0.5")
    result = cli(*argv, *schedule, "--set", "train.log_every=1", "--run-dir", run_dir)
    assert result.code == 0, result.err
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rates = {(r["experience"], r["epoch"], r["lr"]) for r in records if r["kind"] == "step"}
    assert rates == {(e, k, 0.08 * 0.5**k) for e in range(5) for k in range(3)}
