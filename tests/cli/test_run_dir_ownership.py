"""Who owns a run folder (issue 14 items 1, 2 and 11).

* A run killed before its first checkpoint leaves a folder that can be resumed (from the start)
  or started again in place; the messages say what is really kept.
* Default folders are claimed atomically, so runs started in the same second never share one;
  a folder is locked while a process trains in it.
* Ctrl-C (a real SIGINT) ends with one line saying what was saved and how to resume.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lifelong.running.run_dir
from lifelong.errors import RunDirError
from lifelong.running.run_dir import LOCK, claim_run_dir, owning

FAST = ("--no-progress", "--no-tensorboard")
SLOW = (*FAST, "--epochs", "60", "--seed", "7")  # ~0.75 s per experience on seq-digits
TIMEOUT = 240.0


def _results(run_dir: Path) -> dict | None:
    path = run_dir / "results.json"
    return json.loads(path.read_text()) if path.exists() else None


def _matrices(results: dict) -> dict:
    return {p: e["matrix"] for p, e in results["protocols"].items()}


def _wait_for_steps(proc: subprocess.Popen[bytes], run_dir: Path) -> None:
    """Poll until the run logged a step record and has no checkpoint yet."""
    deadline = time.monotonic() + TIMEOUT
    metrics = run_dir / "metrics.jsonl"
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended (code {proc.returncode}) too early"
        if metrics.exists() and '"kind": "step"' in metrics.read_text():
            assert not (run_dir / "checkpoint.pt").exists(), "too late: make SLOW slower"
            return
        time.sleep(0.01)
    proc.kill()
    pytest.fail(f"no step logged in {run_dir} after {TIMEOUT}s")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, lifelong_script: str) -> dict:
    """Results of an uninterrupted run with SLOW settings."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    done = subprocess.run(
        [lifelong_script, "run", *SLOW, "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    results = _results(run_dir)
    assert results is not None
    return results


@pytest.fixture(scope="module")
def lifelong_script() -> str:
    import shutil

    script = shutil.which("lifelong", path=str(Path(sys.executable).parent))
    assert script is not None
    return script


@pytest.mark.parametrize("again", [["--resume", "{dir}"], ["--run-dir", "{dir}", *SLOW]])
def test_a_run_killed_before_its_first_checkpoint_can_go_on_in_place(
    lifelong_script: str, tmp_path: Path, reference: dict, again: list[str]
) -> None:
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [lifelong_script, "run", *SLOW, "--run-dir", str(run_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for_steps(proc, run_dir)
    proc.kill()
    proc.wait(timeout=60)
    assert (run_dir / "config.yaml").exists() and not (run_dir / "checkpoint.pt").exists()

    argv = [a.format(dir=run_dir) for a in again]
    if again[0] == "--resume":
        argv += list(FAST)
    done = subprocess.run(
        [lifelong_script, "run", *argv], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 0, done.stderr
    assert "no checkpoint yet" in done.stderr
    final = _results(run_dir)
    assert final is not None and final["completed"] is True
    assert _matrices(final) == _matrices(reference)  # exact: a clean start, no stale records
    steps = [
        json.loads(line)["step"]
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()
        if '"kind": "step"' in line
    ]
    assert steps == sorted(set(steps)), "records of the killed attempt were kept"


def test_non_finite_loss_before_any_checkpoint_says_so(cli, one_line_error, tmp_path) -> None:
    run_dir = tmp_path / "run"
    result = cli(
        "run", *FAST, "--run-dir", run_dir, "--lr", "1e30", "--set", "train.log_every=1"
    )  # fmt: skip
    message = one_line_error(result, "no checkpoint was written")
    assert "the last checkpoint is kept" not in message
    again = cli("run", *FAST, "--run-dir", run_dir, "--iters", "1")
    assert again.code == 0, again.err


def test_default_folders_claimed_in_the_same_second_differ(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(lifelong.running.run_dir.time, "strftime", lambda _fmt: "20261205-120000")
    runs = [cli("run", *FAST, "--iters", "1") for _ in range(2)]
    assert [r.code for r in runs] == [0, 0]
    folders = sorted((tmp_path / "runs" / "seq-digits").iterdir())
    assert [f.name for f in folders] == [
        "er-20261205-120000-s0",
        "er-20261205-120000-s0-2",
    ]
    assert all(_results(f) is not None for f in folders)


def test_two_processes_claiming_one_name_get_two_folders(tmp_path: Path) -> None:
    wanted = tmp_path / "runs" / "same-name"
    code = (
        "import sys, time; from pathlib import Path; "
        "from lifelong.running.run_dir import claim_run_dir; "
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); "
        "print(claim_run_dir(Path(sys.argv[1])))"
    )
    start = str(time.time() + 3.0)  # both processes are imported and waiting by then
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(wanted), start], stdout=subprocess.PIPE)
        for _ in range(2)
    ]
    claimed = sorted(p.communicate(timeout=60)[0].decode().strip() for p in procs)
    assert claimed == [str(wanted), f"{wanted}-2"]


def test_claim_takes_the_next_free_suffix(tmp_path: Path) -> None:
    wanted = tmp_path / "r"
    assert [claim_run_dir(wanted) for _ in range(3)] == [wanted, tmp_path / "r-2", tmp_path / "r-3"]


def test_a_folder_in_use_is_refused_and_left_alone(cli, one_line_error, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with owning(run_dir):
        result = cli("run", *FAST, "--run-dir", run_dir, "--iters", "1")
        one_line_error(result, "is in use by lifelong process", str(run_dir))
        with pytest.raises(RunDirError, match="in use"), owning(run_dir):
            pass
    assert sorted(p.name for p in run_dir.iterdir()) == [LOCK]
    assert cli("run", *FAST, "--run-dir", run_dir, "--iters", "1").code == 0  # released


def test_ctrl_c_stops_with_one_line_saying_how_to_resume(
    lifelong_script: str, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [lifelong_script, "run", *SLOW, "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell's background job ignores SIGINT, and the child would inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + TIMEOUT
    while _results(run_dir) is None and time.monotonic() < deadline:
        assert proc.poll() is None
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    lines = [line for line in err.splitlines() if line.startswith("lifelong:")]
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("lifelong: interrupted: ")
    assert f"--resume {run_dir}" in lines[0] and "keeps its checkpoint after experience" in lines[0]
    resumed = subprocess.run(
        [lifelong_script, "run", "--resume", str(run_dir), *FAST],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert resumed.returncode == 0, resumed.stderr
