"""What ``lifelong run`` prints: one line per experience off a terminal, bars only on one, and
no other package's lines (they go to ``RUN_DIR/run.log``).

These run the installed console script in a fresh process, as a user does, with matplotlib's
cache folder empty (its "generated new fontManager" line comes on first use).
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

TINY = ("--iters", "10", "--no-tensorboard")
EXPERIENCES = 5


def fresh_env(tmp_path: Path) -> dict[str, str]:
    mpl = tmp_path / "mplconfig"
    mpl.mkdir()
    return {**os.environ, "MPLCONFIGDIR": str(mpl), "OMP_NUM_THREADS": "1"}


def run_off_a_terminal(command: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``command`` with its output captured (not a terminal) and a fresh matplotlib cache."""
    return subprocess.run(
        command, capture_output=True, text=True, env=fresh_env(tmp_path), timeout=300, check=False
    )


def test_off_a_terminal_one_line_per_experience_and_nothing_else(
    lifelong_script: str, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    done = run_off_a_terminal([lifelong_script, "run", *TINY, "--run-dir", str(run_dir)], tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == f"run directory: {run_dir}"
    assert len(lines) == 1 + EXPERIENCES, done.stderr
    for k, line in enumerate(lines[1:], start=1):
        assert line.startswith(f"after experience {k}: average accuracy class-il "), line
    assert "it/s" not in done.stderr and "%|" not in done.stderr and "\r" not in done.stderr
    log = (run_dir / "run.log").read_text()
    assert "generated new fontManager" in log  # matplotlib's first-use line: in the log only
    assert log.count("after experience") == EXPERIENCES


def test_other_packages_warnings_go_to_the_run_log(tmp_path: Path) -> None:
    """A Python warning and a third-party logger's warning during a run: off the screen."""
    run_dir = tmp_path / "run"
    script = (
        "import logging, sys, warnings\n"
        "import lifelong.running.run as run\n"
        "from lifelong.cli import main\n"
        "fit = run.fit\n"
        "def noisy_fit(*args, **kwargs):\n"
        "    warnings.warn('a library says: deprecated', DeprecationWarning, stacklevel=1)\n"
        "    warnings.warn('a library says: careful', UserWarning, stacklevel=1)\n"
        "    logging.getLogger('somelib').warning('somelib is unhappy')\n"
        "    return fit(*args, **kwargs)\n"
        "run.fit = noisy_fit\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    command = [sys.executable, "-W", "always", "-c", script, "run", *TINY]
    done = run_off_a_terminal([*command, "--run-dir", str(run_dir)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "library says" not in done.stderr and "unhappy" not in done.stderr, done.stderr
    assert f"3 warning(s) of other packages are in {run_dir / 'run.log'}" in done.stderr
    log = (run_dir / "run.log").read_text()
    assert "a library says: deprecated" in log and "a library says: careful" in log
    assert "somelib is unhappy" in log


def read_terminal(fd: int, process: subprocess.Popen[bytes]) -> bytes:
    """Everything written to the terminal ``fd`` until ``process`` ends."""
    chunks = []
    while True:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the other side closed
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    return b"".join(chunks)


def test_on_a_terminal_the_bars_show(lifelong_script: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    leader, follower = pty.openpty()
    # a terminal of 24 rows and 80 columns (tqdm draws nothing on a 0-column terminal)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    argv = [lifelong_script, "run", "--iters", "400", "--no-tensorboard"]
    process = subprocess.Popen(
        [*argv, "--set", "train.log_every=400", "--run-dir", str(run_dir)],
        stdout=subprocess.DEVNULL,
        stderr=follower,
        env=fresh_env(tmp_path),
    )
    os.close(follower)
    try:
        screen = read_terminal(leader, process).decode("utf-8", "replace")
    finally:
        os.close(leader)
    assert process.wait(timeout=300) == 0, screen
    assert "experience 1/5:" in screen and "it/s" in screen  # tqdm's bar
    assert screen.count("after experience") == EXPERIENCES
