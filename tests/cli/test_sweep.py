"""``lifelong sweep``: grids × seeds as resumable processes, validation, failures, summary."""

from __future__ import annotations

import json
import shutil
import statistics
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lifelong.cli import build_parser, config_from_args, parse_command
from lifelong.sweep import load_sweep, plan, runner

TINY = {
    "method": {"name": "er", "buffer_size": 20},
    "train": {"iters": 2, "epochs": 1, "batch_size": 8},
    "backbone": {"name": "mlp", "hidden": [16]},
}
GRID = {"method.lr": [0.01, 0.1], "method.minibatch_size": [4, 8]}
FAST = ("--no-tensorboard", "--jobs", "2")


def write_sweep(path: Path, **sections: object) -> Path:
    path.write_text(yaml.safe_dump(sections, sort_keys=False))
    return path


def results_files(out: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in sorted(out.rglob("results.json"))}


def run_config(*arguments: str) -> dict:
    """The resolved config ``lifelong run ARGUMENTS`` would use, in config.yaml form."""
    return config_from_args(parse_command(build_parser(), ["run", *arguments])).to_raw()


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A 2×2 grid × 2 seeds sweep, run once for the tests below (8 tiny runs)."""
    from lifelong.cli import main

    root = tmp_path_factory.mktemp("sweep")
    out = root / "out"
    file = write_sweep(
        root / "grid.yaml",
        common=TINY,
        experiments={"er": {}},
        hyperparams_search=GRID,
        seeds=[0, 1],
        out=str(out),
    )
    code = main(["sweep", str(file), *FAST])
    assert code == 0
    return file, out, (out / "summary.md").read_text()


def test_grid_runs_every_trial_and_writes_mean_std_table(grid_sweep) -> None:
    _file, out, table = grid_sweep
    runs = sorted(out.glob("er/*/seed*"))
    assert len(runs) == 8
    by_point: dict[str, list[float]] = {}
    for run in runs:
        results = json.loads((run / "results.json").read_text())
        assert results["completed"]
        config = results["config"]
        assert config["seed"] == int(run.name.removeprefix("seed"))
        assert f"method.lr={config['method']['lr']}" in run.parent.name
        assert f"method.minibatch_size={config['method']['minibatch_size']}" in run.parent.name
        accuracy = results["protocols"]["class-il"]["summary"]["average_accuracy"]
        by_point.setdefault(run.parent.name, []).append(accuracy)
    assert len(by_point) == 4 and all(len(v) == 2 for v in by_point.values())
    means = {}
    for name, values in by_point.items():
        label = name.replace(",", ", ")
        mean, std = statistics.mean(values), statistics.stdev(values)
        means[label] = mean
        assert f"| er | {label} | {mean:.2f} ± {std:.2f} (n=2) |" in table
    best = max(means, key=lambda label: means[label])
    best_rows = [line for line in table.splitlines() if line.endswith("| ★ |")]
    assert len(best_rows) == 1 and f"| er | {best} |" in best_rows[0]
    assert "TEST split" in table
    assert (out / "summary.png").read_bytes().startswith(b"\x89PNG")
    assert len(json.loads((out / "summary.json").read_text())) == 4
    csv = pd.read_csv(out / "summary.csv")
    class_il = csv[csv.protocol == "class-il"].set_index("point")
    assert len(class_il) == 4 and (class_il.n == 2).all() and class_il.best.sum() == 1
    for name, values in by_point.items():
        row = class_il.loc[name.replace(",", ", ")]
        assert row["mean"] == pytest.approx(statistics.mean(values))
        assert row["std"] == pytest.approx(statistics.stdev(values))


def test_resume_skips_finished_runs_and_reruns_the_incomplete(grid_sweep, cli, tmp_path) -> None:
    file, out, table = grid_sweep
    copy = tmp_path / "out"
    shutil.copytree(out, copy)  # copy2 keeps the mtimes
    runs = sorted(copy.glob("er/*/seed*"))
    interrupted, missing = runs[1], runs[6]
    results = json.loads((interrupted / "results.json").read_text())
    (interrupted / "results.json").write_text(json.dumps({**results, "completed": False}))
    shutil.rmtree(missing)
    before = results_files(copy)
    result = cli("sweep", file, "--out", copy, *FAST)
    assert result.code == 0, result.err
    after = results_files(copy)
    rerun = {p.parent for p in after if after[p] != before.get(p)}
    assert rerun == {interrupted, missing}
    assert json.loads((interrupted / "results.json").read_text())["completed"]
    # same seeds, same results: the summary is the uninterrupted one
    assert (copy / "summary.md").read_text() == table
    last_sweep = (copy / "sweep.log").read_text().split(" sweep ")[-1]
    assert last_sweep.count(": done before") == 6 and last_sweep.count(": ok") == 2


def test_failing_trial_does_not_stop_the_others(cli, tmp_path) -> None:
    file = write_sweep(
        tmp_path / "sweep.yaml",
        common=TINY,
        experiments={
            "broken": {"dataset": {"name": "seq-mnist", "root": str(tmp_path / "no-data")}},
            "fine": {},
        },
        out=str(tmp_path / "out"),
    )
    result = cli("sweep", file, "--no-tensorboard", "--jobs", "1")
    assert result.code == 1
    fine = json.loads((tmp_path / "out" / "fine" / "seed0" / "results.json").read_text())
    assert fine["completed"]
    assert "| broken | – | – | – | 0/1, 1 FAILED |" in result.out
    fine_accuracy = fine["protocols"]["class-il"]["summary"]["average_accuracy"]
    assert f"| fine | – | {fine_accuracy:.2f} (n=1) |" in result.out  # one seed: no ± 0.00
    assert "± 0.00" not in result.out
    assert "MNIST not found" in (tmp_path / "out" / "sweep.log").read_text()
    assert "MNIST not found" in (tmp_path / "out" / "broken" / "seed0" / "trial.log").read_text()
    assert "1 of 2 trials failed" in result.err


@pytest.mark.parametrize(
    ("sections", "problem"),
    [
        ({"seed": [0]}, "unknown top-level key 'seed': did you mean 'seeds'?"),
        ({"hyperparams_search": {"method.lr": []}}, "method.lr must be a non-empty list"),
        (
            {"experiments": {"ok": {}, "typo": {"hyperparams_search": {"method.lrr": [0.1]}}}},
            "experiment 'typo' (common + overrides) at grid point {method.lrr: 0.1}: "
            "unknown config key 'method.lrr'",
        ),
        ({"common": {"train": {"itres": 2}}}, "unknown config key 'train.itres'"),
        ({"experiments": {"a": {"lr": 0.1}}}, "key 'lr' needs its section"),
        ({"experiments": {"a": {}, "b": {"method.lr": "fast"}}}, "method.lr must be of type"),
        ({"seeds": [0, 0]}, "seeds: must be a non-empty list of distinct integers"),
        ({"experiments": [{"method": {"name": "er"}}]}, "experiments[0]: must be a mapping"),
        ({"experiments": {"a/b": {}}}, "experiment 'a/b': use letters"),
    ],
)
def test_bad_file_is_one_line_and_exit_code_2_before_anything_runs(
    cli, tmp_path, sections, problem
) -> None:
    file = write_sweep(tmp_path / "bad.yaml", **{"common": TINY, **sections})
    result = cli("sweep", file, "--out", tmp_path / "out")
    assert result.code == 2
    assert result.err.startswith("lifelong: error: sweep file ")
    assert problem in result.err
    assert result.err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_finished_run_of_another_config_is_refused(grid_sweep, cli, tmp_path) -> None:
    file, _out, _table = grid_sweep
    changed = write_sweep(
        tmp_path / "changed.yaml",
        **{**yaml.safe_load(file.read_text()), "common": {**TINY, "train.batch_size": 16}},
    )
    result = cli("sweep", changed, "--dry-run")
    assert result.code == 2
    assert "holds a finished run of another configuration (train.batch_size: 8 there" in result.err


def test_experiments_override_common_and_grids_merge(tmp_path) -> None:
    file = write_sweep(
        tmp_path / "plan.yaml",
        common={**TINY, "method.lr": 0.05},
        experiments=[
            {"name": "plain"},
            {
                "name": "der",
                "method": {"name": "der", "alpha": 0.3},
                "hyperparams_search": {"method.alpha": [0.1, 0.2]},
            },
        ],
        hyperparams_search={"train.batch_size": [4, 8]},
        seeds=[3],
        out=str(tmp_path / "o"),
    )
    sweep = load_sweep(file)
    labels = [(t.experiment, t.point_label, t.seed) for t in sweep.trials]
    assert labels == [
        ("plain", "train.batch_size=4", 3),
        ("plain", "train.batch_size=8", 3),
        ("der", "train.batch_size=4, method.alpha=0.1", 3),
        ("der", "train.batch_size=4, method.alpha=0.2", 3),
        ("der", "train.batch_size=8, method.alpha=0.1", 3),
        ("der", "train.batch_size=8, method.alpha=0.2", 3),
    ]
    plain, der = sweep.trials[0].config, sweep.trials[3].config
    assert plain["method"]["name"] == "er" and plain["method"]["lr"] == 0.05
    assert der["method"]["name"] == "der" and der["method"]["alpha"] == 0.2
    assert der["method"]["lr"] == 0.05  # common reaches every experiment
    assert der["train"]["batch_size"] == 4 and der["seed"] == 3
    assert (
        sweep.trials[3].run_dir
        == tmp_path / "o" / "der" / ("train.batch_size=4,method.alpha=0.2") / "seed3"
    )
    assert not (tmp_path / "o").exists()


def test_with_validation_images_the_best_point_is_chosen_on_them(cli, tmp_path) -> None:
    out = tmp_path / "out"
    common = {**TINY, "dataset": {"name": "seq-digits", "validation": 0.2}}
    grid = {"method.lr": [0.001, 0.1]}
    file = write_sweep(
        tmp_path / "s.yaml", common=common, hyperparams_search=grid, seeds=[0, 1], out=str(out)
    )
    result = cli("sweep", file, *FAST)
    assert result.code == 0, result.err
    validation: dict[str, list[float]] = {}
    for run in sorted(out.glob("default/*/seed*")):
        results = json.loads((run / "results.json").read_text())
        entry = results["validation"]["class-il"]
        assert len(entry["accuracies"]) == 5
        assert entry["average_accuracy"] == pytest.approx(statistics.mean(entry["accuracies"]))
        validation.setdefault(run.parent.name, []).append(entry["average_accuracy"])
    table = (out / "summary.md").read_text()
    assert "| validation class-il |" in table.splitlines()[2]
    best = max(validation, key=lambda point: statistics.mean(validation[point]))
    best_rows = [line for line in table.splitlines() if line.endswith("| ★ |")]
    assert len(best_rows) == 1 and f"| default | {best} |" in best_rows[0]
    assert "on the validation images (validation class-il)" in table
    assert "TEST split" not in table


def test_ray_backend_without_ray_is_a_clear_error(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    file = write_sweep(tmp_path / "s.yaml", common=TINY, out=str(tmp_path / "out"))
    result = cli("sweep", file, "--backend", "ray")
    assert result.code == 2
    assert "--backend ray needs Ray: pip install 'lifelong[ray]'" in result.err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_ray_backend_runs_the_trials_on_a_local_ray_instance(cli, tmp_path, monkeypatch) -> None:
    ray = pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    out = tmp_path / "out"
    grid = {"method.lr": [0.01, 0.1]}
    file = write_sweep(
        tmp_path / "s.yaml", common=TINY, hyperparams_search=grid, seeds=[0, 1], out=str(out)
    )
    result = cli("sweep", file, "--backend", "ray", "--no-tensorboard")
    assert result.code == 0, result.err
    assert not ray.is_initialized()  # the sweep's own instance is shut down
    runs = sorted(out.glob("default/*/seed*"))
    assert len(runs) == 4
    assert all(json.loads((r / "results.json").read_text())["completed"] for r in runs)
    assert "(n=2)" in (out / "summary.md").read_text()
    before = results_files(out)
    again = cli("sweep", file, "--backend", "ray", "--no-tensorboard")
    assert again.code == 0, again.err
    assert results_files(out) == before  # resumed: nothing re-ran
    assert (out / "sweep.log").read_text().split(" sweep ")[-1].count(": done before") == 4


def test_run_once_sets_one_thread_and_restarts_unfinished_runs(tmp_path, monkeypatch) -> None:
    from lifelong.sweep import runner

    calls = []

    def fake_run(processes, command, output, env, cwd, keep_open):
        run_dir = Path(command[command.index("--run-dir") + 1])
        calls.append((env, sorted(p.name for p in run_dir.iterdir())))
        results = {
            "completed": True,
            "protocols": {"class-il": {"summary": {"average_accuracy": 7.0}}},
            "config": {"seed": 0},
        }
        (run_dir / "results.json").write_text(json.dumps(results))
        (run_dir / "config.yaml").write_text("seed: 0\n")
        return 0

    monkeypatch.setattr(runner.TrialProcesses, "run", fake_run)
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoint.pt").write_text("from an interrupted run")
    attempt = runner.run_once(["--method", "er"], run_dir, one_thread=True)
    assert attempt.status == "ok" and attempt.accuracy == {"class-il": 7.0}
    env, files = calls[0]
    assert env["OMP_NUM_THREADS"] == "1"
    assert files == [".lock", "trial.log"]  # the interrupted run's files are gone
    assert runner.run_once(["--method", "er"], run_dir, one_thread=True).status == "done before"
    (run_dir / "results.json").unlink()
    runner.run_once(["--method", "er"], run_dir, one_thread=False)
    env = calls[1][0]
    assert len(calls) == 2 and env["OMP_NUM_THREADS"] == "4"  # inherited as it is
    assert int(env["LIFELONG_RUN_LOCK_FD"]) >= 0  # the trial process is handed the folder's lock


SWEEP_FILES = sorted((Path(__file__).resolve().parents[2] / "configs" / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("file", SWEEP_FILES, ids=[f.stem for f in SWEEP_FILES])
def test_shipped_sweep_files_validate(cli, tmp_path: Path, file: Path) -> None:
    result = cli("sweep", file, "--dry-run", "--out", tmp_path / "out")
    assert result.code == 0, result.err
    assert "nothing run (--dry-run)" in result.out
    assert not (tmp_path / "out").exists()


def test_trial_config_is_the_config_lifelong_run_builds_from_the_same_request(tmp_path) -> None:
    file = write_sweep(
        tmp_path / "same.yaml",
        common={"preset": "seq-mnist/derpp-200", "method.buffer_size": 200, "train.iters": 3},
        experiments={"der": {"method": {"name": "derpp", "alpha": 0.2}}},
        hyperparams_search={"method.lr": [0.05]},
        seeds=[4],
        out=str(tmp_path / "o"),
    )
    (trial,) = load_sweep(file).trials
    expected = run_config(
        "--preset", "seq-mnist/derpp-200", "--set", "method.buffer_size=200",
        "--set", "train.iters=3", "--set", "method.name=derpp", "--set", "method.alpha=0.2",
        "--set", "method.lr=0.05",
        "--seed", "4",
    )  # fmt: skip
    assert trial.config == expected
    assert trial.config["method"]["name"] == "derpp" and trial.config["seed"] == 4


def test_trial_runs_from_its_resolved_config_file_not_from_flag_strings(
    tmp_path, monkeypatch
) -> None:
    commands = []

    def fake_run(processes, command, output, env, cwd, keep_open):
        commands.append(command)
        return 2

    monkeypatch.setattr(runner.TrialProcesses, "run", fake_run)
    common = {**TINY, "dataset": {"name": "seq-digits", "validation": 0.2}}
    file = write_sweep(tmp_path / "s.yaml", common=common, out=str(tmp_path / "o"))
    (trial,) = load_sweep(file).trials
    assert not hasattr(trial, "arguments") and not hasattr(plan, "_arguments")
    runner.run_trial(trial, one_thread=False, extra=runner.output_flags(False, None))
    (command,) = commands
    assert not any(part.startswith("--set") for part in command)
    config_file = trial.run_dir / runner.TRIAL_CONFIG
    assert command[3:] == [
        "run", "--config", str(config_file), "--preset", "none", "--no-tensorboard",
        "--run-dir", str(trial.run_dir), "--no-progress",
    ]  # fmt: skip
    assert yaml.safe_load(config_file.read_text()) == trial.config
    # `--config FILE --preset none` rebuilds exactly the trial's config
    assert run_config("--config", str(config_file), "--preset", "none") == trial.config
