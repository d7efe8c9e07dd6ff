"""The lock of a trial folder: ``RUN_DIR/.lock``, held while a process owns the folder.

The sweep takes an exclusive ``flock`` on ``RUN_DIR/.lock`` before it looks at, clears or runs a
trial, and hands the locked file descriptor to the trial's ``lifelong run`` process (it stays
open there for the process's lifetime). The lock is released by the kernel when the last
process holding that descriptor ends, however it ends (``kill -9`` included), so a folder is
locked exactly while the sweep or its trial process is alive. A second sweep that finds the lock
taken leaves the folder alone: it neither deletes it nor starts a second process in it.

The lock file itself is never deleted (deleting it would let a second process lock a new file of
the same name while the first still holds the old one). ``flock`` locks are advisory and may not
work across NFS clients of some servers; a sweep shared between machines should use distinct
``out`` folders.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lifelong.running.run_dir import LOCK

LOCK_FILE = LOCK
"""Name of the lock file inside a trial folder."""


@contextmanager
def trial_lock(run_dir: Path) -> Iterator[int | None]:
    """Lock ``run_dir`` for the ``with`` block; yield the lock's descriptor, or None if taken.

    Creates ``run_dir`` and ``run_dir/.lock`` when missing. The descriptor (not inheritable by
    default) may be passed to a child process, which then holds the lock as long as it lives.

    Raises:
        OSError: When the folder or the lock file cannot be created.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        yield descriptor
    finally:
        os.close(descriptor)


def is_locked(run_dir: Path) -> bool:
    """Whether a process holds the lock of ``run_dir`` now (creates nothing)."""
    try:
        descriptor = os.open(run_dir / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False


def clear_locked_folder(run_dir: Path) -> None:
    """Delete everything in ``run_dir`` but its lock file (call it while holding the lock)."""
    for entry in run_dir.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
