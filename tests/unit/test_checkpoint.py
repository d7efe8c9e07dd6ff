"""Atomic writes and checkpoints that load with ``weights_only=True``."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import pytest
import torch

import lifelong.components  # noqa: F401  (fills the registries)
from lifelong.backbones.mlp import MLP, MLPConfig
from lifelong.checkpoint import (
    atomic_write_bytes,
    atomic_write_text,
    load_checkpoint,
    save_checkpoint,
)
from lifelong.data.transforms import ImageTransform
from lifelong.errors import RunDirError
from lifelong.methods.base import MethodContext
from lifelong.methods.er import ER
from lifelong.methods.rehearsal import RehearsalConfig
from lifelong.running.seed import rng_state, seed_everything
from lifelong.running.train import FitState, training_inputs
from lifelong.types import Batch


def test_atomic_write_replaces_content_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "results.json"
    atomic_write_text(target, "old")
    assert target.read_text() == "old"
    atomic_write_text(target, "new ✓")
    assert target.read_text(encoding="utf-8") == "new ✓"
    atomic_write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in target.parent.iterdir()) == ["results.json"]


def test_failed_atomic_write_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "config.yaml"
    atomic_write_text(target, "complete")

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "half")
    assert target.read_text() == "complete"
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]  # temp file removed


def test_load_missing_checkpoint_is_a_run_dir_error(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="no checkpoint"):
        load_checkpoint(tmp_path / "checkpoint.pt")


def test_load_garbage_checkpoint_is_a_run_dir_error(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"this is not a torch file" * 10)
    with pytest.raises(RunDirError, match="cannot read checkpoint"):
        load_checkpoint(path)


def test_truncated_checkpoint_is_a_run_dir_error(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"weights": torch.randn(100, 100)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RunDirError, match="cannot read checkpoint"):
        load_checkpoint(path)


class Gadget:
    """An arbitrary class: unpickling it would run code, which weights_only forbids."""


def test_checkpoint_with_arbitrary_objects_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    torch.save({"object": Gadget()}, path)
    with pytest.raises(RunDirError, match="cannot read checkpoint"):
        load_checkpoint(path)


def _assert_same(a: Any, b: Any, where: str = "payload") -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), where
        assert a.dtype == b.dtype, where
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict), where
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), where
    else:
        assert a == b, where


def test_method_state_round_trips_with_weights_only(tmp_path: Path) -> None:
    generator = seed_everything(0)
    shape = (1, 4, 4)
    transform = ImageTransform((0.0,), (1.0,))
    backbone = MLP(MLPConfig(hidden=(8,)), shape, 3)
    ctx = MethodContext(backbone, 3, shape, transform, torch.device("cpu"), generator)
    method = ER(RehearsalConfig(lr=0.1, momentum=0.9, buffer_size=6, minibatch_size=4), ctx)
    for step in range(4):
        raw = torch.randint(0, 256, (5, *shape), generator=generator, dtype=torch.uint8)
        y = torch.randint(0, 3, (5,), generator=generator)
        x, x_clean = training_inputs(raw, transform, generator)
        method.observe(Batch(x, y, x_clean, step // 2))
    state = FitState(
        next_experience=1,
        rows={"class-il": [[50.0, float("nan")]]},
        initial={"class-il": [float("nan"), 10.0]},
        step=4,
        seconds=[0.5],
    )
    payload = {
        "format": 1,
        "method": method.state_dict(),
        "rng": rng_state(generator),
        "state": dataclasses.asdict(state),
    }
    extra = payload["method"]["buffer._extra_state"]
    assert extra["reservoir"]["num_seen"] == 20
    # Python Mersenne Twister state (version, words, gauss)
    assert isinstance(extra["reservoir"]["rng"], tuple)
    momentum = payload["method"]["_extra_state"]["optimizer"]["state"]
    assert momentum and all(s["momentum_buffer"] is not None for s in momentum.values())

    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, payload)
    loaded = load_checkpoint(path)
    _assert_same(payload, loaded)
    assert FitState(**loaded["state"]).step == 4
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]
