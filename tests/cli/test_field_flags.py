"""Every config field is a flag of its own, and --buffer-size reaches every method's memory."""

from __future__ import annotations

import pytest

from lifelong.cli import build_parser, config_from_args, parse_command
from lifelong.running.experiment import Experiment


def cli_config(*argv: str):
    return config_from_args(parse_command(build_parser(), ["run", *argv]))


def test_method_and_backbone_fields_as_flags():
    cfg = cli_config("--method", "sarl", "--dataset", "seq-digits", "--op_weight", "0.1",
                     "--kw", "0.8", "0.7", "--warmup-epochs=2")  # fmt: skip
    assert cfg.method.op_weight == 0.1
    assert cfg.backbone.kw == (0.8, 0.7)
    assert cfg.method.warmup_epochs == 2


def test_a_bir_seed_flag_and_a_bare_boolean_flag():
    cfg = cli_config("--method", "bir", "--dg-prop", "0.6", "--shuffle_classes")
    assert cfg.method.dg_prop == 0.6
    assert cfg.dataset.shuffle_classes is True


def test_set_wins_over_a_field_flag():
    cfg = cli_config("--method", "der", "--minibatch_size", "4", "--set", "minibatch_size=7")
    assert cfg.method.minibatch_size == 7


def test_buffer_size_sets_the_memory_of_ar1_star():
    cfg = cli_config("--method", "ar1_star", "--buffer-size", "300")
    assert cfg.method.rm_sz == 300
    assert Experiment(method="ar1_star", buffer_size=300).config() == cfg


def test_buffer_size_sets_the_stream_buffer_of_cssl():
    assert cli_config("--method", "cssl", "--buffer-size", "64").method.buffer_size == 64


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run", "--method", "er", "--no_such_field", "3"], "no_such_field"),
        (["run", "--method", "er", "--lr_typo=2"], "lr_typo"),
        (["run", "--method", "er", "--kw", "0.5"], "kw"),  # er's mlp has no k-WTA
        (["run", "--method", "sarl", "--kw", "high", "low"], "backbone.kw"),
        (["run", "--method", "er", "--="], "--="),
        (["list", "methods", "--op_weight", "1"], "unrecognized arguments"),
    ],
)
def test_bad_field_flags_are_one_line_exit_2(cli, tmp_path, argv, needle):
    result = cli(*argv, "--run-dir", tmp_path / "r") if argv[0] == "run" else cli(*argv)
    assert result.code == 2
    assert needle in result.err and len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_resume_refuses_field_flags(cli, tmp_path):
    result = cli("run", "--resume", tmp_path, "--op_weight", "0.1")
    assert result.code == 2 and "--op_weight" in result.err
