"""``lifelong run --wandb PROJECT``: the real wandb package, offline, read back from its files.

No network and no account: ``--wandb-mode offline`` writes the W&B run into ``RUN_DIR/wandb``
(every other wandb folder is pointed into ``tmp_path``). wandb 0.2x+ ships no reader for its
offline ``.wandb`` file, so :func:`wandb_records` reads it: a LevelDB log of protobuf records.
"""

from __future__ import annotations

import json
import math
import struct
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FAST = ("--no-progress", "--no-tensorboard", "--iters", "20", "--set", "train.log_every=5")
BLOCK = 32768
"""Block size of the LevelDB log format of ``.wandb`` files."""
FULL, LAST = 1, 4
"""Record types that end a record (a record may span blocks: FIRST, MIDDLE..., LAST)."""


def wandb_records(path: Path) -> Iterator[Any]:
    """The protobuf ``Record`` messages of an offline run's ``run-ID.wandb`` file."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", "not a .wandb file"
    position, parts = 7, []  # after the file header (ident, magic, version)
    while position + 7 <= len(data):
        left = BLOCK - position % BLOCK
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        if left < 7 or (length == 0 and kind == 0):  # block trailer (padding)
            position += left
            continue
        parts.append(data[position + 7 : position + 7 + length])
        position += 7 + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(parts))
            parts = []
            yield record


def nested_key(item: Any) -> str:
    return "/".join(item.nested_key) if item.nested_key else item.key


def finished_records(path: Path, seconds: float = 60.0) -> list[Any]:
    """The records of a ``.wandb`` file once it holds the run's ``exit`` record.

    wandb's service writes the file after ``finish()`` returns when an earlier run of the same
    process used the service (seen with wandb 0.31), so the test waits for the last record.
    """
    deadline = time.monotonic() + seconds
    while True:
        records = list(wandb_records(path))
        if any(r.WhichOneof("record_type") == "exit" for r in records):
            return records
        assert time.monotonic() < deadline, f"{path} has no exit record after {seconds} s"
        time.sleep(0.2)


def read_offline_run(run_dir: Path) -> dict[str, Any]:
    """The run, config, history rows, final summary and media files of the offline W&B run."""
    (folder,) = (run_dir / "wandb").glob("offline-run-*")
    (log_file,) = folder.glob("run-*.wandb")
    run: Any = None
    history: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    for record in finished_records(log_file):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
        elif kind == "history":
            history.append({nested_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            summary.update({nested_key(u): json.loads(u.value_json) for u in record.summary.update})
    assert run is not None
    config = {u.key: json.loads(u.value_json) for u in run.config.update}
    return {
        "run": run,
        "config": config,
        "history": history,
        "summary": summary,
        "media": folder / "files" / "media",
    }


@pytest.fixture
def wandb_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every wandb folder inside ``tmp_path``, no key, no console output."""
    home = tmp_path / "wandb-home"
    for name in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(home / name.lower()))
    monkeypatch.setenv("WANDB_ARTIFACT_DIR", str(home / "artifacts"))
    monkeypatch.setenv("HOME", str(home))  # no ~/.netrc with a key
    monkeypatch.setenv("WANDB_SILENT", "true")
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def offline_run(cli, wandb_env: Path, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    run_dir = tmp_path / "run"
    argv = ("run", *FAST, "--run-dir", run_dir, "--wandb", "cl-tests", "--wandb-mode", "offline")
    result = cli(*argv)
    assert result.code == 0, result.err
    return run_dir, read_offline_run(run_dir)


def test_offline_run_holds_config_and_step_losses(offline_run) -> None:
    run_dir, logged = offline_run
    assert logged["run"].project == "cl-tests"
    assert logged["run"].display_name == run_dir.name
    config = logged["config"]
    assert config["method"]["name"] == "er" and config["dataset"]["name"] == "seq-digits"
    assert config["train"]["iters"] == 20
    steps = [
        json.loads(line)
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()
        if json.loads(line)["kind"] == "step"
    ]
    train = [row for row in logged["history"] if "train/loss" in row]
    assert [row["train/step"] for row in train] == [s["step"] for s in steps]
    assert [row["train/loss"] for row in train] == pytest.approx([s["loss"] for s in steps])
    assert len(train) >= 5 * 20 // 5  # every record of every experience


def test_offline_run_holds_accuracies_summary_and_plots(offline_run) -> None:
    run_dir, logged = offline_run
    results = json.loads((run_dir / "results.json").read_text())
    evals = [row for row in logged["history"] if "eval/experience" in row]
    assert [row["eval/experience"] for row in evals] == [1, 2, 3, 4, 5]
    matrix = results["protocols"]["class-il"]["matrix"]
    means = [sum(matrix[i][: i + 1]) / (i + 1) for i in range(5)]
    assert [row["eval/class-il/average_accuracy"] for row in evals] == pytest.approx(means)
    for protocol, entry in results["protocols"].items():
        for metric, value in entry["summary"].items():
            if isinstance(value, float) and math.isfinite(value):
                assert logged["summary"][f"{protocol}/{metric}"] == pytest.approx(value)
    # the accuracy matrix as a table: one row per (protocol, after, tested) cell of results.json
    (table_file,) = (logged["media"] / "table").glob("accuracy_matrix_*.table.json")
    table = json.loads(table_file.read_text())
    assert table["columns"] == ["protocol", "after_experience", "tested_experience", "accuracy"]
    cells = {(p, a, t): v for p, a, t, v in table["data"]}
    assert len(cells) == 2 * 25
    assert cells[("class-il", 3, 2)] == pytest.approx(matrix[2][1])
    # the plots: the heatmap and the curves, as images
    images = {p.name.rsplit("_", 2)[0] for p in (logged["media"] / "images" / "plots").glob("*")}
    assert {"accuracy_matrix", "accuracy_curves"} <= images
    heatmap = next((logged["media"] / "images" / "plots").glob("accuracy_matrix_*.png"))
    assert heatmap.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_the_extra_wandb_is_one_line(
    cli, one_line_error, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` fails as when not installed
    run_dir = tmp_path / "run"
    result = cli("run", *FAST, "--run-dir", run_dir, "--wandb", "p", "--wandb-mode", "offline")
    one_line_error(result, '--wandb needs the wandb package: pip install "lifelong[wandb]"')
    assert not run_dir.exists()


def test_online_without_a_key_is_one_line_and_the_folder_restarts(
    cli, one_line_error, wandb_env: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    result = cli("run", *FAST, "--run-dir", run_dir, "--wandb", "p")  # online by default
    one_line_error(result, "Weights & Biases could not start", "wandb login", "offline")
    assert not (run_dir / "config.yaml").exists()  # nothing to resume: a new run may start
    again = cli("run", *FAST, "--run-dir", run_dir, "--wandb", "p", "--wandb-mode", "offline")
    assert again.code == 0, again.err


def test_mammoth_wandb_flags() -> None:
    from lifelong.cli import build_parser, parse_command
    from lifelong.cli.commands import wandb_target
    from lifelong.cli.mammoth import mammoth_request
    from lifelong.reporting.wandb_sink import WandbTarget

    def target(*argv: str) -> WandbTarget | None:
        args = parse_command(build_parser(), ["run", *argv])
        return wandb_target(args, mammoth_request(args))

    assert target() is None
    assert target("--nowand") is None
    assert target("--wandb_project", "p", "--wandb_entity", "lab") == WandbTarget(
        "p", "online", "lab"
    )
    assert target("--wandb", "p", "--wandb_mode", "offline") == WandbTarget("p", "offline")
    assert target("--wandb", "p", "--wandb_project", "p") == WandbTarget("p")


def test_the_python_api_logs_the_same_way(wandb_env: Path, tmp_path: Path) -> None:
    from lifelong import Experiment
    from lifelong.reporting.wandb_sink import WandbTarget

    run_dir = tmp_path / "api-run"
    experiment = Experiment(dataset="seq-digits", iters=5)
    results = experiment.run(run_dir, False, False, WandbTarget("api-project", "offline"))
    logged = read_offline_run(run_dir)
    assert logged["run"].project == "api-project"
    average = results["protocols"]["class-il"]["summary"]["average_accuracy"]
    assert logged["summary"]["class-il/average_accuracy"] == pytest.approx(average)


def test_a_failed_run_closes_its_wandb_run_as_failed(wandb_env: Path, tmp_path: Path) -> None:
    from lifelong.reporting.wandb_sink import WandbSink, WandbTarget

    run_dir = tmp_path / "failed-run"
    run_dir.mkdir()
    sink = WandbSink(WandbTarget("p", "offline"))
    sink.open(run_dir, {"seed": 3}, draws_plots=False)
    sink.step(1, {"loss": 0.5})
    sink.close()  # what a run that raised does
    (log_file,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    records = finished_records(log_file)
    (exit_record,) = [r.exit for r in records if r.WhichOneof("record_type") == "exit"]
    assert exit_record.exit_code == 1
    assert read_offline_run(run_dir)["history"][0]["train/loss"] == pytest.approx(0.5)


def test_a_lost_wandb_process_is_one_clear_error(wandb_env: Path, tmp_path: Path) -> None:
    from lifelong.errors import OutputError
    from lifelong.reporting.wandb_sink import WandbSink, WandbTarget

    sink = WandbSink(WandbTarget("p", "offline"))
    sink._helper.kill()  # e.g. killed by the system for memory
    with pytest.raises(OutputError, match="Weights & Biases process stopped"):
        for step in range(100):  # the pipe may take a few writes to report it
            sink.step(step, {"loss": 1.0})
    sink.close()


def test_a_resumed_run_continues_its_wandb_run(wandb_env: Path, tmp_path: Path) -> None:
    from lifelong.reporting.wandb_sink import WandbSink, WandbTarget
    from lifelong.reporting.wandb_worker import RUN_ID_FILE

    run_dir = tmp_path / "resumed-run"
    run_dir.mkdir()
    for session in range(2):  # the first session dies; `--resume` opens the second
        sink = WandbSink(WandbTarget("p", "offline"))
        sink.open(run_dir, {"seed": 3}, draws_plots=False)
        sink.step(session + 1, {"loss": 0.5})
        sink.close()
        if session == 0:
            first_id = (run_dir / RUN_ID_FILE).read_text().strip()
    logs = sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(logs) == 2  # one offline folder per session; `wandb sync` joins them by id
    ids = {
        record.run.run_id
        for log_file in logs
        for record in finished_records(log_file)
        if record.WhichOneof("record_type") == "run"
    }
    assert ids == {first_id}
    # a new run directory gets a W&B run of its own
    other = tmp_path / "other-run"
    other.mkdir()
    sink = WandbSink(WandbTarget("p", "offline"))
    sink.open(other, {"seed": 3}, draws_plots=False)
    sink.close()
    assert (other / RUN_ID_FILE).read_text().strip() != first_id


def test_a_sweep_with_wandb_gives_each_trial_its_own_wandb_run(
    cli, wandb_env: Path, tmp_path: Path
) -> None:
    import yaml

    sweep = {
        "common": {
            "dataset": {"name": "seq-digits"},
            "method": {"name": "er", "buffer_size": 20},
            "train": {"iters": 2, "epochs": 1, "batch_size": 8},
            "backbone": {"name": "mlp", "hidden": [16]},
        },
        "experiments": {"a": {}},
        "seeds": [0, 1],
        "out": str(tmp_path / "out"),
    }
    file = tmp_path / "s.yaml"
    file.write_text(yaml.safe_dump(sweep))
    result = cli("sweep", file, "--no-tensorboard", "--wandb", "sweep-p", "--wandb-mode", "offline")
    assert result.code == 0, result.err
    run_dirs = sorted(p.parent for p in (tmp_path / "out").rglob("results.json"))
    assert len(run_dirs) == 2
    logged = [read_offline_run(run_dir) for run_dir in run_dirs]
    assert {entry["run"].project for entry in logged} == {"sweep-p"}
    assert len({entry["run"].run_id for entry in logged}) == 2  # one W&B run per trial
    assert {entry["config"]["seed"] for entry in logged} == {0, 1}


def test_sweep_output_flags_pass_the_wandb_target_to_every_trial() -> None:
    from lifelong.reporting.wandb_sink import WandbTarget
    from lifelong.sweep.runner import output_flags

    assert output_flags(True, None) == ()
    assert output_flags(False, WandbTarget("p", "offline", "lab")) == (
        "--no-tensorboard", "--wandb", "p", "--wandb-mode", "offline", "--wandb_entity", "lab",
    )  # fmt: skip
