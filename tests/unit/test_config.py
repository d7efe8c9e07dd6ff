"""Typed run configuration: resolution, validation, ``--set`` keys, merging and presets."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
import yaml

from lifelong.backbones.mlp import MLPConfig
from lifelong.backbones.resnet import ResNetConfig
from lifelong.config import RunConfig, merge, qualify, resolve, set_key
from lifelong.config.presets import load_preset, matching_preset, preset_description, preset_names
from lifelong.data.scenarios import SCENARIOS
from lifelong.errors import ConfigError
from lifelong.methods.derpp import DERppConfig

DERPP_RAW: dict[str, Any] = {
    "method": {"name": "derpp", "alpha": 0.2, "beta": 1, "buffer_size": 500, "lr": 0.03},
    "dataset": {"name": "seq-mnist", "classes_per_experience": 2, "shuffle_classes": True},
    "backbone": {"name": "mlp", "hidden": [50, 40]},
    "train": {"epochs": 2, "iters": 100, "batch_size": 10, "progress": False},
    "seed": 3,
    "device": "cpu",
}


# ---------------------------------------------------------------------------------------------
# resolve


def test_defaults() -> None:
    cfg = resolve({})
    assert cfg.method_name == "er"
    assert cfg.dataset.name == "seq-digits"
    assert cfg.backbone_name == "mlp"
    assert cfg.backbone == MLPConfig()
    assert cfg.seed == 0
    assert cfg.device == "cpu"


@pytest.mark.parametrize(
    "raw",
    [
        {},
        DERPP_RAW,
        {"method": {"name": "finetune"}, "backbone": {"name": "resnet18", "nf": 20}},
        {"method": {"name": "joint"}, "dataset": {"name": "perm-mnist", "n_experiences": 3}},
    ],
)
def test_resolve_round_trip(raw: dict[str, Any]) -> None:
    cfg = resolve(raw)
    assert resolve(cfg.to_raw()) == cfg
    # the raw form is what config.yaml holds: it survives YAML too
    assert resolve(yaml.safe_load(yaml.safe_dump(cfg.to_raw()))) == cfg


def test_resolve_types_every_section() -> None:
    cfg = resolve(DERPP_RAW, preset="seq-mnist/derpp-500")
    assert isinstance(cfg, RunConfig)
    assert cfg.method_name == "derpp"
    assert isinstance(cfg.method, DERppConfig)
    assert cfg.method.beta == 1.0
    assert isinstance(cfg.method.beta, float)  # int → float coercion
    assert cfg.method.buffer_size == 500
    assert cfg.dataset.shuffle_classes is True
    assert cfg.backbone.hidden == (50, 40)  # list → tuple
    assert cfg.train.iters == 100
    assert cfg.seed == 3
    assert cfg.preset == "seq-mnist/derpp-500"


def test_resnet_backbone_section() -> None:
    cfg = resolve({"backbone": {"name": "resnet18", "nf": 16}})
    assert cfg.backbone == ResNetConfig(nf=16)


def test_unknown_key_names_it_and_suggests_the_fix() -> None:
    with pytest.raises(ConfigError) as err:
        resolve({"method": {"name": "der", "alhpa": 0.1}})
    message = str(err.value)
    assert "method.alhpa" in message
    assert "did you mean 'alpha'" in message


def test_keys_of_another_method_are_unknown() -> None:
    # beta belongs to DER++, not DER
    with pytest.raises(ConfigError, match=r"method\.beta"):
        resolve({"method": {"name": "der", "beta": 0.5}})


def test_unknown_top_level_key_suggests_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"'sed'.*did you mean 'seed'"):
        resolve({"sed": 1})


def test_unknown_names_suggest_registered_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown method 'dr'.*'der'"):
        resolve({"method": {"name": "dr"}})
    with pytest.raises(ConfigError, match=r"unknown dataset 'seq-mnst'.*'seq-mnist'"):
        resolve({"dataset": {"name": "seq-mnst"}})
    with pytest.raises(ConfigError, match=r"unknown backbone 'resnet'.*'resnet18'"):
        resolve({"backbone": {"name": "resnet"}})


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"train": {"epochs": "two"}}, "train.epochs"),
        ({"train": {"epochs": 2.5}}, "train.epochs"),
        ({"train": {"epochs": True}}, "train.epochs"),
        ({"method": {"lr": "fast"}}, "method.lr"),
        ({"dataset": {"shuffle_classes": "yes"}}, "dataset.shuffle_classes"),
        ({"backbone": {"hidden": 100}}, "backbone.hidden"),
        ({"backbone": {"hidden": [100, "wide"]}}, "backbone.hidden"),
        ({"seed": "zero"}, "seed"),
    ],
)
def test_ill_typed_value_names_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=rf"{field.replace('.', '[.]')} must"):
        resolve(raw)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"method": {"name": "er", "buffer_size": 0}}, "method.buffer_size"),
        ({"method": {"name": "der", "minibatch_size": -3}}, "method.minibatch_size"),
        ({"method": {"lr": 0}}, "method.lr"),
        ({"method": {"name": "der", "alpha": -1}}, "method.alpha"),
        ({"method": {"name": "derpp", "beta": -0.5}}, "method.beta"),
        ({"train": {"batch_size": -1}}, "train.batch_size"),
        ({"train": {"epochs": 0}}, "train.epochs"),
        ({"train": {"iters": 0}}, "train.iters"),
        ({"dataset": {"classes_per_experience": 0}}, "dataset.classes_per_experience"),
        ({"backbone": {"hidden": [100, 0]}}, "backbone.hidden"),
        ({"backbone": {"name": "resnet18", "nf": 0}}, "backbone.nf"),
    ],
)
def test_non_positive_sizes_name_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", "[.]")):
        resolve(raw)


def test_section_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="'train' must be a mapping"):
        resolve({"train": [1, 2]})


# ---------------------------------------------------------------------------------------------
# --set keys


def test_qualify_bare_keys() -> None:
    der = {"method": {"name": "der"}}
    assert qualify("alpha", der) == "method.alpha"
    assert qualify("epochs", der) == "train.epochs"
    assert qualify("hidden", der) == "backbone.hidden"
    assert qualify("shuffle_classes", der) == "dataset.shuffle_classes"
    assert qualify("train.epochs", der) == "train.epochs"  # already dotted
    assert qualify("seed", der) == "seed"
    assert qualify("nf", {"backbone": {"name": "resnet18"}}) == "backbone.nf"


def test_qualify_depends_on_the_chosen_method() -> None:
    with pytest.raises(ConfigError, match="'alpha'"):
        qualify("alpha", {"method": {"name": "er"}})  # ER has no alpha


def test_qualify_ambiguous_and_unknown_keys() -> None:
    with pytest.raises(ConfigError, match="ambiguous"):
        qualify("name", {})
    with pytest.raises(ConfigError, match="unknown config key 'nf'"):
        qualify("nf", {"backbone": {"name": "mlp"}})
    with pytest.raises(ConfigError, match=r"did you mean 'method\.buffer_size'"):
        qualify("buffer_sise", {"method": {"name": "er"}})


def test_qualify_suggests_for_short_typos() -> None:
    with pytest.raises(ConfigError, match=r"did you mean 'method\.alpha'"):
        qualify("alhpa", {"method": {"name": "der"}})


def test_set_key() -> None:
    raw = {"method": {"name": "der", "alpha": 0.1}}
    out = set_key(raw, "method.alpha", 0.5)
    assert out == {"method": {"name": "der", "alpha": 0.5}}
    assert raw == {"method": {"name": "der", "alpha": 0.1}}
    assert set_key({}, "seed", 4) == {"seed": 4}
    with pytest.raises(ConfigError, match=r"unknown config section 'trian'.*'train'"):
        set_key({}, "trian.epochs", 2)
    with pytest.raises(ConfigError, match="unknown config key 'sede'"):
        set_key({}, "sede", 2)


def test_merge_is_recursive_and_does_not_mutate_inputs() -> None:
    base = {"train": {"epochs": 1, "batch_size": 10}, "method": {"name": "er"}, "seed": 0}
    override = {"train": {"epochs": 5}, "backbone": {"name": "mlp"}, "seed": 2}
    base_copy, override_copy = copy.deepcopy(base), copy.deepcopy(override)
    merged = merge(base, override)
    assert merged == {
        "train": {"epochs": 5, "batch_size": 10},
        "method": {"name": "er"},
        "seed": 2,
        "backbone": {"name": "mlp"},
    }
    assert base == base_copy
    assert override == override_copy


def test_merge_starts_a_section_over_when_its_name_changes() -> None:
    preset = {"backbone": {"name": "mobilenet_v1", "width": 1.0}, "method": {"name": "er"}}
    flags = {"backbone": {"name": "mlp"}, "method": {"name": "er", "lr": 0.1}}
    assert merge(preset, flags) == {
        "backbone": {"name": "mlp"},
        "method": {"name": "er", "lr": 0.1},
    }
    # a section without a name (``--set backbone.width=0.5``) still merges
    assert merge(preset, {"backbone": {"width": 0.5}})["backbone"] == {
        "name": "mobilenet_v1",
        "width": 0.5,
    }


def test_merge_replaces_non_mapping_values() -> None:
    assert merge({"backbone": {"hidden": [1, 2, 3]}}, {"backbone": {"hidden": [4]}}) == {
        "backbone": {"hidden": [4]}
    }
    assert merge({"train": {"epochs": 1}}, {"train": None}) == {"train": None}


# ---------------------------------------------------------------------------------------------
# presets


def test_every_preset_resolves_with_its_scenario_defaults() -> None:
    names = preset_names()
    if not names:
        pytest.skip("no presets under configs/presets yet")
    for name in names:
        preset = load_preset(name)
        dataset = name.split("/")[0]
        # `--preset NAME` alone takes the dataset from the preset, so it must name its folder's one
        assert preset.get("dataset", {}).get("name") == dataset, f"{name}: dataset.name"
        cfg = resolve(merge(SCENARIOS.get(dataset).defaults, preset), preset=name)
        assert cfg.dataset.name == dataset
        assert cfg.preset == name
        # the file name is <method> or <method>-<buffer_size>, which matching_preset relies on
        stem = name.split("/")[1]
        method, _, buffer = stem.partition("-")
        assert cfg.method_name == method, f"{name}: method.name"
        if buffer:
            assert getattr(cfg.method, "buffer_size", None) == int(buffer), f"{name}: buffer_size"
            assert matching_preset(dataset, method, int(buffer)) == name
        else:
            assert matching_preset(dataset, method, None) == name
        assert preset_description(name), f"{name} has no leading comment naming its source"
        assert resolve(cfg.to_raw()) == dataclasses.replace(cfg, preset=None)


def test_matching_preset() -> None:
    if not preset_names():
        pytest.skip("no presets under configs/presets yet")
    assert matching_preset("seq-mnist", "er", 200) == "seq-mnist/er-200"
    assert matching_preset("no-such-dataset", "er", 200) is None


def test_unknown_preset_suggests_names() -> None:
    with pytest.raises(ConfigError, match="unknown preset 'seq-mnist/nothing-42'"):
        load_preset("seq-mnist/nothing-42")


def test_literal_fields_accept_only_their_choices() -> None:
    from typing import Literal

    from lifelong.config import coerce

    kind = Literal["sgd", "adam"]
    assert coerce("adam", kind, "method.optimizer") == "adam"
    with pytest.raises(ConfigError, match=r"must be one of sgd, adam, got 'rmsprop'"):
        coerce("rmsprop", kind, "method.optimizer")


def test_float_fields_accept_yaml_scientific_notation_without_a_dot() -> None:
    import yaml

    value = yaml.safe_load("lr: 1e-4")["lr"]
    assert value == "1e-4"  # YAML 1.1 reads it as a string
    cfg = resolve({"method": {"name": "er", "lr": value}})
    assert cfg.method.lr == 1e-4
    with pytest.raises(ConfigError, match="lr"):
        resolve({"method": {"name": "er", "lr": "fast"}})
