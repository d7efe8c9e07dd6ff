"""``lifelong run`` with the generative-replay methods (gr, bir) on the offline digits."""

from __future__ import annotations

import json
import math
import re

import pytest
import yaml

FAST = ("--no-progress", "--no-tensorboard")
N_EXPERIENCES = 5


@pytest.mark.parametrize(
    ("method", "terms"),
    [
        ("bir", {"recon", "kl", "ce", "distill", "replay"}),
        ("bir_si", {"recon", "kl", "ce", "distill", "replay", "si"}),
        ("gr", {"recon", "kl", "ce", "replay_ce", "replay_recon", "replay_kl"}),
    ],
)
def test_run_writes_results_and_replay_terms(cli, tmp_path, method, terms):
    run_dir = tmp_path / "run"
    argv = ["run", *FAST, "--method", method, "--dataset", "seq-digits", "--iters", "10"]
    result = cli(*argv, "--run-dir", run_dir)
    assert result.code == 0, result.err
    results = json.loads((run_dir / "results.json").read_text())
    for protocol in ("class-il", "task-il"):
        matrix = results["protocols"][protocol]["matrix"]
        assert len(matrix) == N_EXPERIENCES
        assert all(math.isfinite(v) for v in matrix[-1])
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["method"]["name"] == method and config["train"]["iters"] == 10
    steps = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [s for s in steps if s.get("kind") == "step"]
    assert {s["experience"] for s in steps} == set(range(N_EXPERIENCES))
    assert terms <= set(steps[-1])  # replay terms from the second experience on
    assert not {"distill", "replay", "replay_ce"} & set(steps[0])  # none in the first


def test_bir_pdf_report_shows_generated_samples(cli, tmp_path):
    run_dir = tmp_path / "run"
    argv = ["run", *FAST, "--method", "bir", "--dataset", "seq-digits", "--iters", "5"]
    assert cli(*argv, "--run-dir", run_dir, "--pdf").code == 0
    pdf = (run_dir / "report.pdf").read_bytes()
    # two accuracy pages (class-IL, task-IL), the losses, the generated samples, the confusion
    # matrix and the cost table
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) == 6
    (run_dir / "report.pdf").unlink()
    result = cli("report", run_dir, "--pdf")  # rebuilds bir from its checkpoint
    assert result.code == 0, result.err
    assert len(re.findall(rb"/Type\s*/Page\b", (run_dir / "report.pdf").read_bytes())) == 6


def test_bir_si_penalty_acts_only_after_the_first_experience(cli, tmp_path):
    run_dir = tmp_path / "run"
    argv = ["run", *FAST, "--method", "bir_si", "--dataset", "seq-digits", "--iters", "10"]
    assert cli(*argv, "--run-dir", run_dir, "--set", "train.log_every=5").code == 0
    steps = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    penalty = {s["experience"]: s["si"] for s in steps if s.get("kind") == "step"}
    assert penalty[0] == 0.0  # the anchor is the current network during the first experience
    assert all(penalty[t] > 0 for t in range(1, N_EXPERIENCES))


def test_bir_task_il_with_xdg_runs_and_its_checkpoint_keeps_the_gates(cli, tmp_path):
    import torch

    from lifelong.checkpoint import load_checkpoint

    run_dir = tmp_path / "run"
    argv = ["run", *FAST, "--method", "bir", "--dataset", "seq-digits", "--iters", "6"]
    task_il = ["--set", "method.task_il=true", "--set", "method.xdg_prop=0.5"]
    result = cli(*argv, *task_il, "--run-dir", run_dir)
    assert result.code == 0, result.err
    state = load_checkpoint(run_dir / "checkpoint.pt")
    tensors = [v for v in _tensors(state) if v[0].startswith("method.net.task_gates.")]
    assert len(tensors) == 2
    for _, mask in tensors:  # one row per experience, half of the units off in each
        assert mask.shape[0] == N_EXPERIENCES
        assert torch.equal((mask == 0).sum(dim=1), torch.full((N_EXPERIENCES,), mask.shape[1] // 2))
    results = json.loads((run_dir / "results.json").read_text())
    assert len(results["protocols"]["task-il"]["matrix"]) == N_EXPERIENCES
    steps = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("distill" in s for s in steps if s.get("kind") == "step")
    assert cli("report", run_dir).code == 0  # rebuilds the method, gates included, from it


def _tensors(tree: object, prefix: str = "") -> list[tuple[str, object]]:
    """Every (dotted key, value) leaf of nested dicts."""
    if isinstance(tree, dict):
        return [leaf for k, v in tree.items() for leaf in _tensors(v, f"{prefix}{k}.")]
    return [(prefix.rstrip("."), tree)]
