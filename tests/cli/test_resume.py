"""Kill-and-resume with a real process: a run killed with SIGKILL mid-run and resumed with
``lifelong run --resume`` ends with exactly the results of an uninterrupted run (CPU, same seed)."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

# ~0.75 s of training per experience on seq-digits, so the kill lands between boundaries.
ARGS = ("--no-progress", "--no-tensorboard", "--epochs", "60", "--seed", "7")
N_EXPERIENCES = 5
TIMEOUT = 240.0


def read_results(run_dir: Path) -> dict[str, Any] | None:
    """``results.json`` if it exists (it is written atomically, so it is never half a file)."""
    path = run_dir / "results.json"
    return json.loads(path.read_text()) if path.exists() else None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def matrices(results: dict[str, Any]) -> dict[str, Any]:
    return {p: (e["matrix"], e["initial"]) for p, e in results["protocols"].items()}


def steps_logged_after(run_dir: Path, experience: int) -> bool:
    """Whether ``metrics.jsonl`` already holds a step record of ``experience`` (or later)."""
    path = run_dir / "metrics.jsonl"
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line being written
            continue
        if record["kind"] == "step" and record["experience"] >= experience:
            return True
    return False


def kill_mid_experience(proc: subprocess.Popen[bytes], run_dir: Path) -> None:
    """Poll ``run_dir`` until one experience is checkpointed and the next one has logged steps
    (so the resume must drop records written after the checkpoint), then SIGKILL ``proc``."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, (
            f"the run ended (code {proc.returncode}) before it could be killed"
        )
        results = read_results(run_dir)
        if (
            results is not None
            and (run_dir / "checkpoint.pt").exists()
            and results["experiences_trained"] >= 1
            and steps_logged_after(run_dir, results["experiences_trained"])
        ):
            proc.kill()
            proc.wait(timeout=60)
            return
        time.sleep(0.01)
    proc.kill()
    pytest.fail(f"no checkpoint in {run_dir} after {TIMEOUT}s")


def test_killed_run_resumes_to_identical_results(lifelong_script, tmp_path, cli):
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    with (tmp_path / "killed.log").open("wb") as log:
        proc = subprocess.Popen(
            [lifelong_script, "run", *ARGS, "--run-dir", str(killed)], stdout=log, stderr=log
        )
        kill_mid_experience(proc, killed)
    assert proc.returncode == -signal.SIGKILL

    partial = read_results(killed)
    assert partial is not None
    assert partial["completed"] is False, "the run finished before the kill: make ARGS slower"
    assert 1 <= partial["experiences_trained"] < N_EXPERIENCES
    logged = [r for r in read_jsonl(killed / "metrics.jsonl") if r["kind"] == "step"]
    assert logged[-1]["step"] > partial["steps"]  # records past the checkpoint, to be dropped
    # a partial run can be reported
    report = cli("report", killed)
    assert report.code == 0, report.err
    assert f"{partial['experiences_trained']}/{N_EXPERIENCES} experiences" in report.out

    # the uninterrupted reference, as its own process (not alongside: two processes that each
    # use every core slow each other down many times over)
    done = subprocess.run(
        [lifelong_script, "run", *ARGS, "--run-dir", str(reference)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr

    resumed = subprocess.run(
        [lifelong_script, "run", "--resume", str(killed), "--no-progress", "--no-tensorboard"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    assert "class-il" in resumed.stdout

    final, expected = read_results(killed), read_results(reference)
    assert final is not None and expected is not None
    assert final["completed"] is True
    assert final["steps"] == expected["steps"]
    assert matrices(final) == matrices(expected)  # exact equality
    assert final["config"] == expected["config"]

    records = read_jsonl(killed / "metrics.jsonl")
    evals = [r["experience"] for r in records if r["kind"] == "eval"]
    assert evals == list(range(N_EXPERIENCES))  # one per experience, no duplicates
    steps = [r for r in records if r["kind"] == "step"]
    numbers = [r["step"] for r in steps]
    assert all(a < b for a, b in itertools.pairwise(numbers))
    # the step log is the uninterrupted one: same steps and bit-identical losses
    reference_steps = [r for r in read_jsonl(reference / "metrics.jsonl") if r["kind"] == "step"]
    untimed = [{k: v for k, v in r.items() if k != "seconds"} for r in steps]  # wall time differs
    assert untimed == [{k: v for k, v in r.items() if k != "seconds"} for r in reference_steps]
    for name in ("accuracy_matrix.png", "accuracy_curves.png"):
        assert (killed / name).stat().st_size > 0


def test_resume_of_a_complete_run_changes_nothing(cli, tmp_path):
    run_dir = tmp_path / "run"
    assert (
        cli("run", "--no-progress", "--no-tensorboard", "--run-dir", run_dir, "--epochs", "1").code
        == 0
    )
    before = read_results(run_dir)
    metrics = (run_dir / "metrics.jsonl").read_bytes()
    checkpoint = (run_dir / "checkpoint.pt").read_bytes()
    config = (run_dir / "config.yaml").read_bytes()

    result = cli("run", "--resume", run_dir, "--no-progress", "--no-tensorboard")
    assert result.code == 0, result.err
    assert "5/5 experiences" in result.out
    after = read_results(run_dir)
    assert after is not None and before is not None
    assert after["completed"] is True
    assert matrices(after) == matrices(before)
    assert after["steps"] == before["steps"]
    assert (run_dir / "metrics.jsonl").read_bytes() == metrics
    assert (run_dir / "checkpoint.pt").read_bytes() == checkpoint
    assert (run_dir / "config.yaml").read_bytes() == config
