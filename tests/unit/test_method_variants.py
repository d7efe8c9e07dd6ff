"""Named variants are registry entries, and they resolve and train as their subclasses did.

``fixtures/method_variants.json`` was written by :mod:`variant_snapshots` while ``bir_si``,
``cwr_star`` and the SARL variants were subclasses; the entries must give the same configs
(every field and the layer that set it) and bit-identical seeded runs.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from variant_snapshots import FIXTURE, NAMES, VARIANTS, compact, config_requests, seeded_run

from lifelong.config import flatten, layered_config
from lifelong.errors import ConfigError
from lifelong.methods.base import METHODS, register_variant
from lifelong.methods.sarl import SARLConfig

BEFORE: dict[str, Any] = json.loads(FIXTURE.read_text())
OPTIONS = {
    "sarl": {
        "similarity",
        "sim_lr",
        "sim_pairs",
        "use_balanced_sampling",
        "balance_alpha",
        "adaptive_temp",
        "min_score",
        "online",
        "warmup_iters",
    },
    "bir": set(),
    "ar1_star": {"head_only_after_first"},
}
"""Per base method, the config fields that were added for its variants' options."""
LATER_FIELDS = {
    "train.precision": "fp32",
    "train.compile": False,
    "train.data_on_device": True,
    "dataset.pad": 0,
    "dataset.first_unpermuted": False,
    "train.probes": (),
    "train.probe_modes": ("separate", "joint"),
    "train.probe_per_class": 500,
    "train.probe_val_ratio": 0.1,
    "train.lr_milestones": (),
    "train.lr_gamma": 0.1,
}
"""Fields added after the snapshot (the GPU path, BI-R's permuted MNIST) at their defaults,
which change no run."""
LATER_METHOD_FIELDS = {"bir": {"method.task_il": False, "method.xdg_prop": 0.0}}
"""Method fields added after the snapshot (BI-R's task-IL training and XdG) at their defaults."""
LATER_PRESETS = {
    "perm-mnist/bir",
    "perm-mnist/bir_si",
    "perm-mnist/gr",
    "seq-mnist/xder_rpc-200",
    "seq-mnist/xder_rpc-500",
    "seq-mnist/xder_ce-200",
    "seq-mnist/xder_ce-500",
}
"""Presets added after the snapshot (BI-R's permMNIST protocol): requests they now match resolve
through them instead of the defaults the snapshot recorded."""


def plain(value: Any) -> Any:
    """``value`` as JSON reads it back (tuples become lists)."""
    return json.loads(json.dumps(value))


@pytest.mark.parametrize(("key", "request_", "preset"), list(config_requests()))
def test_resolved_config_equals_the_subclass_config(key, request_, preset) -> None:
    layered = layered_config(request_, preset=preset)
    matched = layered.sources["method.lr"].removeprefix("preset ")
    if matched in LATER_PRESETS:  # newer than the snapshot: the preset is what resolves
        assert layered.sources["dataset.pad"] == f"preset {matched}", key
        return
    before = BEFORE["configs"][key]
    fields = flatten(layered.config.to_raw())
    entry = METHODS.get(request_["method"])
    later = LATER_FIELDS | LATER_METHOD_FIELDS.get(entry.variant_of or entry.name, {})
    added = {k for k in fields if k.startswith("method.") and k not in before["shown"]}
    added -= set(later)
    assert {k.removeprefix("method.") for k in added} <= OPTIONS[entry.variant_of or entry.name]
    assert {k: fields[k] for k in later} == later
    added |= set(later)
    kept = {k: v for k, v in fields.items() if k not in added}
    sources = {k: v for k, v in layered.sources.items() if k not in added}
    assert plain(compact(kept, sources)) == before, key
    assert layered.config.method_name == request_["method"]  # the variant keeps its name


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_seeded_run_matches_the_subclass_run(name: str) -> None:
    """Bit-identical on a CPU with the snapshot's float kernels; to 1e-5 on any other.

    oneDNN picks its kernels by instruction set (AVX2 or AVX-512), which moves the last bits
    of a sum: measured on a Xeon against the fixture, the losses of all 188-566 steps stay
    within 5.4e-7 (relative) and every accuracy is identical. A changed algorithm (a lost loss
    term, another sampler) moves the losses by far more than 1e-5.
    """
    now, before = seeded_run(name), BEFORE["runs"][name]
    assert now["losses"] == pytest.approx(before["losses"], rel=1e-5)
    assert now["protocols"] == before["protocols"]
    if now["losses"] == before["losses"]:  # the same float kernels: the bits must match too
        assert now == before


@pytest.mark.parametrize("base", list(VARIANTS))
def test_variants_are_entries_of_their_base_class(base: str) -> None:
    for name in VARIANTS[base]:
        entry = METHODS.get(name)
        assert entry.variant_of == base
        assert entry.method_class is METHODS.get(base).method_class
        assert entry.description.startswith(f"{base} with ")


def test_plain_sarl_leaves_every_option_off() -> None:
    cfg = layered_config({"method": "sarl", "dataset": "seq-digits"}, preset="none").config
    assert isinstance(cfg.method, SARLConfig)
    assert cfg.method.similarity == "cosine" and not cfg.method.online
    assert not cfg.method.use_balanced_sampling


def test_a_variant_refuses_to_change_a_fixed_field() -> None:
    with pytest.raises(ConfigError, match="replay is always 'none' in cwr_star: use ar1_star"):
        layered_config({"method": "cwr_star"}, overrides=[("method.replay", "latent")])
    with pytest.raises(ConfigError, match="cwr_star"):
        METHODS.get("cwr_star").make_config({"head_only_after_first": False})


def test_a_variant_must_name_a_method_not_a_variant() -> None:
    with pytest.raises(ValueError, match="not the variant"):
        register_variant("sarl_twice", of="sarl_enhanced", summary="x", defaults={})
    assert "sarl_twice" not in METHODS
