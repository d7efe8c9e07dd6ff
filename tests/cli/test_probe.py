"""`lifelong probe RUN_DIR`: several probes, separate and joint, on a finished run's encoder."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tests.contract.test_methods import make_stream

from lifelong.evaluation.probes import ProbeConfig
from lifelong.evaluation.probing import probe_encoder

FAST = ("--no-progress", "--no-tensorboard")


def test_probing_a_finished_run_writes_every_probe_under_every_mode(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    assert (
        cli("run", "--dataset", "seq-digits", "--iters", "3", *FAST, "--run-dir", run_dir).code == 0
    )
    done = cli("probe", run_dir, "--probes", "ridge", "knn", "linear", "--per-class", "30")
    assert done.code == 0, done.err
    written = json.loads((run_dir / "probes.json").read_text())
    assert written["per_class"] == 30 and written["val_ratio"] == 0.1
    for probe in ("ridge", "knn", "linear"):
        separate = written["separate"][probe]
        assert len(separate["experiences"]) == 5  # seq-digits: 5 experiences of 2 digits
        assert all(0 <= a <= 100 for a in separate["experiences"])
        assert abs(separate["mean"] - sum(separate["experiences"]) / 5) < 1e-9
        assert 0 <= written["joint"][probe] <= 100
    assert "separate  ridge   mean" in done.out and "joint     linear" in done.out
    # a two-class probe per experience is easier than one over all ten classes
    assert written["separate"]["ridge"]["mean"] > written["joint"]["ridge"]


def test_separable_features_are_probed_near_perfectly() -> None:
    stream = make_stream("grey")  # each class a noisy copy of its own random prototype
    flat = torch.nn.Flatten()
    results = probe_encoder(
        flat, flat, stream, ["ridge", "knn", "linear"], ["separate", "joint"],
        ProbeConfig(knn_k=3), per_class=50, val_ratio=0.2,
        generator=torch.Generator().manual_seed(0), device=torch.device("cpu"),
    )  # fmt: skip
    for probe in ("ridge", "knn", "linear"):
        assert results["separate"][probe]["mean"] > 90, (probe, results["separate"][probe])
        assert results["joint"][probe] > 80, (probe, results["joint"][probe])


def test_bad_probe_requests_are_one_line(cli: Callable[..., Any], tmp_path: Path) -> None:
    for argv, needle in (
        (("probe", tmp_path / "nowhere"), "config.yaml"),
        (("probe", tmp_path, "--probes", "svm"), "svm"),
        (("probe", tmp_path, "--val-ratio", "1.5"), "val-ratio"),
        (("probe", tmp_path, "--per-class", "0"), "per-class"),
    ):
        result = cli(*argv)
        assert result.code == 2 and needle in result.err, (argv, result.err)
        assert len(result.err.strip().splitlines()) == 1, result.err


def test_probes_after_every_experience_leave_training_unchanged_and_land_in_results(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    argv = ("run", "--method", "er", "--dataset", "seq-digits", "--iters", "5", *FAST)
    plain, probed = tmp_path / "plain", tmp_path / "probed"
    assert cli(*argv, "--run-dir", plain).code == 0
    probes = ("--set", "train.probes=[ridge,knn]", "--set", "train.probe_per_class=20")
    result = cli(*argv, *probes, "--run-dir", probed)
    assert result.code == 0, result.err
    before = json.loads((plain / "results.json").read_text())
    after = json.loads((probed / "results.json").read_text())
    for protocol in ("class-il", "task-il"):  # the probes draw from their own generator
        assert after["protocols"][protocol]["matrix"] == before["protocols"][protocol]["matrix"]
    probing = after["probing"]
    assert "probing" not in before and len(probing["after"]) == 5
    last = probing["after"][-1]
    assert set(last) == {"separate", "joint"} and set(last["joint"]) == {"ridge", "knn"}
    assert len(last["separate"]["ridge"]["experiences"]) == 5
    joint = [entry["joint"]["ridge"] for entry in probing["after"]]
    summary = probing["summary"]["ridge"]
    assert summary["joint_final"] == joint[-1]
    assert abs(summary["stream_accuracy"] - sum(joint) / 5) < 1e-9
    assert all(0 <= v <= 100 for v in joint)
