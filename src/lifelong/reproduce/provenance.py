"""Where and when a measurement was taken: the date, the machine and the commit."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

SOURCE = Path(__file__).resolve().parent


def today() -> str:
    """The local date, ``YYYY-MM-DD``."""
    return time.strftime("%Y-%m-%d")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: str) -> str:
    """CPU model and cores, the GPU when ``device`` is CUDA, Python and torch versions."""
    import torch

    text = f"{os.cpu_count()}-core {_cpu_model()}"
    if device.startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index or 0
        text += f", {torch.cuda.get_device_name(index)}"
    return f"{text}, Python {platform.python_version()}, torch {torch.__version__}"


def commit() -> str:
    """The commit of the source tree the library runs from (``+dirty`` with tracked changes).

    ``unknown`` when the library is not run from a git checkout or git is missing.
    """

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(SOURCE), *args], capture_output=True, text=True, timeout=30
        )
        if done.returncode != 0:
            raise OSError(done.stderr.strip())
        return done.stdout.strip()

    try:
        head = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")
