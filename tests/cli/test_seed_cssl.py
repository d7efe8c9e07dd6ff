"""The continual-SSL library's command lines pasted into lifelong (seeds 004: main.py, config.json).

``python main.py --option option_arg`` → ``lifelong cssl --option option_arg``;
``python run_from_config.py`` with a ``config.json`` → ``lifelong sweep config.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lifelong.cli import build_parser, config_from_args, parse_command
from lifelong.cli.cssl import cssl_layered
from lifelong.sweep import load_sweep

# tiny settings on the offline seq-digits stream (MLP encoder, 8-wide heads)
TINY = ["--dataset", "seq-digits", "--dim-proj", "8", "--dim-pred", "4", "--aligner-dim", "8"]
TINY_JSON = {"dataset": "seq-digits", "dim_proj": 8, "dim_pred": 4, "aligner_dim": 8}
FAST = ["--no-tensorboard", "--no-progress"]


def cssl_config(*flags: str) -> dict[str, Any]:
    """The resolved config of ``lifelong cssl FLAGS``, in config.yaml form."""
    return cssl_layered(parse_command(build_parser(), ["cssl", *flags])).config.to_raw()


def run_config(*flags: str) -> dict[str, Any]:
    """The resolved config of ``lifelong run FLAGS``, in config.yaml form."""
    return config_from_args(parse_command(build_parser(), ["run", *flags])).to_raw()


def test_main_py_command_line_runs_with_its_flags_translated(cli, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    flags = ["--model", "byol", "--strategy", "replay", "--mb-passes", "2", "--tr-mb-size", "64"]
    flags += ["--mem-size", "40", "--repl-mb-size", "4", "--probing-torch", "--probing-rr", "False"]
    result = cli(
        "cssl", *flags, *TINY, "--num-exps", "5", "--seed", "3", "--run-dir", run_dir, *FAST
    )
    assert result.code == 0, result.err
    results = json.loads((run_dir / "results.json").read_text())
    assert results["completed"] and results["num_experiences"] == 5
    method, dataset = results["config"]["method"], results["config"]["dataset"]
    assert method["name"] == "cssl"
    assert (method["ssl_model"], method["strategy"], method["passes"]) == ("byol", "er", 2)
    assert (method["buffer_size"], method["replay_batch_size"]) == (40, 4)
    assert method["probe"] == "linear"
    assert (method["ssl_dim_proj"], method["ssl_dim_pred"], method["aligner_dim"]) == (8, 4, 8)
    assert dataset["name"] == "seq-digits" and dataset["classes_per_experience"] == 2
    assert dataset["shuffle_classes"] is True  # the reference's seeded class order
    assert results["config"]["train"]["batch_size"] == 64 and results["config"]["seed"] == 3


def test_cssl_builds_the_config_lifelong_run_method_cssl_builds() -> None:
    flags = ["--model", "barlow_twins", "--strategy", "cassle", "--omega", "1.0", "--lr", "0.05"]
    flags += ["--encoder", "slim_resnet9", "--probing-val-ratio", "0.1", "--no-train"]
    expected = run_config(
        "--method", "cssl", "--dataset", "seq-digits", "--backbone", "slim_resnet9", "--lr", "0.05",
        "--epochs", "1", "--batch-size", "32", "--seed", "42",
        "--set", "method.ssl_model=barlow_twins", "--set", "method.strategy=cassle",
        "--set", "method.omega=1.0", "--set", "dataset.validation=0.1",
        "--set", "method.train_encoder=false", "--set", "method.ssl_dim_proj=8",
        "--set", "method.ssl_dim_pred=4", "--set", "method.aligner_dim=8",
        "--set", "dataset.shuffle_classes=true",
    )  # fmt: skip
    assert cssl_config(*flags, *TINY) == expected


def test_reference_defaults_and_names_map_to_lifelong() -> None:
    config = cssl_config("--model", "emp", "--strategy", "no_strategy", "--num-exps", "10")
    assert config["dataset"]["name"] == "seq-cifar100"  # main.py's default dataset
    assert config["dataset"]["classes_per_experience"] == 10
    assert (config["method"]["ssl_model"], config["method"]["strategy"]) == ("emp_ssl", "none")
    assert config["seed"] == 42 and config["train"]["epochs"] == 1
    assert config["backbone"]["name"] == "resnet18"  # the seq-cifar100/cssl preset


def test_explain_config_names_the_layers(cli) -> None:
    result = cli("cssl", *TINY, "--mb-passes", "1", "--explain-config")
    assert result.code == 0, result.err
    line = next(ln for ln in result.out.splitlines() if ln.startswith("method.passes "))
    assert line.split()[1:] == ["1", "override"]


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        (["--dataset-seed", "7"], "--dataset-seed has no equivalent in lifelong: the class order"),
        (["--optim", "adam"], "--optim adam: lifelong always trains cssl with SGD"),
        (["--moco-temp", "0.1"], "--moco-temp has no equivalent in lifelong: no MoCo model"),
        (["--iid"], "--iid has no equivalent in lifelong"),
        (["--save-folder", "logs"], "name the run directory with --run-dir DIR"),
        (["--mem-size", "5", "--buffer-size", "6"], "--mem-size and --buffer-size both set"),
        (["--num-exps", "3"], "--num-exps 3 does not split the 10 classes of seq-digits"),
        (["--strategy", "scale"], "scale"),
        (["--probing-rr", "maybe"], "--probing-rr: cannot read 'maybe'"),
        (["--mb-pases", "3"], "unrecognized arguments: --mb-pases 3"),
    ],
)
def test_bad_or_meaningless_flags_exit_2_with_one_line_and_write_nothing(
    cli, tmp_path: Path, flags: list[str], problem: str
) -> None:
    run_dir = tmp_path / "run"
    result = cli("cssl", *TINY, *flags, "--run-dir", run_dir, *FAST)
    assert result.code == 2
    assert result.err.startswith("lifelong: error: ") and result.err.count("\n") == 1
    assert problem in result.err
    assert not run_dir.exists()


def write_config_json(path: Path, out: Path) -> Path:
    config = {
        "common_params": {**TINY_JSON, "tr_mb_size": 64, "mb_passes": 1, "save_folder": str(out)},
        "experiments": [
            {
                "model": "simsiam",
                "strategy": "no_strategy",
                "hyperparams_search": {"lr": [0.01, 0.1]},
            },
            {
                "model": "byol",
                "strategy": "replay",
                "mem_size": 40,
                "repl_mb_size": 4,
                "name": "small",
                "hyperparams_search": {"mb-passes": [1, 2]},
            },
        ],
    }  # fmt: skip
    path.write_text(json.dumps(config, indent=4))
    return path


def test_config_json_runs_as_a_sweep_of_translated_trials(cli, tmp_path: Path) -> None:
    out = tmp_path / "logs"
    file = write_config_json(tmp_path / "config.json", out)
    listed = cli("sweep", file, "--dry-run")
    assert listed.code == 0, listed.err
    assert "4 trials; nothing run (--dry-run)" in listed.out
    trials = load_sweep(file).trials
    labels = [(t.experiment, t.point_label, t.seed) for t in trials]
    assert labels == [
        ("no_strategy_simsiam", "method.lr=0.01", 42),
        ("no_strategy_simsiam", "method.lr=0.1", 42),
        ("replay_byol_small", "method.passes=1", 42),
        ("replay_byol_small", "method.passes=2", 42),
    ]
    for trial in trials:
        method = trial.config["method"]
        assert method["name"] == "cssl" and trial.config["dataset"]["name"] == "seq-digits"
        assert trial.config["train"]["batch_size"] == 64 and method["ssl_dim_proj"] == 8
    simsiam, byol = trials[1].config["method"], trials[3].config["method"]
    assert (simsiam["ssl_model"], simsiam["strategy"], simsiam["lr"]) == ("simsiam", "none", 0.1)
    assert (simsiam["passes"], byol["passes"]) == (1, 2)  # the grid beats common_params
    assert (byol["ssl_model"], byol["strategy"], byol["buffer_size"]) == ("byol", "er", 40)
    assert trials[0].run_dir.parent.parent.parent == out  # save_folder is the sweep folder
    result = cli("sweep", file, "--jobs", "2", "--no-tensorboard")
    assert result.code == 0, result.err
    for trial in trials:
        results = json.loads((trial.run_dir / "results.json").read_text())
        assert results["completed"] and results["config"] == trial.config | {
            "train": {**trial.config["train"], "progress": False}
        }
    assert "| replay_byol_small | method.passes=2 |" in (out / "summary.md").read_text()


@pytest.mark.parametrize(
    ("common", "problem"),
    [
        ({"optim": "lars"}, "experiments[0]: --optim lars: lifelong always trains cssl with SGD"),
        ({"scale_distill_power": 0.1}, "--scale-distill-power has no equivalent in lifelong"),
        ({"hyperparams_search": {"iid": [True]}}, "--iid has no equivalent"),
    ],
)
def test_bad_config_json_is_one_line_exit_2(
    cli, tmp_path: Path, common: dict, problem: str
) -> None:
    file = tmp_path / "config.json"
    body = {"common_params": {**TINY_JSON, **common}, "experiments": [{"model": "simsiam"}]}
    file.write_text(json.dumps(body))
    result = cli("sweep", file, "--out", tmp_path / "out")
    assert result.code == 2
    assert result.err.startswith(f"lifelong: error: sweep file {file} (run_from_config.py")
    assert problem in result.err and result.err.count("\n") == 1
    assert not (tmp_path / "out").exists()
