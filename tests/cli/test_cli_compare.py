"""``lifelong compare``: mean ± std over seeds of finished runs."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

FAST = ("--no-progress", "--no-tensorboard", "--epochs", "1")


def test_compare_groups_seeds_and_writes_table_and_plot(cli, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    finals = {}
    for method in ("finetune", "er"):
        for seed in (0, 1):
            run_dir = runs / f"{method}-{seed}"
            result = cli("run", *FAST, "--method", method, "--seed", seed, "--run-dir", run_dir)
            assert result.code == 0, result.err
            summary = json.loads((run_dir / "results.json").read_text())["protocols"]["class-il"]
            finals.setdefault(method, []).append(summary["summary"]["average_accuracy"])
    out = tmp_path / "cmp"
    result = cli("compare", runs, "--out", out)
    assert result.code == 0, result.err
    table = (out / "comparison.md").read_text()
    for method, values in finals.items():
        mean, std = statistics.mean(values), statistics.stdev(values)
        assert f"| seq-digits | {method} | {mean:.2f} ± {std:.2f} (n=2) |" in table
    assert (out / "comparison.png").read_bytes().startswith(b"\x89PNG")


def test_compare_without_runs_is_a_clear_error(cli, tmp_path: Path) -> None:
    result = cli("compare", tmp_path)
    assert result.code == 2
    assert result.err.startswith("lifelong: error: no completed runs")
