"""A run's CSV tables, confusion matrices and cost: they parse and agree with ``results.json``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

FAST = ("--no-progress", "--no-tensorboard", "--epochs", "1", "--set", "train.log_every=5")


@pytest.fixture(scope="module")
def er_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real ER run on the embedded seq-digits (a few seconds)."""
    from lifelong.cli import main

    run_dir = tmp_path_factory.mktemp("tables") / "er"
    assert main(["run", *FAST, "--method", "er", "--seed", "3", "--run-dir", str(run_dir)]) == 0
    return run_dir


def _results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def test_accuracy_csv_is_the_accuracy_matrices_in_long_format(er_run: Path) -> None:
    results = _results(er_run)
    table = pd.read_csv(er_run / "accuracy.csv")
    assert list(table.columns) == ["protocol", "after_experience", "tested_experience", "accuracy"]
    for protocol, entry in results["protocols"].items():
        chosen = table[table.protocol == protocol]
        measured = [
            (i + 1, j + 1, v)
            for i, row in enumerate(entry["matrix"])
            for j, v in enumerate(row)
            if v is not None
        ]
        assert len(chosen) == len(measured) == 25  # evaluate_future: every entry is measured
        for i, j, value in measured:
            cell = chosen[(chosen.after_experience == i) & (chosen.tested_experience == j)]
            assert cell.accuracy.item() == pytest.approx(value, abs=1e-12)


def test_summary_csv_has_every_metric_and_the_cost_per_protocol(er_run: Path) -> None:
    results = _results(er_run)
    table = pd.read_csv(er_run / "summary.csv").set_index("protocol")
    assert set(table.index) == set(results["protocols"]) == {"class-il", "task-il"}
    for protocol, entry in results["protocols"].items():
        for name, value in entry["summary"].items():
            if value is None:
                assert math.isnan(table.loc[protocol, name]), name
            else:
                assert table.loc[protocol, name] == pytest.approx(value), name
        for name, value in results["cost"].items():
            if value is not None:
                assert table.loc[protocol, name] == pytest.approx(value), name
    # 10 classes: no top-5; the test sets differ in size, so the weighted accuracy is its own
    assert table["top5_accuracy"].isna().all()
    sizes = results["test_sizes"]
    last = results["protocols"]["class-il"]["matrix"][-1]
    weighted = sum(a * n for a, n in zip(last, sizes, strict=True)) / sum(sizes)
    assert table.loc["class-il", "stream_accuracy"] == pytest.approx(weighted)


def test_steps_csv_is_the_step_log_with_lr_and_seconds(er_run: Path) -> None:
    lines = (er_run / "metrics.jsonl").read_text().splitlines()
    steps = [r for r in map(json.loads, lines) if r["kind"] == "step"]
    table = pd.read_csv(er_run / "steps.csv")
    assert list(table.columns)[:4] == ["step", "experience", "epoch", "loss"]
    assert list(table.columns)[-2:] == ["lr", "seconds"]
    assert table.step.tolist() == [r["step"] for r in steps]
    assert table.loss.tolist() == pytest.approx([r["loss"] for r in steps])
    assert table.experience.tolist() == [r["experience"] + 1 for r in steps]  # 1-based
    assert (table.lr == 0.1).all()  # ER's default SGD learning rate, constant
    assert (table.seconds > 0).all()
    assert table.seconds.sum() <= sum(_results(er_run)["train_seconds"])


def test_cost_fields_exist_and_are_positive(er_run: Path) -> None:
    results = _results(er_run)
    cost = results["cost"]
    assert cost["peak_rss_mib"] > 10  # a Python process with torch loaded
    assert cost["images_per_second"] > 0
    assert cost["eval_seconds"] > 0 and cost["train_seconds"] > 0
    assert cost["peak_device_mib"] is None  # CPU run
    assert len(results["eval_seconds"]) == len(results["train_images"]) == 5
    assert all(n > 0 for n in results["train_images"])
    assert cost["train_images"] == sum(results["train_images"])
    assert cost["images_per_second"] == pytest.approx(
        cost["train_images"] / sum(results["train_seconds"])
    )


def test_confusion_matrices_count_the_seen_test_sets(er_run: Path) -> None:
    results = _results(er_run)
    sizes = results["test_sizes"]
    per_class = results["per_class_accuracy"]
    assert per_class["protocol"] == "class-il"
    for k in range(1, 6):
        confusion = pd.read_csv(er_run / "confusion" / f"after_{k}.csv", index_col=0)
        assert confusion.shape == (10, 10)
        counts = confusion.to_numpy()
        assert counts.sum() == sum(sizes[:k])  # the test sets of experiences 1..k, once each
        # the diagonal over all seen examples is the class-IL accuracy of the seen test sets
        seen_accuracy = 100.0 * counts.trace() / counts.sum()
        row = results["protocols"]["class-il"]["matrix"][k - 1][:k]
        expected = sum(a * n for a, n in zip(row, sizes[:k], strict=True)) / sum(sizes[:k])
        assert seen_accuracy == pytest.approx(expected)
        tested = counts.sum(axis=1)
        for c, value in enumerate(per_class["after"][k - 1]):
            if tested[c] == 0:
                assert value is None
            else:
                assert value == pytest.approx(100.0 * counts[c, c] / tested[c])
    long = pd.read_csv(er_run / "per_class_accuracy.csv")
    assert len(long) == 5 * 10


def test_per_experience_forgetting_averages_to_forgetting(er_run: Path) -> None:
    entry = _results(er_run)["protocols"]["class-il"]
    values = entry["forgetting_per_experience"]
    assert values[-1] is None and all(v is not None for v in values[:-1])
    assert sum(values[:-1]) / 4 == pytest.approx(entry["summary"]["forgetting"])


def test_report_shows_every_metric_the_cost_and_a_pdf_with_confusion_and_cost(
    er_run: Path, cli, tmp_path: Path
) -> None:
    import re
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(er_run, copy)
    for name in ("summary.csv", "accuracy.csv", "confusion_matrix.png"):
        (copy / name).unlink()
    result = cli("report", copy, "--pdf")
    assert result.code == 0, result.err
    results = _results(er_run)
    cost = results["cost"]
    assert "stream acc" in result.out and "top-5 acc" in result.out
    assert "class-il forgetting per experience (%)" in result.out
    assert "class-il accuracy per class (%) after experience 5" in result.out
    assert f"{cost['images_per_second']:.0f} training images/s" in result.out
    assert f"peak memory {cost['peak_rss_mib']:.0f} MiB" in result.out
    # the CSV tables and the confusion heatmap are written again from the run's files
    assert pd.read_csv(copy / "summary.csv").equals(pd.read_csv(er_run / "summary.csv"))
    assert (copy / "accuracy.csv").read_text() == (er_run / "accuracy.csv").read_text()
    assert (copy / "confusion_matrix.png").read_bytes().startswith(b"\x89PNG")
    pages = len(re.findall(rb"/Type\s*/Page\b", (copy / "report.pdf").read_bytes()))
    assert pages == 2 + 1 + 2  # two protocols, the losses, the confusion matrix, the cost


def test_cssl_tables_name_the_probe_and_its_mode(cli, tmp_path: Path) -> None:
    run_dir = tmp_path / "cssl"
    result = cli(
        "run", *FAST, "--method", "cssl", "--set", "method.probe=knn",
        "--set", "method.probe_per_class=5", "--set", "method.knn_k=3",
        "--iters", "2", "--run-dir", run_dir,
    )  # fmt: skip
    assert result.code == 0, result.err
    table = pd.read_csv(run_dir / "accuracy.csv")
    assert list(table.columns[:3]) == ["protocol", "probe", "probing_mode"]
    assert set(table.probe) == {"knn"} and set(table.probing_mode) == {"upto"}
    summary = pd.read_csv(run_dir / "summary.csv")
    assert set(summary.probe) == {"knn"}
