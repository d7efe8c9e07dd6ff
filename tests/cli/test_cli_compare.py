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


def test_a_field_missing_from_older_runs_does_not_split_a_group() -> None:
    from lifelong.reporting.compare import group_runs

    def run(seed: int, accuracy: float, **dataset: object) -> dict[str, object]:
        config = {
            "method": {"name": "er", "lr": 0.1},
            "dataset": {"name": "seq-mnist", **dataset},
            "backbone": {"name": "mlp"},
            "seed": seed,
        }
        summary = {"summary": {"average_accuracy": accuracy}}
        return {"config": config, "protocols": {"class-il": summary}}

    # seed 0 ran before dataset.augment existed; seeds 1 and 2 record it
    groups = group_runs([run(0, 80.0), run(1, 82.0, augment=True), run(2, 70.0, augment=True)])
    assert [(g.label, g.values) for g in groups] == [("er", (80.0, 82.0, 70.0))]
