"""One configuration path: the Python API and the command line resolve the same request alike."""

from __future__ import annotations

import dataclasses

import pytest

import lifelong
from lifelong.cli import FLAGS, build_parser, config_from_args
from lifelong.config import REQUEST_KEYS, layered_config
from lifelong.config.presets import load_preset, preset_names
from lifelong.data.scenarios import SCENARIOS
from lifelong.errors import ConfigError
from lifelong.methods.base import METHODS
from lifelong.running.experiment import Experiment


def cli_config(*argv: str):
    return config_from_args(build_parser().parse_args(["run", *argv]))


def requests():
    """Every method x scenario without a preset, and every preset both named and matched."""
    for method in METHODS.names():
        for dataset in SCENARIOS.names():
            yield pytest.param(method, dataset, None, None, id=f"{dataset}-{method}")
    for name in preset_names():
        raw = load_preset(name)
        method = raw.get("method", {}).get("name")
        dataset = raw.get("dataset", {}).get("name", name.split("/")[0])
        buffer = raw.get("method", {}).get("buffer_size")
        yield pytest.param(method, dataset, buffer, name, id=f"preset-{name}")
        yield pytest.param(method, dataset, buffer, None, id=f"matched-{name}")


@pytest.mark.parametrize(("method", "dataset", "buffer", "preset"), list(requests()))
def test_python_api_and_command_line_resolve_equal_configs(method, dataset, buffer, preset):
    argv = ["--method", method, "--dataset", dataset]
    argv += ["--buffer-size", str(buffer)] if buffer is not None else []
    argv += ["--preset", preset] if preset else []
    try:
        expected = cli_config(*argv)
    except ConfigError as err:  # a combination the configuration refuses: both must refuse
        with pytest.raises(ConfigError, match=str(err)[:30]):
            Experiment(method=method, dataset=dataset, buffer_size=buffer, preset=preset).config()
        return
    api = Experiment(method=method, dataset=dataset, buffer_size=buffer, preset=preset)
    assert api.config() == expected


@pytest.mark.parametrize(
    ("request_", "check"),
    [  # the three divergences the configuration issue found
        ({"method": "derpp"}, lambda c: (c.train.epochs, c.train.batch_size) == (5, 16)),
        ({"method": "sarl", "dataset": "seq-mnist"}, lambda c: c.backbone_name == "sparse_mlp"),
        (
            {"method": "er", "dataset": "seq-mnist", "buffer_size": 200},
            lambda c: c.method.lr == 0.01 and c.preset == "seq-mnist/er-200",
        ),
    ],
)
def test_the_api_gets_scenario_defaults_variants_and_paper_presets(request_, check):
    assert check(lifelong.Experiment(**request_).config())


def test_every_request_field_is_a_flag_and_an_experiment_field():
    fields = {f.name for f in dataclasses.fields(Experiment)}
    assert set(REQUEST_KEYS) <= fields
    assert set(FLAGS) | {"download"} == set(REQUEST_KEYS)


def test_layers_are_ordered_and_recorded():
    layered = layered_config(
        {"method": "er", "dataset": "seq-mnist", "buffer_size": 200, "lr": 0.5},
        overrides=[("train.log_every", 7), ("minibatch_size", 3)],
    )
    cfg, sources = layered.config, layered.sources
    assert (cfg.method.lr, sources["method.lr"]) == (0.5, "override")
    assert (cfg.method.minibatch_size, sources["method.minibatch_size"]) == (3, "override")
    assert (cfg.train.batch_size, sources["train.batch_size"]) == (10, "preset seq-mnist/er-200")
    assert sources["train.log_every"] == "override"
    assert sources["method.momentum"] == "default"


def test_a_config_file_sits_between_the_preset_and_the_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("method: {name: er, lr: 0.2, buffer_size: 200}\ndataset: {name: seq-mnist}\n")
    layered = layered_config({"lr": 0.3}, config_file=path, overrides=[("batch_size", 4)])
    assert layered.sources["method.buffer_size"] == "config file"
    assert (layered.config.method.lr, layered.sources["method.lr"]) == (0.3, "override")
    assert layered.sources["method.minibatch_size"] == "preset seq-mnist/er-200"


def test_a_backbone_renamed_above_drops_the_fields_set_below():
    layered = layered_config(
        {"method": "er", "dataset": "seq-mnist", "buffer_size": 200, "backbone": "resnet18"}
    )
    assert layered.config.backbone_name == "resnet18"
    assert layered.sources["backbone.nf"] == "default"
