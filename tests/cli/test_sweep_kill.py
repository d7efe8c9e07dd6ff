"""A killed sweep leaves no orphan, a locked trial folder is left alone, finished means parsable.

Issue 14 item 3: a sweep killed with ``kill -9`` left its trial running; the next sweep deleted
that trial's folder and started a second process in it.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import yaml

from lifelong.sweep import completed_results, runner
from lifelong.sweep.children import TrialProcesses

TINY = {
    "method": {"name": "er", "buffer_size": 20},
    "train": {"iters": 2, "epochs": 1, "batch_size": 8},
    "backbone": {"name": "mlp", "hidden": [16]},
}
SLOW = {**TINY, "train": {"iters": 1_000_000, "epochs": 1, "batch_size": 8}}
"""A trial that runs far longer than any test: it only ends when killed."""
STARTUP_SECONDS = 60.0
"""Upper bound for a sweep to start its trial process on a loaded machine."""
GONE_SECONDS = 5.0
"""How long a trial process may outlive its killed sweep."""
RunningSweep = tuple[subprocess.Popen[str], int, Path]
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="parent-death signal and /proc are Linux-only"
)


def write_sweep(path: Path, **sections: object) -> Path:
    path.write_text(yaml.safe_dump(sections, sort_keys=False))
    return path


def alive(pid: int) -> bool:
    """Whether a thread of ``pid`` still runs (zombies waiting for their reaper count as gone).

    Every thread counts: a killed process's main thread may be a zombie while its other threads
    are still tearing down (and still hold its files).
    """
    states = []
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            states.append(stat.read_text().rsplit(")", 1)[1].split()[0])
        except (OSError, IndexError):
            continue
    return any(state not in ("Z", "X") for state in states)


def unlocked(run_dir: Path) -> bool:
    """Whether nobody holds ``run_dir/.lock`` (takes and releases it)."""
    with (run_dir / ".lock").open() as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
    return True


def children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def running_sweep(tmp_path: Path) -> Iterator[RunningSweep]:
    """A ``lifelong sweep`` process whose one trial is training: (sweep, trial pid, trial dir).

    Whatever outlives the test is killed at the end (with the old runner the trial did).
    """
    out = tmp_path / "out"
    file = write_sweep(tmp_path / "slow.yaml", common=SLOW, out=str(out))
    command = [sys.executable, "-m", "lifelong", "-q", "sweep", str(file), "--no-tensorboard"]
    sweep = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    run_dir = out / "default" / "seed0"
    trials: list[int] = []
    try:
        # the run writes config.yaml once its data is built, just before training
        started = wait_for(lambda: (run_dir / "config.yaml").exists(), STARTUP_SECONDS)
        assert started, "the trial never started"
        trials = children_of(sweep.pid)
        assert len(trials) == 1, trials
        yield sweep, trials[0], run_dir
    finally:
        for pid in [*trials, sweep.pid]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        sweep.wait()
        assert sweep.stderr is not None
        sweep.stderr.close()


@linux_only
def test_trial_process_dies_with_a_sweep_killed_with_sigkill(running_sweep: RunningSweep) -> None:
    sweep, trial, run_dir = running_sweep
    assert alive(trial)
    sweep.send_signal(signal.SIGKILL)
    sweep.wait()
    killed = time.monotonic()
    assert wait_for(lambda: not alive(trial), GONE_SECONDS), "the trial outlived its sweep"
    assert wait_for(lambda: unlocked(run_dir), GONE_SECONDS), "the dead owners kept the lock"
    assert time.monotonic() - killed < GONE_SECONDS


@linux_only
def test_sigterm_stops_the_trials_and_exits_with_one_line(running_sweep: RunningSweep) -> None:
    sweep, trial, _run_dir = running_sweep
    sweep.send_signal(signal.SIGTERM)
    code = sweep.wait(timeout=15)
    assert sweep.stderr is not None
    err = sweep.stderr.read()
    assert code == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lifelong: sweep stopped"), err
    assert "SIGTERM" in lines[0] and "run the same command again" in lines[0]
    assert not alive(trial)


def test_locked_trial_folder_is_neither_deleted_nor_run_again(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    file = write_sweep(tmp_path / "sweep.yaml", common=TINY, seeds=[0, 1], out=str(out))
    busy = out / "default" / "seed0"
    busy.mkdir(parents=True)
    (busy / "metrics.jsonl").write_text("written by the process that owns the folder\n")
    with (busy / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running trial holds it
        listed = cli("sweep", file, "--dry-run")
        result = cli("sweep", file, "--no-tensorboard")
    assert f"default seed 0: {busy} (running elsewhere)" in listed.out
    assert result.code == 1, result.err
    assert sorted(p.name for p in busy.iterdir()) == [".lock", "metrics.jsonl"]
    assert (busy / "metrics.jsonl").read_text().startswith("written by the process")
    assert completed_results(out / "default" / "seed1") is not None  # the others ran
    assert "1 of 2 trials are running elsewhere" in result.err
    summary = (out / "summary.md").read_text()
    assert "| 1/2, 1 running elsewhere |" in summary
    assert f"default seed 0: {busy}" in summary
    assert "default seed 0: skipped, running elsewhere" in (out / "sweep.log").read_text()


RESULTS = {
    "completed": True,
    "protocols": {"class-il": {"summary": {"average_accuracy": 42.0}}},
    "config": {"seed": 0, "method": {"name": "er", "lr": 0.1}},
}


@pytest.mark.parametrize(
    ("config_yaml", "results"),
    [
        (None, RESULTS),
        ("method: {name: er, lr: [0.1\n", RESULTS),  # cut off while written
        ("just a string\n", RESULTS),
        ("seed: 0\nmethod: {name: er, lr: 0.5}\n", RESULTS),  # another process's config
        (yaml.safe_dump(RESULTS["config"]), {**RESULTS, "protocols": {"class-il": {}}}),
        (yaml.safe_dump(RESULTS["config"]), {**RESULTS, "completed": False}),
        (yaml.safe_dump(RESULTS["config"]), "not an object"),
    ],
    ids=[
        "no-config",
        "unparsable-config",
        "config-not-a-mapping",
        "config-differs",
        "no-scores",
        "not-completed",
        "results-not-object",
    ],
)
def test_results_without_a_matching_parsable_config_are_not_finished(
    tmp_path: Path, config_yaml: str | None, results: object
) -> None:
    (tmp_path / "results.json").write_text(json.dumps(results))
    if config_yaml is not None:
        (tmp_path / "config.yaml").write_text(config_yaml)
    assert completed_results(tmp_path) is None
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(RESULTS["config"]))
    (tmp_path / "results.json").write_text(json.dumps(RESULTS))
    assert completed_results(tmp_path) == RESULTS


def test_a_folder_with_results_but_no_config_is_cleared_and_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[str]] = []

    def fake_run(
        processes: TrialProcesses,
        command: list[str],
        output: IO[str],
        env: dict[str, str] | None,
        cwd: Path | None,
        keep_open: tuple[int, ...],
    ) -> int:
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        (tmp_path / "results.json").write_text(json.dumps(RESULTS))
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(RESULTS["config"]))
        return 0

    monkeypatch.setattr(TrialProcesses, "run", fake_run)
    (tmp_path / "results.json").write_text(json.dumps(RESULTS))  # config.yaml is missing
    attempt = runner.run_once([], tmp_path, one_thread=False)
    assert attempt.status == "ok" and attempt.accuracy == {"class-il": 42.0}
    assert seen == [[".lock", "trial.log"]]  # the stale results were gone before the run
    assert runner.run_once([], tmp_path, one_thread=False).status == "done before"
    assert len(seen) == 1
