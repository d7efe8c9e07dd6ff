"""``lifelong compare``: mean ± std over seeds of finished runs."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

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


def test_methods_with_their_own_network_are_not_labelled_by_the_backbone() -> None:
    from lifelong.reporting.compare import group_runs

    def run(method: str, backbone: dict[str, object], accuracy: float) -> dict[str, object]:
        config = {
            "method": {"name": method},
            "dataset": {"name": "seq-mnist"},
            "backbone": backbone,
            "seed": 0,
        }
        return {
            "config": config,
            "protocols": {"class-il": {"summary": {"average_accuracy": accuracy}}},
        }

    runs = [
        run("er", {"name": "mlp", "width": 100}, 80.0),
        run("er", {"name": "resnet18", "width": 100}, 70.0),
        # gr builds its own network: its backbone section (any name, any field) is ignored
        run("gr", {"name": "resnet18", "width": 100}, 60.0),
        run("gr", {"name": "mlp", "width": 400}, 62.0),
    ]
    labels = {g.label: g.values for g in group_runs(runs, frozenset({"gr"}))}
    assert labels == {"er / mlp": (80.0,), "er / resnet18": (70.0,), "gr": (60.0, 62.0)}
    # without the method's own-network flag the backbone would split and label gr's runs
    assert "gr / resnet18 (backbone.width=100)" in {g.label for g in group_runs(runs)}


def test_compare_knows_which_registered_methods_build_their_own_network() -> None:
    import lifelong.components  # noqa: F401
    from lifelong.methods.base import METHODS

    own = {n for n, m in METHODS.items() if not m.method_class.uses_backbone}
    assert {"gr", "bir", "bir_si"} <= own
    assert not own & {"er", "derpp", "sarl", "finetune", "si"}


def _write_run(run_dir: Path, method: str, seed: int, rows: list[list[float]]) -> dict:
    """A finished run's results.json, written as `lifelong run` writes it (two experiences)."""
    from lifelong.reporting.results import results_dict, write_results
    from lifelong.running.train import FitState

    config = {
        "method": {"name": method},
        "dataset": {"name": "seq-digits"},
        "backbone": {"name": "mlp"},
        "seed": seed,
    }
    state = FitState(2, {"class-il": rows}, step=10, seconds=[1.0, 1.0], images=[50, 50])
    results = results_dict(state, 2, config)
    run_dir.mkdir(parents=True)
    write_results(run_dir / "results.json", results)
    return results


def test_one_seed_shows_n_1_and_no_std(cli, tmp_path: Path) -> None:
    import pandas as pd

    _write_run(tmp_path / "runs" / "er-0", "er", 0, [[90.0, 0.0], [70.0, 80.0]])
    _write_run(tmp_path / "runs" / "lwf-0", "lwf", 0, [[90.0, 0.0], [50.0, 60.0]])
    _write_run(tmp_path / "runs" / "lwf-1", "lwf", 1, [[90.0, 0.0], [60.0, 70.0]])
    result = cli("compare", tmp_path / "runs", "--out", tmp_path / "cmp")
    assert result.code == 0, result.err
    table = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "| seq-digits | er | 75.00 (n=1) |" in table
    assert "| seq-digits | lwf | 60.00 ± 7.07 (n=2) |" in table  # sample std of 55 and 65
    assert "± 0.00" not in table and "sample standard deviation (n − 1)" in table
    assert table in result.out
    csv = pd.read_csv(tmp_path / "cmp" / "comparison.csv").set_index("configuration")
    assert csv.loc["er", "n"] == 1 and pd.isna(csv.loc["er", "std"])
    assert csv.loc["er", "mean"] == 75.0
    assert csv.loc["lwf", "std"] == pytest.approx(statistics.stdev([55.0, 65.0]))
    assert csv.loc["lwf", "values"] == "55.0;65.0"


def test_results_files_written_before_the_new_fields_still_load(cli, tmp_path: Path) -> None:
    results = _write_run(tmp_path / "old", "er", 0, [[90.0, 0.0], [70.0, 80.0]])
    for key in ("eval_seconds", "train_images", "cost", "test_sizes", "per_class_accuracy"):
        results.pop(key, None)
    entry = results["protocols"]["class-il"]
    entry.pop("forgetting_per_experience")
    for key in ("stream_accuracy", "top5_accuracy"):
        entry["summary"].pop(key)
    (tmp_path / "old" / "results.json").write_text(json.dumps(results))
    compared = cli("compare", tmp_path / "old", "--out", tmp_path / "cmp")
    assert compared.code == 0, compared.err
    assert "| seq-digits | er | 75.00 (n=1) |" in compared.out
    report = cli("report", tmp_path / "old")
    assert report.code == 0, report.err
    assert "er on seq-digits" in report.out
