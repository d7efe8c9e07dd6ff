"""Bad input ends with ONE line ``lifelong: error: ...`` naming the problem and the fix, exit 2.

Every test calls ``lifelong.cli.main`` in-process. Besides the message, the tests check that
nothing earlier in the run directory is lost when a run fails part-way.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from cli_assertions import expect_one_line_error as assert_one_line_error

from lifelong.checkpoint import load_checkpoint
from lifelong.methods.base import MethodConfig
from lifelong.methods.finetune import Finetune
from lifelong.types import Batch, StepOutput

FAST = ("--no-progress", "--no-tensorboard")


# ---------------------------------------------------------------- unknown names


def test_unknown_method_suggests_close_match(cli, tmp_path):
    result = cli("run", *FAST, "--run-dir", tmp_path / "run", "--method", "derr")
    message = assert_one_line_error(
        result, "unknown method 'derr'", "'der'", "lifelong list methods"
    )
    assert "finetune" in message  # lists the valid choices


def test_unknown_dataset_suggests_close_match(cli, tmp_path):
    result = cli("run", *FAST, "--run-dir", tmp_path / "run", "--dataset", "seq-mnsit")
    assert_one_line_error(
        result, "unknown dataset 'seq-mnsit'", "did you mean 'seq-mnist'", "lifelong list"
    )


def test_unknown_backbone_suggests_close_match(cli, tmp_path):
    result = cli("run", *FAST, "--run-dir", tmp_path / "run", "--backbone", "resnet19")
    assert_one_line_error(result, "unknown backbone 'resnet19'", "'resnet18'", "mlp")


def test_unknown_preset(cli, tmp_path):
    result = cli("run", *FAST, "--run-dir", tmp_path / "run", "--preset", "seq-mnist/err-200")
    assert_one_line_error(result, "unknown preset 'seq-mnist/err-200'", "lifelong list presets")


# ---------------------------------------------------------------- invalid values


@pytest.mark.parametrize(
    ("flag", "value", "field"),
    [
        ("--buffer-size", "0", "method.buffer_size"),
        ("--batch-size", "-5", "train.batch_size"),
        ("--epochs", "0", "train.epochs"),
        ("--lr", "0", "method.lr"),
        ("--minibatch-size", "0", "method.minibatch_size"),
        ("--iters", "-1", "train.iters"),
    ],
)
def test_non_positive_sizes_are_rejected(cli, tmp_path, flag, value, field):
    run_dir = tmp_path / "run"
    result = cli("run", *FAST, "--run-dir", run_dir, flag, value)
    assert_one_line_error(result, field, "must be positive", value)
    assert not (run_dir / "config.yaml").exists()


def test_ill_typed_set_value_names_the_key_and_type(cli, tmp_path):
    result = cli("run", *FAST, "--run-dir", tmp_path / "run", "--set", "train.epochs=many")
    assert_one_line_error(result, "train.epochs", "int", "'many'")


def test_ill_typed_flag_value_is_a_one_line_usage_error(cli, tmp_path):
    result = cli("run", *FAST, "--run-dir", tmp_path / "run", "--epochs", "abc")
    assert_one_line_error(result, "invalid int value: 'abc'", "--help")


def test_resume_refuses_other_settings(cli, tmp_path):
    run_dir = tmp_path / "run"
    assert cli("run", *FAST, "--run-dir", run_dir, "--epochs", "1").code == 0
    result = cli("run", "--resume", run_dir, "--epochs", "3")
    assert_one_line_error(result, "--resume", "train.epochs")


# ---------------------------------------------------------------- unknown config keys


def test_unknown_method_key_via_set_suggests_the_field(cli, tmp_path):
    result = cli(
        "run", *FAST, "--run-dir", tmp_path / "run", "--method", "der", "--set", "method.alhpa=1"
    )
    assert_one_line_error(
        result, "unknown config key 'method.alhpa'", "did you mean 'alpha'", "valid keys"
    )


def test_unknown_key_in_config_file_suggests_the_field(cli, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"method": {"name": "der", "alhpa": 1.0}}))
    result = cli("run", *FAST, "--run-dir", tmp_path / "run", "--config", config)
    assert_one_line_error(result, "unknown config key 'method.alhpa'", "did you mean 'alpha'")


def test_unknown_section_in_config_file_suggests_the_section(cli, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"trian": {"epochs": 1}}))
    result = cli("run", *FAST, "--run-dir", tmp_path / "run", "--config", config)
    assert_one_line_error(result, "'trian'", "did you mean 'train'")


def test_missing_config_file(cli, tmp_path):
    missing = tmp_path / "nope.yaml"
    result = cli("run", *FAST, "--run-dir", tmp_path / "run", "--config", missing)
    assert_one_line_error(result, str(missing), "does not exist")


def test_config_file_that_is_not_a_mapping(cli, tmp_path):
    config = tmp_path / "list.yaml"
    config.write_text("- 1\n- 2\n")
    result = cli("run", *FAST, "--run-dir", tmp_path / "run", "--config", config)
    assert_one_line_error(result, str(config), "mapping")


def test_bare_unknown_set_key(cli, tmp_path):
    result = cli("run", *FAST, "--run-dir", tmp_path / "run", "--set", "foo=1")
    assert_one_line_error(result, "unknown config key 'foo'")


def test_bare_unknown_set_key_names_the_fix(cli, tmp_path):
    result = cli("run", *FAST, "--run-dir", tmp_path / "run", "--set", "foo=1")
    assert_one_line_error(result, "unknown config key 'foo'", "lifelong list")


def test_bare_misspelled_set_key_suggests_the_field(cli, tmp_path):
    result = cli("run", *FAST, "--run-dir", tmp_path / "run", "--method", "der", "--set", "alhpa=1")
    assert_one_line_error(result, "'alhpa'", "method.alpha")


def test_bare_set_key_resolves_to_its_section(cli, tmp_path):
    # the positive counterpart: a correct bare key lands in the one section that has it
    run_dir = tmp_path / "run"
    result = cli(
        "run", *FAST, "--run-dir", run_dir, "--method", "der", "--set", "alpha=0.7", "--epochs", "1"
    )
    assert result.code == 0, result.err
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["method"]["alpha"] == 0.7


@pytest.mark.parametrize("item", ["foo", "method.alpha", "train.epochs:3"])
def test_set_without_equals_sign(cli, tmp_path, item):
    result = cli("run", *FAST, "--run-dir", tmp_path / "run", "--set", item)
    assert_one_line_error(result, "--set expects KEY=VALUE", repr(item))


def test_ambiguous_bare_name_key(cli, tmp_path):
    result = cli("run", *FAST, "--run-dir", tmp_path / "run", "--set", "name=er")
    assert_one_line_error(result, "ambiguous", "method.name")


def test_unavailable_device(cli, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here, so --device cuda is not an error")
    result = cli("run", *FAST, "--run-dir", tmp_path / "run", "--device", "cuda")
    assert_one_line_error(result, "'cuda'", "not available", "--device cpu")


# ---------------------------------------------------------------- incompatible combination


class ClassILOnly(Finetune):
    """Test-only method that declares it supports class-incremental scenarios only."""

    name = "test-class-il-only"
    config_cls = MethodConfig
    supported_settings = frozenset({"class-il"})


def _assert_incompatible(result: Any) -> None:
    assert_one_line_error(result, "'test-class-il-only'", "domain-il", "'perm-mnist'", "class-il")


def test_incompatible_method_and_scenario(cli, tmp_path, register_method, fake_mnist):
    register_method(ClassILOnly)
    run_dir = tmp_path / "run"
    args = ("--method", "test-class-il-only", "--dataset", "perm-mnist", "--data-root", fake_mnist)
    _assert_incompatible(cli("run", *FAST, "--run-dir", run_dir, *args))
    assert not (run_dir / "config.yaml").exists()
    # the same method is fine on a class-incremental scenario
    ok = cli(
        "run",
        *FAST,
        "--run-dir",
        tmp_path / "ok",
        "--method",
        "test-class-il-only",
        "--epochs",
        "1",
    )
    assert ok.code == 0, ok.err


def test_an_unsupported_setting_is_refused_before_the_data_load(cli, tmp_path):
    # no MNIST under the root: the refusal names the setting, not the missing data
    args = ("--method", "icarl", "--dataset", "rot-mnist", "--data-root", tmp_path / "none")
    result = cli("run", *FAST, "--run-dir", tmp_path / "run", *args)
    assert_one_line_error(result, "'icarl'", "domain-il", "'rot-mnist'", "class-il")


@pytest.mark.data
def test_incompatible_method_and_scenario_real_mnist(cli, tmp_path, register_method, mnist_root):
    register_method(ClassILOnly)
    args = ("--method", "test-class-il-only", "--dataset", "perm-mnist", "--data-root", mnist_root)
    _assert_incompatible(
        cli("run", *FAST, "--run-dir", tmp_path / "run", *args, "--set", "dataset.n_experiences=2")
    )


def test_sarl_on_a_domain_incremental_scenario_is_refused(cli, tmp_path, fake_mnist):
    """A shipped pair: SARL's class prototypes need new classes per experience."""
    args = ("--method", "sarl", "--dataset", "perm-mnist", "--data-root", fake_mnist)
    result = cli("run", *FAST, "--run-dir", tmp_path / "run", *args)
    assert_one_line_error(result, "'sarl'", "domain-il", "'perm-mnist'", "class-il")


# ---------------------------------------------------------------- missing or corrupt data


def test_missing_data_folder_names_the_path_and_download(cli, tmp_path):
    nothing = tmp_path / "nothing"
    result = cli(
        "run",
        *FAST,
        "--run-dir",
        tmp_path / "run",
        "--dataset",
        "seq-mnist",
        "--data-root",
        nothing,
    )
    assert_one_line_error(result, str(nothing / "MNIST" / "raw"), "--data-root", "--download")


def test_missing_single_data_file(cli, tmp_path, mnist_factory):
    root = mnist_factory(tmp_path / "data")
    labels = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    labels.unlink()
    result = cli(
        "run", *FAST, "--run-dir", tmp_path / "run", "--dataset", "seq-mnist", "--data-root", root
    )
    assert_one_line_error(result, "t10k-labels-idx1-ubyte", str(labels.parent), "--download")


def test_truncated_gzip_data_file_is_named(cli, tmp_path, mnist_factory):
    root = mnist_factory(tmp_path / "data")
    images = root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[: len(images.read_bytes()) // 2])
    run_dir = tmp_path / "run"
    result = cli("run", *FAST, "--run-dir", run_dir, "--dataset", "seq-mnist", "--data-root", root)
    assert_one_line_error(result, str(images), "truncated", "--download")
    assert not (run_dir / "config.yaml").exists()


def test_truncated_idx_payload_is_named(cli, tmp_path, mnist_factory):
    # a valid gzip stream whose IDX content is shorter than its header says
    root = mnist_factory(tmp_path / "data")
    images = root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    images.write_bytes(gzip.compress(gzip.decompress(images.read_bytes())[:-100]))
    result = cli(
        "run", *FAST, "--run-dir", tmp_path / "run", "--dataset", "seq-mnist", "--data-root", root
    )
    message = assert_one_line_error(result, str(images), "truncated or corrupt", "--download")
    assert "expected" in message


def test_data_file_that_is_not_idx_is_named(cli, tmp_path, mnist_factory):
    root = mnist_factory(tmp_path / "data")
    labels = root / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(b"<html>not found</html>"))
    result = cli(
        "run", *FAST, "--run-dir", tmp_path / "run", "--dataset", "seq-mnist", "--data-root", root
    )
    assert_one_line_error(result, str(labels), "not an IDX")


def test_images_and_labels_disagree(cli, tmp_path, mnist_factory, idx_writer):
    root = mnist_factory(tmp_path / "data")
    idx_writer(root / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz", np.zeros(7, dtype=np.uint8))
    result = cli(
        "run", *FAST, "--run-dir", tmp_path / "run", "--dataset", "seq-mnist", "--data-root", root
    )
    assert_one_line_error(result, "60 images but 7 labels")


# ---------------------------------------------------------------- non-finite loss


def test_non_finite_loss_from_huge_learning_rate(cli, tmp_path):
    run_dir = tmp_path / "run"
    result = cli("run", *FAST, "--run-dir", run_dir, "--lr", "1e30", "--set", "train.log_every=1")
    message = assert_one_line_error(result, "the loss became", "--lr", "checkpoint")
    assert "nan" in message or "inf" in message
    # it diverges in the first experience: what was written before the failure is intact
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["method"]["lr"] == 1e30
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss"]) for r in records if r["kind"] == "step")
    assert not (run_dir / "results.json").exists()  # no results claiming a finished run


class NanAfterTwo(Finetune):
    """Test-only method: finetune for experiences 0 and 1, then the loss becomes NaN."""

    name = "test-nan-after-two"
    config_cls = MethodConfig

    def observe(self, batch: Batch) -> StepOutput:
        out = super().observe(batch)
        if batch.experience_id >= 2:
            return StepOutput(out.loss * float("nan"))
        return out


def test_non_finite_loss_mid_run_keeps_earlier_checkpoint_and_results(
    cli, tmp_path, register_method
):
    register_method(NanAfterTwo)
    failing, reference = tmp_path / "failing", tmp_path / "reference"
    common = ("--seed", "4", "--epochs", "2")
    result = cli("run", *FAST, "--run-dir", failing, "--method", "test-nan-after-two", *common)
    assert_one_line_error(result, "the loss became nan", "experience 2", "--lr")

    results = json.loads((failing / "results.json").read_text())
    assert results["completed"] is False
    assert results["experiences_trained"] == 2
    checkpoint = load_checkpoint(failing / "checkpoint.pt")
    assert checkpoint["state"]["next_experience"] == 2
    assert len(checkpoint["state"]["rows"]["class-il"]) == 2
    evals = [
        json.loads(line)
        for line in (failing / "metrics.jsonl").read_text().splitlines()
        if json.loads(line)["kind"] == "eval"
    ]
    assert [e["experience"] for e in evals] == [0, 1]
    assert (
        yaml.safe_load((failing / "config.yaml").read_text())["method"]["name"]
        == "test-nan-after-two"
    )

    # the rows kept are exactly those of the same run with plain finetune (identical until then)
    ok = cli("run", *FAST, "--run-dir", reference, "--method", "finetune", *common)
    assert ok.code == 0, ok.err
    expected = json.loads((reference / "results.json").read_text())
    for protocol in ("class-il", "task-il"):
        kept = results["protocols"][protocol]["matrix"]
        assert kept[:2] == expected["protocols"][protocol]["matrix"][:2]
        assert all(v is None for row in kept[2:] for v in row)


def test_failed_fresh_run_into_existing_run_dir_keeps_the_earlier_run(cli, tmp_path):
    run_dir = tmp_path / "run"
    assert cli("run", *FAST, "--run-dir", run_dir, "--epochs", "1").code == 0
    before = {
        name: (run_dir / name).read_bytes()
        for name in ("config.yaml", "metrics.jsonl", "results.json")
    }
    result = cli("run", *FAST, "--run-dir", run_dir, "--lr", "1e30", "--set", "train.log_every=1")
    assert result.code == 2
    after = {name: (run_dir / name).read_bytes() for name in before}
    assert after == before


# ---------------------------------------------------------------- run directories


def test_unwritable_output_folder_is_named(cli, tmp_path):
    parent = tmp_path / "file.txt"
    parent.write_text("I am a file, not a folder\n")
    run_dir = parent / "run"
    result = cli("run", *FAST, "--run-dir", run_dir)
    assert_one_line_error(result, str(run_dir), "--run-dir")
    assert parent.read_text() == "I am a file, not a folder\n"


def test_resume_folder_without_anything(cli, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("run", *FAST, "--resume", empty)
    assert_one_line_error(result, "no config.yaml", str(empty))


def test_resume_missing_folder(cli, tmp_path):
    missing = tmp_path / "missing"
    result = cli("run", *FAST, "--resume", missing)
    assert_one_line_error(result, str(missing))
    assert not missing.exists()


def _started_run(cli, run_dir: Path) -> Path:
    """A run directory as left by a run killed before its first checkpoint."""
    assert cli("run", *FAST, "--run-dir", run_dir, "--epochs", "1").code == 0
    for name in ("checkpoint.pt", "results.json", "accuracy_matrix.png", "accuracy_curves.png"):
        (run_dir / name).unlink()
    return run_dir


def test_resume_folder_without_checkpoint_starts_it_again(cli, tmp_path, caplog):
    # issue 14 item 1: it used to say "start it again without --resume", which then refused
    run_dir = _started_run(cli, tmp_path / "run")
    config = (run_dir / "config.yaml").read_bytes()
    result = cli("run", *FAST, "--resume", run_dir)
    assert result.code == 0, result.err
    assert "no checkpoint yet" in caplog.text
    assert (run_dir / "config.yaml").read_bytes() == config
    assert json.loads((run_dir / "results.json").read_text())["completed"] is True


def test_resume_with_corrupt_checkpoint(cli, tmp_path):
    run_dir = tmp_path / "run"
    assert cli("run", *FAST, "--run-dir", run_dir, "--epochs", "1").code == 0
    checkpoint = run_dir / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    results = (run_dir / "results.json").read_bytes()
    result = cli("run", *FAST, "--resume", run_dir)
    assert_one_line_error(result, "cannot read checkpoint", str(checkpoint))
    assert (run_dir / "results.json").read_bytes() == results


def test_resume_with_checkpoint_that_does_not_match_config(cli, tmp_path):
    run_dir = tmp_path / "run"
    assert cli("run", *FAST, "--run-dir", run_dir, "--epochs", "1").code == 0
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["backbone"]["hidden"] = [50, 50]
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    result = cli("run", *FAST, "--resume", run_dir)
    assert_one_line_error(result, str(run_dir / "checkpoint.pt"), "config.yaml")


def test_report_on_folder_without_results(cli, tmp_path):
    result = cli("report", tmp_path)
    assert_one_line_error(result, "no results.json", str(tmp_path))


def test_report_on_corrupt_results(cli, tmp_path):
    run_dir = tmp_path / "run"
    assert cli("run", *FAST, "--run-dir", run_dir, "--epochs", "1").code == 0
    (run_dir / "results.json").write_text('{"completed": tr')
    result = cli("report", run_dir)
    assert_one_line_error(result, str(run_dir / "results.json"), "not valid JSON")


def test_visdom_without_the_package(cli, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "visdom", None)
    result = cli("run", "--no-progress", "--visdom", "--run-dir", tmp_path / "run")
    assert result.code == 2
    assert "visdom" in result.err and "Traceback" not in result.err


# ---------------------------------------------------------------- pasted command lines


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run", "--loadcheck", "ck.pt"], "lifelong run --resume RUN_DIR"),
        (["run", "--buffer_size", "200", "--load_best_args"], "no paper preset"),
        (["run", "--model", "sarl", "--dataset", "seq-cifar10", "--buffer_size", "200",
          "--load_best_args", "--preset", "none"], "--preset none"),
        (["run", "--output_dir", "out", "--run-dir", "elsewhere"], "--output_dir"),
        (["bir", "--scenario=task"], "--scenario=class"),
        (["bir", "--scenario=class", "--ewc"], "--si"),
        (["bir", "--scenario=class", "--repulsion"], "--brain-inspired"),
    ],
)  # fmt: skip
def test_pasted_mammoth_and_bir_lines_without_meaning_here(cli, tmp_path, argv, needle):
    """mammoth's and BI-R's flags that mean nothing in lifelong name the equivalent."""
    run_dir = tmp_path / "run"
    argv = [a.replace("elsewhere", str(run_dir)) for a in argv]
    extra = [] if "--run-dir" in argv else ["--run-dir", run_dir]
    assert_one_line_error(cli(*argv, *extra), needle)
    assert not run_dir.exists()
