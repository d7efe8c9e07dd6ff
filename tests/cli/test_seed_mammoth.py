"""mammoth command lines paste into ``lifelong run``: each mammoth flag does what it says here.

The SARL README's lines (``python main.py --model sarl --dataset seq-cifar10 --buffer_size 200``)
run on a CIFAR-10 folder the test writes; the other flags run on the offline seq-digits stream.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_assertions import expect_one_line_error as assert_one_line_error
from test_cli_cifar import write_cifar10

FAST = ("--no-progress", "--no-tensorboard")
TINY = ("--dataset", "seq-digits", "--n_epochs", "1")
SARL_README = [  # the README's Quick Start lines, after `python main.py`
    "--model sarl --dataset seq-cifar10 --buffer_size 200",
    "--model sarl_enhanced --dataset seq-cifar10 --buffer_size 200",
    "--model sarl_enhanced_gelu --dataset seq-cifar10 --buffer_size 200",
    "--model sarl_enhanced_gelu_balanced --dataset seq-cifar10 --buffer_size 200",
]
NOTES = "lr sweep, second try"


def explained(cli: Any, *argv: object) -> dict[str, tuple[str, str]]:
    """``lifelong run ARGV --explain-config`` as field → (value, layer)."""
    result = cli("run", *argv, "--explain-config")
    assert result.code == 0, result.err
    rows = [re.split(r"\s{2,}", line.strip()) for line in result.out.splitlines()[1:]]
    return {row[0]: (row[1], row[-1]) for row in rows}


@pytest.mark.parametrize("line", SARL_README, ids=[line.split()[1] for line in SARL_README])
def test_sarl_readme_line_with_load_best_args_uses_the_paper_preset(cli, line: str) -> None:
    fields = explained(cli, *line.split(), "--load_best_args")
    model = line.split()[1]
    assert fields["method.name"] == (model, "override")
    assert fields["method.lr"] == ("0.03", f"preset seq-cifar10/{model}-200")
    assert fields["method.buffer_size"][0] == "200"


def test_sarl_readme_line_runs_on_a_cifar10_folder(cli, tmp_path: Path) -> None:
    root = write_cifar10(tmp_path / "data")
    run_dir = tmp_path / "run"
    shrink = ["--n_epochs", "1", "--batch_size", "8", "--set", "backbone.nf=4"]
    shrink += ["--set", "warmup_epochs=0", "--data-root", root, "--run-dir", run_dir]
    result = cli("run", *SARL_README[0].split(), "--load_best_args", *shrink, *FAST)
    assert result.code == 0, result.err
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["method"]["name"] == "sarl" and config["method"]["op_weight"] == 0.5
    assert config["backbone"]["kw"] == [0.8, 0.8, 0.8, 0.8]  # from the preset, not a default
    assert json.loads((run_dir / "results.json").read_text())["completed"]


def test_load_best_args_without_a_paper_preset_exits_2(cli, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = cli("run", *TINY, "--buffer_size", "200", "--load_best_args", "--run-dir", run_dir)
    assert_one_line_error(result, "--load_best_args", "seq-digits", "lifelong list presets")
    assert not run_dir.exists()


def test_load_best_args_contradicts_preset_none(cli, tmp_path: Path) -> None:
    result = cli("run", *SARL_README[0].split(), "--load_best_args", "--preset", "none")
    assert_one_line_error(result, "--load_best_args", "--preset none")


@pytest.mark.parametrize("spelling", ["--loadcheck", "--loadcheck=ck.pt"])
def test_loadcheck_names_resume(cli, tmp_path: Path, spelling: str) -> None:
    args = [spelling] if "=" in spelling else [spelling, "ck.pt"]
    run_dir = tmp_path / "run"
    result = cli("run", *TINY, *args, "--run-dir", run_dir)
    assert_one_line_error(result, "--loadcheck", "lifelong run --resume RUN_DIR")
    assert not run_dir.exists()


def test_output_dir_and_run_dir_together_exit_2(cli, tmp_path: Path) -> None:
    result = cli("run", *TINY, "--output_dir", tmp_path, "--run-dir", tmp_path / "r")
    assert_one_line_error(result, "--output_dir", "--run-dir")


@pytest.mark.parametrize("flag", ["--output_dir", "--validation", "--load_best_args"])
def test_resume_refuses_mammoth_flags_that_change_the_run(cli, tmp_path: Path, flag: str) -> None:
    value = {"--output_dir": [str(tmp_path)], "--validation": [], "--load_best_args": []}[flag]
    result = cli("run", "--resume", tmp_path / "old", flag, *value)
    assert_one_line_error(result, "--resume", flag)


@pytest.mark.parametrize("flag", ["--tensorboard", "--nowand", "--savecheck"])
def test_no_effect_flags_change_nothing(cli, flag: str) -> None:
    assert explained(cli, *TINY, flag) == explained(cli, *TINY)


@pytest.mark.parametrize(("given", "fraction"), [([], "0.1"), (["20"], "0.2"), (["5"], "0.05")])
def test_validation_is_dataset_validation(cli, given: list[str], fraction: str) -> None:
    fields = explained(cli, *TINY, "--validation", *given)
    assert fields["dataset.validation"] == (fraction, "override")


def test_multistep_lr_flags_are_the_train_schedule(cli) -> None:
    schedule = ("--lr_scheduler", "multisteplr", "--lr_milestones", "35", "45")
    fields = explained(cli, *TINY, *schedule, "--sched_multistep_lr_gamma", "0.2")
    assert fields["train.lr_milestones"] == ("[35, 45]", "override")
    assert fields["train.lr_gamma"] == ("0.2", "override")


def test_another_lr_scheduler_is_refused(cli) -> None:
    result = cli("run", *TINY, "--lr_scheduler", "cosine", "--explain-config")
    assert_one_line_error(result, "--lr_scheduler cosine", "multisteplr")


def test_set_wins_over_a_mammoth_flag(cli) -> None:
    fields = explained(cli, *TINY, "--validation", "--set", "dataset.validation=0.3")
    assert fields["dataset.validation"][0] == "0.3"


# ---------------------------------------------------------------- one run with every flag


@pytest.fixture(scope="module")
def mammoth_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A seq-digits run with mammoth's flags: (output root, run dir, stdout)."""
    import contextlib
    import io

    from lifelong.cli import main

    root = tmp_path_factory.mktemp("mammoth") / "out"
    argv = ["run", "--model", "er", *TINY, "--buffer_size", "50", "--csv_log", "--notes", NOTES]
    argv += ["--output_dir", str(root), "--validation", "--tensorboard", "--nowand", "--savecheck"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([*argv, "--no-progress"]) == 0
    (run_dir,) = (root / "seq-digits").iterdir()
    return root, run_dir, out.getvalue()


def test_output_dir_is_the_root_of_the_run_directory(mammoth_run) -> None:
    root, run_dir, out = mammoth_run
    assert run_dir.parent == root / "seq-digits" and list(root.iterdir()) == [root / "seq-digits"]
    assert re.fullmatch(r"er-\d{8}-\d{6}-s0", run_dir.name), run_dir.name
    assert (run_dir / "results.json").is_file() and f"run directory: {run_dir}" in out


def test_csv_log_holds_the_results_matrix(mammoth_run) -> None:
    _, run_dir, out = mammoth_run
    results = json.loads((run_dir / "results.json").read_text())
    assert set(results["protocols"]) == {"class-il", "task-il"}
    for protocol, entry in results["protocols"].items():
        path = run_dir / f"accuracy-{protocol}.csv"
        assert f"wrote {path}" in out
        header, *rows = list(csv.reader(path.open()))
        assert header == ["trained", "exp1", "exp2", "exp3", "exp4", "exp5"]
        assert [row[0] for row in rows] == header[1:]
        table = [[float(v) if v else None for v in row[1:]] for row in rows]
        assert table == entry["matrix"] and len(table) == 5


def test_csv_rows_stop_at_the_last_trained_experience_and_leave_gaps_empty() -> None:
    from lifelong.reporting.csv_log import accuracy_csv_text

    text = accuracy_csv_text([[50.0, None, None], [40.5, 60.0, None], [None, None, None]], 2)
    assert text == "trained,exp1,exp2,exp3\nexp1,50.0,,\nexp2,40.5,60.0,\n"


def test_notes_are_recorded(mammoth_run) -> None:
    _, run_dir, _ = mammoth_run
    assert (run_dir / "notes.txt").read_text() == NOTES + "\n"


def test_validation_holds_out_images_and_reports_them(mammoth_run) -> None:
    _, run_dir, _ = mammoth_run
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["dataset"]["validation"] == 0.1
    results = json.loads((run_dir / "results.json").read_text())
    assert len(results["validation"]["class-il"]["accuracies"]) == 5


def test_tensorboard_flag_keeps_tensorboard_events(mammoth_run) -> None:
    _, run_dir, _ = mammoth_run
    assert list(run_dir.rglob("events.out.tfevents*"))


def test_non_verbose_is_quiet_and_hides_progress(lifelong_script, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    argv = [lifelong_script, "run", *TINY, "--non_verbose", "--run-dir", str(run_dir)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "after experience" not in done.stderr and "run directory" not in done.stderr
    assert "class-il" in done.stdout  # the results tables still print
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["train"]["progress"] is False


def test_mammoth_flags_take_dashes_too(cli) -> None:
    fields = explained(cli, *TINY, "--output-dir", "x", "--validation", "30", "--non-verbose")
    assert fields["dataset.validation"][0] == "0.3"
