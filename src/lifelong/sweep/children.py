"""Trial processes that die with the sweep.

On Linux each ``lifelong run`` child asks the kernel for ``SIGKILL`` when its parent dies
(``prctl(PR_SET_PDEATHSIG)``, set between fork and exec), so even a sweep killed with
``kill -9`` leaves no orphan. The signal fires when the *thread* that started the child ends;
the sweep's worker threads wait for their child, so that is never earlier than intended.

Where ``prctl`` is unavailable (macOS, BSD) the child starts in its own process group and the
sweep kills that group when it stops normally or on SIGINT/SIGTERM
(:meth:`TrialProcesses.stop_all`); a sweep killed with ``kill -9`` there does leave its running
trials behind, but their folders stay locked (:mod:`lifelong.sweep.lock`) until they end, so a
new sweep reports them as running elsewhere instead of clobbering them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1
"""``prctl`` option from ``<linux/prctl.h>``."""
GRACE_SECONDS = 5.0
"""How long :meth:`TrialProcesses.stop_all` waits after SIGTERM before SIGKILL."""


class SweepStoppedError(Exception):
    """The sweep was told to stop (SIGINT, SIGTERM): no further trial starts."""

    def __init__(self, message: str, signal_number: int = 0) -> None:
        super().__init__(message)
        self.signal_number = signal_number
        """The signal that stopped the sweep (0: none)."""


def _parent_death_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child receive SIGKILL when its parent dies, or None.

    ``libc`` and its ``prctl`` are looked up here, in the parent, so the hook only calls C
    functions between fork and exec. The hook also kills the child at once when the parent died
    before ``prctl`` took effect (the child was already re-parented then).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def die_with_parent() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return die_with_parent


class TrialProcesses:
    """Start trial processes and stop every running one on demand (thread-safe).

    After :meth:`stop_all` no further process starts: :meth:`run` raises
    :class:`SweepStoppedError`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()
        self._stopped = False

    def run(
        self,
        command: Sequence[str],
        output: IO[str],
        env: Mapping[str, str] | None,
        cwd: Path | None,
        keep_open: Sequence[int] = (),
    ) -> int:
        """Run ``command`` to its end with stdout and stderr to ``output``; return its exit code.

        Args:
            command: The program and its arguments.
            output: Open file for the process output.
            env: The environment (None: inherit this one).
            cwd: Working directory (None: this one).
            keep_open: File descriptors the child inherits (the trial folder's lock).
        """
        hook = _parent_death_hook()
        with self._lock:
            if self._stopped:
                raise SweepStoppedError("the sweep is stopping: no new trial starts")
            process = subprocess.Popen(
                list(command),
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                pass_fds=tuple(keep_open),
                preexec_fn=hook,
                start_new_session=hook is None,
            )
            self._running.add(process)
        try:
            return process.wait()
        finally:
            with self._lock:
                self._running.discard(process)

    def stop_all(self) -> int:
        """Terminate every running process (SIGTERM, SIGKILL after a grace period).

        Returns:
            How many processes were running.
        """
        with self._lock:
            self._stopped = True
            running = list(self._running)
        for process in running:
            _signal(process, signal.SIGTERM)
        for process in running:
            try:
                process.wait(timeout=GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                _signal(process, signal.SIGKILL)
        return len(running)


def _signal(process: subprocess.Popen[bytes], number: signal.Signals) -> None:
    """Send ``number`` to the process, and to its process group when it leads one."""
    try:
        if os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, number)
        else:
            process.send_signal(number)
    except ProcessLookupError:
        log.debug("process %d already ended", process.pid)


def raise_on_termination() -> Callable[[], None]:
    """Turn SIGINT and SIGTERM into :class:`SweepStoppedError` in the main thread until undone.

    Only the first signal raises; later ones are ignored, so stopping the trials (which ends with
    SIGKILL after :data:`GRACE_SECONDS`) is not itself interrupted.

    Returns:
        A function restoring the previous handlers (a no-op outside the main thread, where
        handlers cannot be installed).
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def stop(number: int, _frame: object) -> None:
        for ignored in (signal.SIGINT, signal.SIGTERM):
            signal.signal(ignored, signal.SIG_IGN)
        raise SweepStoppedError(f"received {signal.Signals(number).name}", number)

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for number, handler in previous.items():
            signal.signal(number, handler)

    return restore
