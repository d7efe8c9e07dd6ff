"""The accelerator path's switches, exercised on the CPU: bf16 autocast and torch.compile."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lifelong.config import layered_config
from lifelong.config.training import TrainConfig
from lifelong.errors import ConfigError
from lifelong.running.run import execute
from lifelong.running.train import training_precision


def test_bf16_runs_the_step_in_bfloat16_and_fp32_leaves_it_alone() -> None:
    layer = torch.nn.Linear(4, 3)
    x = torch.randn(2, 4)
    with training_precision("bf16", torch.device("cpu")):
        assert layer(x).dtype == torch.bfloat16
    with training_precision("fp32", torch.device("cpu")):
        assert layer(x).dtype == torch.float32


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"train\.precision"):
        TrainConfig(precision="fp16")


def run(tmp_path: Path, name: str, **train: object) -> dict[str, object]:
    request = {"method": "er", "dataset": "seq-digits", "buffer_size": 50, "epochs": 1}
    overrides = [(f"train.{k}", v) for k, v in train.items()]
    cfg = layered_config(request, preset="none", overrides=overrides).config
    return execute(cfg, tmp_path / name, tensorboard=False)


def final_accuracy(results: dict[str, object]) -> float:
    protocols = results["protocols"]
    assert isinstance(protocols, dict)
    return float(protocols["class-il"]["summary"]["average_accuracy"])


@pytest.mark.slow
def test_bf16_and_compiled_runs_learn_like_the_fp32_run(tmp_path: Path) -> None:
    """Same data, seed and schedule; bf16 rounding and compiled kernels move the result little."""
    plain = final_accuracy(run(tmp_path, "plain"))
    bf16 = final_accuracy(run(tmp_path, "bf16", precision="bf16"))
    compiled = run(tmp_path, "compiled", compile=True)
    assert plain > 40  # 5 experiences of 2 digits: chance is 10 % at the end
    assert abs(bf16 - plain) < 8, (bf16, plain)
    assert abs(final_accuracy(compiled) - plain) < 2, (final_accuracy(compiled), plain)
    state = torch.load(tmp_path / "compiled" / "checkpoint.pt", weights_only=True)
    assert keys(state) and not any("_orig_mod" in key for key in keys(state))  # plain names


def keys(tree: object) -> list[str]:
    """Every string key of nested dicts."""
    if not isinstance(tree, dict):
        return []
    return [k for k in tree if isinstance(k, str)] + [x for v in tree.values() for x in keys(v)]
