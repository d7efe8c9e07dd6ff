"""`lifelong reproduce` end to end on a tiny ledger row, and its decisions on hand-made results."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from lifelong.reproduce import Result, write_result

TINY: dict[str, Any] = {
    "id": "tiny-er",
    "paper": "A paper",
    "table": "Table 1",
    "value": 12.0,
    "std": 0.5,
    "verified": True,
    "source": "a test value",
    "scenario": "seq-mnist",
    "preset": "seq-mnist/er-200",
    "protocol": "class-il",
    "seeds": [0, 1],
    "compute": {"device": "cpu", "note": "seconds"},
    "not_measured": "not run yet",
    # two steps per experience on the test's own tiny MNIST
    "overrides": {"train.iters": 2, "train.log_every": 1},
}


def write_ledger(path: Path, *rows: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"rows": list(rows)}, sort_keys=False))
    return path


def final_accuracy(run_dir: Path) -> float:
    results = json.loads((run_dir / "results.json").read_text())
    return float(results["protocols"]["class-il"]["summary"]["average_accuracy"])


def test_reproduce_runs_the_seeds_records_them_and_resumes(
    cli: Callable[..., Any], tmp_path: Path, fake_mnist: Path
) -> None:
    ledger = write_ledger(tmp_path / "ledger.yaml", TINY)
    out = tmp_path / "runs"
    argv = ["reproduce", "tiny-er", "--ledger", ledger, "--data-root", fake_mnist]
    first = cli(*argv, "--out", out, "--jobs", "2")
    assert first.code == 0, first.err
    (folder,) = (out / "seq-mnist").iterdir()
    assert folder.name.startswith("er-200-")
    runs = [folder / "run" / f"seed{s}" for s in (0, 1)]
    values = [final_accuracy(r) for r in runs]  # both seeds ran through the sweep
    assert all((r / "trial-config.yaml").is_file() for r in runs)
    assert (folder / "summary.md").is_file()
    mean, std = statistics.fmean(values), statistics.stdev(values)
    recorded = yaml.safe_load((tmp_path / "ledger_results.yaml").read_text())["tiny-er"]
    assert recorded["values"] == values and recorded["seeds"] == [0, 1] and recorded["n"] == 2
    assert abs(recorded["mean"] - mean) < 1e-9 and abs(recorded["std"] - std) < 1e-9
    expected = "pass" if abs(mean - 12.0) <= 3.0 else "fail"
    assert recorded["decision"] == expected and recorded["device"] == "cpu"
    assert recorded["machine"] and recorded["commit"] and recorded["date"]
    assert f"tiny-er: class-il {mean:.2f} ± {std:.2f} (n=2)" in first.out
    assert first.out.splitlines()[0].endswith(f": {expected}")
    # a second call finds both seeds finished and records the same numbers
    stamps = [(r / "results.json").stat().st_mtime_ns for r in runs]
    again = cli(*argv, "--out", out)
    assert again.code == 0, again.err
    assert [(r / "results.json").stat().st_mtime_ns for r in runs] == stamps
    assert yaml.safe_load((tmp_path / "ledger_results.yaml").read_text())["tiny-er"]["values"] == (
        values
    )
    table = cli("reproduce", "--table", "--ledger", ledger)
    assert table.code == 0 and f"{mean:.2f} ± {std:.2f} (n=2)" in table.out


def test_decisions_on_hand_made_results(cli: Callable[..., Any], tmp_path: Path) -> None:
    rows = [
        {**TINY, "id": "close"},
        {**TINY, "id": "far"},
        {**TINY, "id": "recalled", "verified": False},
        {**TINY, "id": "unpublished", "value": None, "std": None, "verified": False},
        {**TINY, "id": "never-run"},
    ]
    ledger = write_ledger(tmp_path / "ledger.yaml", *rows)
    results = tmp_path / "ledger_results.yaml"

    def made(mean: float) -> Result:
        return Result(mean, 0.1, 2, (mean - 0.07, mean + 0.07), (0, 1), "2026-12-06", "test",
                      "abc", "cpu", 1.0, "ignored: the table decides from the ledger")  # fmt: skip

    for row_id, mean in (("close", 14.9), ("far", 15.1), ("recalled", 9.5), ("unpublished", 3.0)):
        write_result(results, row_id, made(mean))
    listing = cli("reproduce", "--list", "--ledger", ledger)
    assert listing.code == 0, listing.err
    status = {line.split()[0]: line.split()[1:3] for line in listing.out.splitlines()}
    assert status["close"][0] == "pass"  # |14.9 − 12| ≤ max(0.5, 3)
    assert status["far"][0] == "fail"  # 3.1 points away
    assert status["recalled"] == ["unverified", "(pass)"]
    assert status["unpublished"] == ["no", "paper"]
    assert status["never-run"] == ["not", "measured"]
    table = cli("reproduce", "--table", "--ledger", ledger)
    assert "| `far` |" in table.out and "+3.10 | fail |" in table.out
    assert "5 rows: 1 fail, 1 no paper value, 1 not measured, 1 pass, 1 unverified (pass)." in (
        table.out
    )


def test_smoke_runs_a_row_on_tiny_data_and_records_nothing(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    ledger = write_ledger(tmp_path / "ledger.yaml", TINY, {**TINY, "id": "tiny-er-again"})
    done = cli("reproduce", "tiny-er", "tiny-er-again", "--smoke", "--ledger", ledger)
    assert done.code == 0, done.err
    assert "tiny-er: smoke ok, class-il" in done.out and "2 of 2 rows ran" in done.out
    assert not (tmp_path / "ledger_results.yaml").exists()


def test_a_row_whose_preset_breaks_fails_its_smoke_run(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    broken = {**TINY, "id": "broken", "overrides": {"method.lr": -1.0}}
    ledger = write_ledger(tmp_path / "ledger.yaml", broken, {**TINY, "id": "fine"})
    done = cli("reproduce", "broken", "fine", "--smoke", "--ledger", ledger, "--jobs", "2")
    assert done.code == 1
    assert "broken: SMOKE FAILED: ConfigError" in done.out and "method.lr" in done.out
    assert "fine: smoke ok" in done.out
    assert done.err.strip() == "lifelong: 1 of 2 rows failed their smoke run"


def test_an_error_leaves_the_results_file_untouched(
    cli: Callable[..., Any], tmp_path: Path, one_line_error: Callable[..., str]
) -> None:
    ledger = write_ledger(tmp_path / "ledger.yaml", TINY)
    results = tmp_path / "ledger_results.yaml"
    write_result(results, "tiny-er", Result(1, 0, 1, (1.0,), (0,), "d", "m", "c", "cpu", 0, "x"))
    before = results.read_bytes()
    for argv in (
        ("reproduce", "tiny-eer", "--ledger", ledger),
        ("reproduce", "tiny-er", "--ledger", ledger, "--seeds", "0", "0"),
        ("reproduce", "tiny-er", "--ledger", ledger, "--data-root", tmp_path / "none"),
    ):
        one_line_error(cli(*argv, "--out", tmp_path / "o"))
    assert results.read_bytes() == before and not (tmp_path / "o").exists()


def test_bf16_runs_go_to_their_own_folder_and_record_the_precision(
    cli: Callable[..., Any], tmp_path: Path, fake_mnist: Path
) -> None:
    ledger = write_ledger(tmp_path / "ledger.yaml", {**TINY, "seeds": [0]})
    out = tmp_path / "runs"
    argv = ["reproduce", "tiny-er", "--ledger", ledger, "--data-root", fake_mnist, "--out", out]
    assert cli(*argv).code == 0
    done = cli(*argv, "--precision", "bf16")
    assert done.code == 0, done.err
    folders = sorted((out / "seq-mnist").iterdir())
    assert len(folders) == 2  # fp32 and bf16 runs are kept apart
    configs = [yaml.safe_load((f / "run" / "seed0" / "config.yaml").read_text()) for f in folders]
    assert sorted(c["train"]["precision"] for c in configs) == ["bf16", "fp32"]
    recorded = yaml.safe_load((tmp_path / "ledger_results.yaml").read_text())["tiny-er"]
    assert recorded["precision"] == "bf16" and recorded["peak_device_mib"] is None  # the CPU


def test_results_entries_without_the_newer_fields_still_load(tmp_path: Path) -> None:
    from lifelong.errors import ConfigError
    from lifelong.reproduce import read_results

    path = tmp_path / "results.yaml"
    old: dict[str, Any] = {"mean": 1.0, "std": 0.0, "n": 1, "values": [1.0], "seeds": [0]}
    old |= {"date": "d", "machine": "m", "commit": "c", "device": "cpu", "wall_seconds": 1.0}
    old["decision"] = "x"
    path.write_text(
        yaml.safe_dump({"a": old, "b": {**old, "precision": "bf16", "peak_device_mib": 512}})
    )
    entries = read_results(path)
    assert entries["a"].precision == "fp32" and entries["a"].peak_device_mib is None
    assert entries["b"].precision == "bf16" and entries["b"].peak_device_mib == 512.0
    path.write_text(yaml.safe_dump({"c": {**old, "precision": "fp16"}}))
    with pytest.raises(ConfigError, match="precision"):
        read_results(path)
