"""``lifelong run | list | report`` on the offline default scenario (seq-digits), in-process and
through the installed console script."""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from lifelong.backbones import BACKBONES
from lifelong.cli import build_parser, config_from_args, main
from lifelong.config.presets import load_preset, preset_names
from lifelong.data.scenarios import SCENARIOS
from lifelong.methods.base import METHODS

FAST = ("--no-progress", "--no-tensorboard")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
N_EXPERIENCES = 5


def resolved(*argv: str) -> Any:
    """The RunConfig that ``lifelong run ARGV`` would train."""
    return config_from_args(build_parser().parse_args(["run", *argv]))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert len(data) > 1000, path


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One default ``lifelong run`` (ER on seq-digits, TensorBoard on): (run_dir, stdout)."""
    run_dir = tmp_path_factory.mktemp("default") / "run"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["run", "--no-progress", "--run-dir", str(run_dir)])
    assert code == 0
    return run_dir, out.getvalue()


# ---------------------------------------------------------------- the run directory


def test_run_prints_the_results_tables(default_run):
    run_dir, out = default_run
    assert out.startswith(f"er on seq-digits — {N_EXPERIENCES}/{N_EXPERIENCES} experiences")
    for text in (
        "avg acc",
        "forgetting",
        "BWT",
        "FWT",
        "class-il accuracy (%)",
        "task-il accuracy (%)",
    ):
        assert text in out
    results = json.loads((run_dir / "results.json").read_text())
    rows = {
        line.split()[0]: line.split()[1:]
        for line in out.splitlines()
        if re.match(r"^\S+-il\s+[-\d]", line)
    }
    assert set(rows) == {"class-il", "task-il"}
    for protocol, cells in rows.items():
        assert cells[0] == f"{results['protocols'][protocol]['summary']['average_accuracy']:.1f}"
    assert out.rstrip().endswith(f"run directory: {run_dir}")


def test_results_json_holds_full_matrices(default_run):
    run_dir, _ = default_run
    results = json.loads((run_dir / "results.json").read_text())
    assert results["completed"] is True
    assert results["experiences_trained"] == results["num_experiences"] == N_EXPERIENCES
    assert len(results["train_seconds"]) == N_EXPERIENCES
    assert set(results["protocols"]) == {"class-il", "task-il"}
    for protocol, entry in results["protocols"].items():
        matrix = np.array(entry["matrix"], dtype=float)
        assert matrix.shape == (N_EXPERIENCES, N_EXPERIENCES), protocol
        assert np.all((matrix >= 0) & (matrix <= 100))
        assert len(entry["initial"]) == N_EXPERIENCES
        # the summary is the mean of the last row (average accuracy after the last experience)
        assert math.isclose(entry["summary"]["average_accuracy"], matrix[-1].mean(), rel_tol=1e-9)
        # the diagonal (just-trained experience) is learned well on this easy data
        assert np.diag(matrix).min() > 80
    class_il = np.array(results["protocols"]["class-il"]["matrix"])
    assert np.all(
        class_il[np.triu_indices(N_EXPERIENCES, 1)] == 0
    )  # unseen classes never predicted
    assert results["config"] == yaml.safe_load((run_dir / "config.yaml").read_text())


def test_metrics_jsonl_has_steps_and_one_eval_per_experience(default_run):
    run_dir, _ = default_run
    records = read_jsonl(run_dir / "metrics.jsonl")
    steps = [r for r in records if r["kind"] == "step"]
    evals = [r for r in records if r["kind"] == "eval"]
    assert len(steps) + len(evals) == len(records)
    assert [e["experience"] for e in evals] == list(range(N_EXPERIENCES))
    numbers = [s["step"] for s in steps]
    assert numbers == sorted(set(numbers)) and numbers[0] > 0
    for record in steps:
        assert {"step", "experience", "epoch", "loss"} <= set(record)
        assert math.isfinite(record["loss"]) and record["loss"] >= 0
    results = json.loads((run_dir / "results.json").read_text())
    assert numbers[-1] == results["steps"]
    for record in evals:
        for protocol, row in record["accuracy"].items():
            assert row == results["protocols"][protocol]["matrix"][record["experience"]]


def test_tensorboard_events_hold_train_and_eval_scalars(default_run):
    run_dir, _ = default_run
    events = list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir / "tensorboard"))
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    assert {"train/loss", "eval/class-il/average_accuracy", "eval/task-il/average_accuracy"} <= tags
    evals = accumulator.Scalars("eval/class-il/average_accuracy")
    assert [e.step for e in evals] == list(range(1, N_EXPERIENCES + 1))


def test_plots_are_pngs(default_run):
    run_dir, _ = default_run
    assert_png(run_dir / "accuracy_matrix.png")
    assert_png(run_dir / "accuracy_curves.png")


def test_config_yaml_reloads_to_the_same_config(default_run, tmp_path, cli):
    run_dir, _ = default_run
    written = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert resolved("--config", str(run_dir / "config.yaml")).to_raw() == written
    # and training from it reproduces the run exactly (CPU, same seed)
    again = tmp_path / "again"
    result = cli("run", *FAST, "--config", run_dir / "config.yaml", "--run-dir", again)
    assert result.code == 0, result.err
    assert (again / "config.yaml").read_bytes() == (run_dir / "config.yaml").read_bytes()
    first = json.loads((run_dir / "results.json").read_text())["protocols"]
    second = json.loads((again / "results.json").read_text())["protocols"]
    assert {p: e["matrix"] for p, e in first.items()} == {p: e["matrix"] for p, e in second.items()}


def test_default_run_dir_is_under_runs(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("run", *FAST, "--epochs", "1", "--seed", "3")
    assert result.code == 0, result.err
    (run_dir,) = (tmp_path / "runs" / "seq-digits").iterdir()
    assert run_dir.name.startswith("er-") and run_dir.name.endswith("-s3")
    assert (run_dir / "results.json").exists()


# ---------------------------------------------------------------- flags and layering


@pytest.mark.parametrize(
    "spelling",
    [
        ("--buffer-size", "50", "--n-epochs", "1", "--batch-size", "32"),
        ("--buffer_size", "50", "--n_epochs", "1", "--batch_size", "32"),
        ("--model", "er", "--buffer-size", "50", "--epochs", "1", "--batch-size", "32"),
        (
            "--method",
            "er",
            "--set",
            "buffer_size=50",
            "--set",
            "train.epochs=1",
            "--set",
            "batch_size=32",
        ),
    ],
    ids=["dashes", "underscores", "model-alias", "set"],
)
def test_flag_spellings_give_the_same_config_yaml(cli, tmp_path, spelling):
    reference = tmp_path / "reference"
    flags = ("--method", "er", "--buffer-size", "50", "--epochs", "1", "--batch-size", "32")
    assert cli("run", *FAST, "--run-dir", reference, *flags).code == 0
    run_dir = tmp_path / "spelled"
    result = cli("run", *FAST, "--run-dir", run_dir, *spelling)
    assert result.code == 0, result.err
    assert (run_dir / "config.yaml").read_bytes() == (reference / "config.yaml").read_bytes()
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["method"]["buffer_size"] == 50
    assert config["train"]["epochs"] == 1 and config["train"]["batch_size"] == 32


def test_set_method_field_lands_in_config_yaml(cli, tmp_path):
    run_dir = tmp_path / "run"
    result = cli(
        "run",
        *FAST,
        "--run-dir",
        run_dir,
        "--set",
        "method.alpha=0.5",
        "--method",
        "der",
        "--epochs",
        "1",
    )
    assert result.code == 0, result.err
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["method"]["name"] == "der"
    assert config["method"]["alpha"] == 0.5


def test_every_flag_maps_to_its_config_field():
    cfg = resolved(
        "--method", "derpp", "--backbone", "mlp", "--buffer-size", "77", "--minibatch-size", "9",
        "--lr", "0.03", "--alpha", "0.2", "--beta", "0.4", "--epochs", "3", "--iters", "11",
        "--batch-size", "8", "--data-root", "/somewhere", "--seed", "5", "--device", "cpu",
    )  # fmt: skip
    assert cfg.method_name == "derpp" and cfg.backbone_name == "mlp"
    assert (cfg.method.buffer_size, cfg.method.minibatch_size) == (77, 9)
    assert (cfg.method.lr, cfg.method.alpha, cfg.method.beta) == (0.03, 0.2, 0.4)
    assert (cfg.train.epochs, cfg.train.iters, cfg.train.batch_size) == (3, 11, 8)
    assert (cfg.dataset.root, cfg.seed, cfg.device) == ("/somewhere", 5, "cpu")


def test_layers_scenario_defaults_config_file_then_flags(tmp_path):
    # no flags: the scenario's paper defaults (seq-digits: 5 epochs of batch 16)
    plain = resolved()
    assert (plain.train.epochs, plain.train.batch_size) == (5, 16)
    config = tmp_path / "cfg.yaml"
    config.write_text(
        yaml.safe_dump({"method": {"name": "er", "lr": 0.05}, "train": {"epochs": 2}})
    )
    from_file = resolved("--config", str(config))
    assert (from_file.method.lr, from_file.train.epochs, from_file.train.batch_size) == (
        0.05,
        2,
        16,
    )
    overridden = resolved("--config", str(config), "--lr", "0.02", "--set", "train.epochs=4")
    assert (overridden.method.lr, overridden.train.epochs) == (0.02, 4)


def test_download_flag_sets_dataset_download():
    assert resolved("--download").dataset.download is True
    assert resolved().dataset.download is False


# ---------------------------------------------------------------- presets


def _need_preset(name: str) -> None:
    if name not in preset_names():
        pytest.skip(f"preset {name!r} is not shipped yet")


def test_every_preset_resolves_to_its_values():
    names = preset_names()
    if not names:
        pytest.skip("no presets shipped yet")
    for name in names:
        raw = load_preset(name)
        cfg = resolved("--preset", name).to_raw()
        assert cfg["method"]["name"] == raw["method"]["name"], name
        for section in ("method", "dataset", "backbone", "train"):
            for key, value in raw.get(section, {}).items():
                assert cfg[section][key] == value, f"{name}: {section}.{key}"


def test_auto_preset_for_seq_mnist_er_200():
    _need_preset("seq-mnist/er-200")
    cfg = resolved("--dataset", "seq-mnist", "--method", "er", "--buffer-size", "200")
    assert cfg.preset == "seq-mnist/er-200"
    assert cfg.method.lr == 0.01
    assert cfg.train.batch_size == 10
    assert cfg.method.minibatch_size == 10
    assert cfg.train.epochs == 1
    # flags still win over the preset, and --preset none turns it off
    assert (
        resolved(
            "--dataset", "seq-mnist", "--method", "er", "--buffer-size", "200", "--lr", "0.05"
        ).method.lr
        == 0.05
    )
    plain = resolved(
        "--dataset", "seq-mnist", "--method", "er", "--buffer-size", "200", "--preset", "none"
    )
    assert plain.preset is None
    assert (plain.method.lr, plain.method.minibatch_size) == (0.1, 32)


def test_explicit_preset_run_writes_its_values(cli, tmp_path):
    _need_preset("seq-mnist/er-200")
    run_dir = tmp_path / "run"
    # the preset's hyper-parameters on the offline digits (flags override the preset's dataset)
    result = cli(
        "run",
        *FAST,
        "--run-dir",
        run_dir,
        "--preset",
        "seq-mnist/er-200",
        "--dataset",
        "seq-digits",
    )
    assert result.code == 0, result.err
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["dataset"]["name"] == "seq-digits"
    assert (config["method"]["lr"], config["method"]["minibatch_size"]) == (0.01, 10)
    assert (config["train"]["batch_size"], config["train"]["epochs"]) == (10, 1)


# ---------------------------------------------------------------- list and report


def test_list_shows_every_component_with_its_fields(cli):
    result = cli("list")
    assert result.code == 0
    out = result.out
    for name in METHODS:
        assert f"  {name} " in out, name
        for field in METHODS.get(name).config_cls.__dataclass_fields__:
            assert field in out
    for name in SCENARIOS:
        assert f"  {name} " in out, name
    for name in BACKBONES:
        assert f"  {name} " in out, name
        for field in BACKBONES.get(name).config_cls.__dataclass_fields__:
            assert field in out
    for field in ("epochs", "batch_size", "log_every", "root", "classes_per_experience"):
        assert f"    {field} " in out
    assert "SGD learning rate." in out  # field docs are shown
    for name in preset_names():
        assert name in out


def test_list_names_every_ssl_model_strategy_and_buffer(cli):
    from lifelong.buffers.stream_buffers import STREAM_BUFFERS
    from lifelong.ssl.model import SSL_MODELS
    from lifelong.ssl.strategies.base import SSL_STRATEGIES

    for what, registry in (
        ("ssl_models", SSL_MODELS),
        ("strategies", SSL_STRATEGIES),
        ("buffers", STREAM_BUFFERS),
    ):
        out = cli("list", what).out
        assert all(f"  {name} " in out for name in registry), what


def test_list_presets(cli):
    result = cli("list", "presets")
    assert result.code == 0
    assert result.out.startswith("presets (--preset NAME):")
    for name in preset_names():
        assert f"  {name} " in result.out
    assert "methods (" not in result.out


@pytest.mark.parametrize(
    "what", ["methods", "datasets", "backbones", "train", "ssl_models", "strategies", "buffers"]
)
def test_list_one_section(cli, what):
    result = cli("list", what)
    assert result.code == 0
    assert result.out.count("\n\n") == 0  # one section only
    assert "presets (" not in result.out


def test_report_prints_tables_and_rewrites_plots(cli, default_run, tmp_path):
    source, run_out = default_run
    run_dir = tmp_path / "copy"
    shutil.copytree(source, run_dir)
    for name in ("accuracy_matrix.png", "accuracy_curves.png"):
        (run_dir / name).unlink()
    result = cli("report", run_dir)
    assert result.code == 0, result.err
    assert result.out.startswith(run_out.split("\nrun directory:")[0])
    for name in ("accuracy_matrix.png", "accuracy_curves.png"):
        assert f"wrote {run_dir / name}" in result.out
        assert_png(run_dir / name)


# ---------------------------------------------------------------- the console script


def test_console_script_help(lifelong_script):
    done = subprocess.run([lifelong_script, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    for word in ("run", "list", "report"):
        assert word in done.stdout
    done = subprocess.run(
        [lifelong_script, "run", "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0
    for flag in (
        "--method",
        "--model",
        "--buffer-size",
        "--buffer_size",
        "--set",
        "--resume",
        "--preset",
    ):
        assert flag in done.stdout


def test_console_script_run(lifelong_script, tmp_path):
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [lifelong_script, "run", "--no-progress", "--run-dir", str(run_dir), "--epochs", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "class-il" in done.stdout and "task-il" in done.stdout
    assert "Traceback" not in done.stderr
    assert "after experience 5" in done.stderr  # progress is logged at INFO
    assert json.loads((run_dir / "results.json").read_text())["completed"] is True


def test_console_script_bad_input_exits_2_with_one_line(lifelong_script, tmp_path):
    done = subprocess.run(
        [lifelong_script, "run", "--run-dir", str(tmp_path / "run"), "--method", "derr"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("lifelong: error: unknown method 'derr'")
    assert done.stdout == ""


def test_pdf_report_from_run_and_from_report(cli, tmp_path):
    run_dir = tmp_path / "run"
    result = cli("run", *FAST, "--epochs", "1", "--run-dir", run_dir, "--pdf")
    assert result.code == 0, result.err
    first = (run_dir / "report.pdf").read_bytes()
    assert first.startswith(b"%PDF")
    (run_dir / "report.pdf").unlink()
    result = cli("report", run_dir, "--pdf")
    assert result.code == 0, result.err
    assert "report.pdf" in result.out
    assert (run_dir / "report.pdf").read_bytes().startswith(b"%PDF")
