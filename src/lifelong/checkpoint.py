"""Atomic file writes and checkpoints that load without executing code.

Every whole file lifelong writes (configs, results, checkpoints, plots, the PDF, the trimmed step
log on resume) goes through :func:`atomic_write_bytes`: a temporary file in the same folder,
``fsync``, then a rename, so a reader or a kill never leaves half a file. The step log
``metrics.jsonl`` is the one file that is appended to; on resume it is cut back to the checkpoint.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from lifelong.errors import RunDirError, one_line


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_current_umask()
"""The mode ``open()`` would give a new file (mkstemp's own is 0600 whatever the umask)."""


def temporary_files(path: Path) -> list[Path]:
    """Temporaries that an interrupted :func:`atomic_write_bytes` of ``path`` left behind."""
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename; readers never see half.

    Temporaries of ``path`` left by a writer that was killed are removed first (one process
    writes a run folder at a time), and the file gets the umask's mode, as ``open()`` would.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in temporary_files(path):
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Atomic text write (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def check_writable_file(path: Path, fix: str) -> None:
    """Fail before any work when ``path`` could not be written later; create nothing.

    Args:
        path: The file a command will write when it finishes.
        fix: How the user chooses another path, e.g. ``"choose another with --out"``.

    Raises:
        RunDirError: if ``path`` is a folder, a name in it is too long for the file system, or
            its nearest existing ancestor is a file or not writable.
    """
    if any(len(part.encode("utf-8")) > 255 for part in path.parts):
        raise RunDirError(f"cannot write {path}: a name in it is over 255 bytes long; {fix}")
    if path.is_dir():
        raise RunDirError(f"cannot write {path}: it is a folder; {fix}")
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise RunDirError(f"cannot write {path}: {existing} is a file; {fix}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunDirError(f"cannot write {path}: {existing} is not writable; {fix}")


def save_figure(figure: Any, path: Path, dpi: int, tight: bool = False) -> Path:
    """Render a matplotlib figure into ``path`` atomically (its format from the suffix)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=path.suffix.lstrip(".") or "png", dpi=dpi,
                   bbox_inches="tight" if tight else None)  # fmt: skip
    atomic_write_bytes(path, buffer.getvalue())
    return path


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Serialise ``payload`` (tensors, numbers, strings, containers) atomically."""
    buffer = io.BytesIO()
    import torch  # loaded when a checkpoint is written, not by the command line's start

    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code runs).

    Raises:
        RunDirError: if the file is missing or unreadable.
    """
    if not path.exists():
        raise RunDirError(
            f"no checkpoint at {path}: the run stopped before its first checkpoint; "
            f"`lifelong run --resume {path.parent}` starts it again"
        )
    import torch

    try:
        payload: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise RunDirError(
            f"cannot read checkpoint {path} ({checkpoint_problem(err)}); start the run again"
        ) from err
    return payload


REFUSED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
"""How ``torch.load(weights_only=True)`` names a Python object it refuses to load."""


def checkpoint_problem(err: Exception) -> str:
    """One line saying why ``torch.load`` refused or failed to read a checkpoint.

    ``torch.load``'s messages run over several lines (the refusal of ``weights_only=True``
    explains how to load the file unsafely); this keeps the problem, not the advice.
    """
    refused = REFUSED_GLOBAL.search(str(err))
    if refused is not None:
        return (
            f"it holds a Python object of type {refused.group(1)}, which lifelong does not load: "
            "it was not written by lifelong"
        )
    lines = [line for line in str(err).splitlines() if line.strip()]
    return one_line(lines[0] if lines else type(err).__name__, 200)
