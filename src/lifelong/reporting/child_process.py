"""Helper processes that draw and log a run's optional outputs on a spare core.

A run's optional outputs (Weights & Biases, the PDF report) mostly cost imports and drawing.
Started before the run loads its data, a helper process does its imports while the run trains
and its work while the run writes its other outputs, instead of adding both to the run's wall
time. This module holds both ends of the pipe and imports only the standard library (and
lifelong's errors), so a helper that needs neither torch nor matplotlib does not load them.

Protocol: the parent writes JSON arrays ``[kind, *arguments]``, one per line (paths as strings;
nothing is unpickled), to the helper's standard input, and the helper answers on its standard
output with lines: a word (``ready``, ``done``) or ``error: MESSAGE``, after which it exits. The
end of its input tells the helper that the run failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import Any, BinaryIO, TextIO

from lifelong.errors import OutputError

HELPER_NICENESS = 5
"""How much lower a helper's CPU priority is than the run's (the run goes first)."""
CLOSE_SECONDS = 60.0
"""How long a parent waits for a helper to exit once its input is closed, before killing it."""


class ChildProcess:
    """The parent's end: a helper ``python -m MODULE`` fed with JSON messages.

    Args:
        module: The helper's module (it calls :func:`serve`).
        what: What the helper does, for error messages (e.g. ``"the Weights & Biases process"``).
    """

    def __init__(self, module: str, what: str) -> None:
        self.what = what
        # the helper's stderr, for its last line if it crashes; closed in close()
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115
        self._process = subprocess.Popen(
            [sys.executable, "-m", module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._errors,
        )
        self._changed = threading.Condition()
        self._words: list[str] = []
        self._failure: str | None = None
        self._exited = False
        threading.Thread(target=self._read_answers, daemon=True).start()

    def _read_answers(self) -> None:
        assert self._process.stdout is not None
        for raw in self._process.stdout:
            answer = raw.decode(errors="replace").strip()
            with self._changed:
                if answer.startswith("error: "):
                    self._failure = answer.removeprefix("error: ")
                else:  # a word, or a package's own output line (never awaited)
                    self._words.append(answer)
                self._changed.notify_all()
        with self._changed:
            self._exited = True
            self._changed.notify_all()

    def send(self, *message: Any) -> None:
        """Send one message; raise the helper's failure (one line) if it has failed."""
        self.raise_failure()
        assert self._process.stdin is not None
        try:
            line = json.dumps(message, default=str) + "\n"  # Path -> str
            self._process.stdin.write(line.encode())
            self._process.stdin.flush()
        except OSError:  # BrokenPipeError: the helper is gone; say why
            self.wait_for("")

    def raise_failure(self) -> None:
        """Raise :class:`OutputError` with the helper's failure, if it has reported one."""
        with self._changed:
            if self._failure is not None:
                raise OutputError(self._failure)

    def wait_for(self, answer: str) -> None:
        """Block until the helper answers ``answer``; raise its failure instead.

        A helper that exits without the answer has failed: its last line of stderr says why.
        """
        with self._changed:
            while True:
                if self._failure is not None:
                    raise OutputError(self._failure)
                if answer and answer in self._words:
                    self._words.remove(answer)
                    return
                if self._exited:
                    self._failure = f"{self.what} stopped: {self._last_error_line()}"
                else:
                    self._changed.wait()

    def _last_error_line(self) -> str:
        self._process.wait()
        self._errors.seek(0)
        lines = self._errors.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"exit status {self._process.returncode}"

    def close(self, wait: bool = True) -> None:
        """Close the helper's input (a helper that has not finished takes it as a failure).

        Args:
            wait: Wait for the helper to exit (killing it after :data:`CLOSE_SECONDS`). A helper
                that has answered everything it was asked has written its outputs: the run
                need not wait for its interpreter to shut down.
        """
        assert self._process.stdin is not None
        if self._process.stdin.closed:  # closed before: nothing more to do
            return
        with contextlib.suppress(OSError):
            self._process.stdin.close()
        if wait and self._process.poll() is None:
            try:
                self._process.wait(timeout=CLOSE_SECONDS)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._errors.close()

    def kill(self) -> None:
        """Stop the helper at once (for tests of a helper lost mid-run)."""
        self._process.kill()
        self._process.wait()


def lower_priority() -> None:
    """Make this helper process yield the CPU to the run (first thing a helper does)."""
    if hasattr(os, "nice"):  # POSIX
        os.nice(HELPER_NICENESS)


def serve(handle: Callable[[tuple[Any, ...]], str | None], on_end: Callable[[], None]) -> None:
    """The helper's end: answer each message with ``handle``'s word until it returns ``"done"``.

    ``handle`` returns the line to answer (None: no answer). At the end of the input,
    ``on_end`` runs (the parent failed). Any exception is answered as ``error: FIRST LINE``.
    Ctrl-C is left to the parent, which then closes the helper's input.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inbox: BinaryIO = sys.stdin.buffer
    outbox: TextIO = sys.stdout
    try:
        while True:
            line = inbox.readline()
            if not line:
                on_end()
                return
            message = tuple(json.loads(line))
            answer = handle(message)
            if answer is not None:
                outbox.write(answer + "\n")
                outbox.flush()
            if answer == "done":
                return
    except Exception as err:  # every failure becomes the parent's one line
        outbox.write(f"error: {first_line(err)}\n")
        outbox.flush()


def first_line(err: BaseException) -> str:
    """The first line of an exception's message, after its type's name unless it says itself.

    Messages written for users (``RuntimeError``) and the system's (``OSError``) stand alone.
    """
    text = str(err).strip()
    line = text.splitlines()[0] if text else ""
    if isinstance(err, RuntimeError | OSError) and line:
        return line
    return f"{type(err).__name__}: {line}" if line else type(err).__name__
