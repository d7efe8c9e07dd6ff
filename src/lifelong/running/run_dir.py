"""A run's folder: its default name, claiming it atomically, checking it, locking it.

The rules (issue 14):

* A default folder (``runs/<dataset>/<method>-<time>-s<seed>``) is claimed with an exclusive
  ``mkdir`` before anything else; when another run took the name in the same second, the next
  free ``-2``, ``-3``, ... suffix is taken. Concurrent runs never share a folder.
* A process owns a run folder while it trains: it holds an exclusive ``flock`` on
  ``RUN_DIR/.lock``. The kernel releases the lock when the process dies, however it dies, so
  a killed run never leaves a folder locked. A second process (a second ``--resume``, a run or a
  sweep trial pointed at the same folder) is refused with one line. A sweep locks a trial's
  folder itself and hands the locked descriptor to the trial's process (``INHERITED_LOCK``).
* A folder whose run stopped before its first checkpoint (it has ``config.yaml`` but neither a
  checkpoint nor results) holds nothing worth keeping: a new run may start over in it, and
  ``--resume`` restarts it from the beginning with its saved config.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lifelong.config import RunConfig
from lifelong.errors import RunDirError

log = logging.getLogger(__name__)
CHECKPOINT = "checkpoint.pt"
RESULTS = "results.json"
LOCK = ".lock"
"""The lock file a process holds (``flock``) while it owns a run folder."""
INHERITED_LOCK = "LIFELONG_RUN_LOCK_FD"
"""Environment variable naming a descriptor of ``RUN_DIR/.lock`` that a parent (a sweep) locked
and handed to this process: the process then owns the folder already."""
MAX_SUFFIX = 1000
"""Suffixes tried for a default folder name before giving up."""


def default_run_dir(cfg: RunConfig, root: Path = Path("runs")) -> Path:
    """``<root>/<dataset>/<method>-<timestamp>-s<seed>`` (a name; nothing is created)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return root / cfg.dataset.name / f"{cfg.method_name}-{stamp}-s{cfg.seed}"


def claim_run_dir(wanted: Path) -> Path:
    """Create ``wanted`` (or ``wanted-2``, ``wanted-3``, ...) atomically and return it.

    The exclusive ``mkdir`` is the claim: of two processes asking for the same name in the same
    second, one gets it and the other the next suffix.

    Raises:
        RunDirError: if the parent cannot be created or written.
    """
    check_destination(wanted.parent, resume=True)  # a writable place; ``wanted`` may be taken
    if len(wanted.name.encode("utf-8")) > 255 - 4:
        raise RunDirError(f"cannot create {wanted}: its name is too long; choose --run-dir")
    try:
        wanted.parent.mkdir(parents=True, exist_ok=True)
        for k in range(1, MAX_SUFFIX + 1):
            candidate = wanted if k == 1 else wanted.with_name(f"{wanted.name}-{k}")
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            return candidate
    except OSError as err:
        raise RunDirError(
            f"cannot create a run folder in {wanted.parent} ({err.strerror}): "
            "choose another with --run-dir"
        ) from err
    raise RunDirError(f"{MAX_SUFFIX} run folders named {wanted}-*: choose one with --run-dir")


def stopped_before_first_checkpoint(run_dir: Path) -> bool:
    """True when ``run_dir`` holds a started run with neither a checkpoint nor results."""
    return (
        (run_dir / "config.yaml").exists()
        and not (run_dir / CHECKPOINT).exists()
        and not (run_dir / RESULTS).exists()
    )


def check_destination(run_dir: Path, resume: bool) -> None:
    """Fail before any work when ``run_dir`` cannot take this run; create nothing.

    A new run needs a folder that holds no earlier run (a run stopped before its first
    checkpoint does not count) and can be created and written (its nearest existing ancestor is
    a writable folder); a resumed run needs a writable folder.
    """
    if any(len(part.encode("utf-8")) > 255 for part in run_dir.parts):
        raise RunDirError(
            f"cannot use output folder {run_dir}: a name in it is over 255 bytes long; "
            "choose another with --run-dir"
        )
    if (
        not resume
        and any((run_dir / name).exists() for name in ("config.yaml", CHECKPOINT, RESULTS))
        and not stopped_before_first_checkpoint(run_dir)
    ):
        raise RunDirError(
            f"run directory {run_dir} already holds a run: continue it with --resume {run_dir} "
            "or choose another --run-dir"
        )
    existing = run_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise RunDirError(
            f"cannot write to output folder {run_dir}: {existing} is a file; "
            "choose another with --run-dir"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunDirError(
            f"cannot write to output folder {run_dir} ({existing} is not writable): "
            "choose another with --run-dir"
        )


def prepare_run_dir(run_dir: Path, resume: bool) -> None:
    """Create ``run_dir`` and check it is writable; refuse to start over an earlier run."""
    check_destination(run_dir, resume)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise RunDirError(
            f"cannot write to output folder {run_dir} ({err.strerror}): "
            "choose another with --run-dir"
        ) from err


@contextmanager
def owning(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the block; refuse when another live process holds it.

    Raises:
        RunDirError: if another process owns the folder.
    """
    if _inherited_lock(run_dir):
        yield
        return
    handle = (run_dir / LOCK).open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise RunDirError(
                f"run directory {run_dir} is in use by {owner}: wait for it to finish, or "
                "choose another --run-dir"
            ) from err
        handle.seek(0)
        handle.truncate()
        handle.write(f"lifelong process {os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock


def _inherited_lock(run_dir: Path) -> bool:
    """Whether this process was handed a locked descriptor of ``run_dir``'s lock file."""
    text = os.environ.get(INHERITED_LOCK, "")
    if not text.isdigit():
        return False
    try:
        held, lock_file = os.fstat(int(text)), (run_dir / LOCK).stat()
    except OSError:
        return False
    return (held.st_dev, held.st_ino) == (lock_file.st_dev, lock_file.st_ino)


def what_is_kept(run_dir: Path) -> str:
    """After a failed run: what ``run_dir`` keeps, and whether it can be started again in place."""
    if (run_dir / CHECKPOINT).exists():
        return (
            f"{run_dir} keeps its last checkpoint and results; start a new run (another "
            "--run-dir) with other settings"
        )
    return (
        f"no checkpoint was written, so {run_dir} can be started again in place with other settings"
    )


def saved_progress(run_dir: Path) -> str:
    """What ``run_dir`` keeps of an interrupted run, and how to continue it (one sentence)."""
    try:
        results = json.loads((run_dir / RESULTS).read_text(encoding="utf-8"))
        done = int(results["experiences_trained"])
        total = int(results["num_experiences"])
    except (OSError, ValueError, KeyError, TypeError):
        if (run_dir / "config.yaml").exists():
            return (
                f"{run_dir} has no checkpoint yet; `lifelong run --resume {run_dir}` starts it "
                "again from the beginning"
            )
        return f"nothing was written to {run_dir}"
    return (
        f"{run_dir} keeps its checkpoint after experience {done} of {total}; continue with "
        f"`lifelong run --resume {run_dir}`"
    )
