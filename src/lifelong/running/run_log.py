"""``RUN_DIR/run.log``: every log line of a run, the other packages' lines included.

The screen shows lifelong's own lines (one per experience off a terminal); what other packages
say while a run trains (matplotlib's "generated new fontManager" on first use, library warnings)
goes to this file only, and the run ends with one line saying how many warnings it holds.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RUN_LOG = "run.log"
"""The log file of a run directory (appended to when the run is resumed)."""
OWN_LOGGER = "lifelong"

log = logging.getLogger(__name__)


def is_own(record: logging.LogRecord) -> bool:
    """Whether ``record`` comes from lifelong's loggers (not another package's)."""
    return record.name == OWN_LOGGER or record.name.startswith(OWN_LOGGER + ".")


class _FileHandler(logging.FileHandler):
    """Appends records to the run log and counts the other packages' warnings."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, mode="a", encoding="utf-8", delay=True)
        self.foreign_warnings = 0
        self.setLevel(logging.INFO)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        """Write ``record``; count it when it is another package's warning.

        wandb's INFO lines are left out: wandb writes them to its own ``debug.log``.
        """
        if record.name.split(".")[0] == "wandb" and record.levelno < logging.WARNING:
            return
        if record.levelno >= logging.WARNING and not is_own(record):
            self.foreign_warnings += 1
        super().emit(record)


@contextmanager
def run_log(run_dir: Path) -> Iterator[None]:
    """Log every INFO record and Python warning of the block to ``RUN_DIR/run.log``.

    Python warnings become log records (``py.warnings``) for the block. When nothing else logs
    to the screen (the Python API without logging set up), lifelong's own warnings still reach
    stderr, as Python's last-resort handler would show them.
    """
    root = logging.getLogger()
    handler = _FileHandler(run_dir / RUN_LOG)
    screen = None
    if not root.handlers:
        screen = logging.StreamHandler()
        screen.setLevel(logging.WARNING)
        screen.addFilter(is_own)
        root.addHandler(screen)
    level = root.level
    shown_by = warnings.showwarning
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO))
    logging.captureWarnings(True)
    try:
        yield
    finally:
        if warnings.showwarning is not shown_by:  # captured here, not by the caller already
            logging.captureWarnings(False)
        root.setLevel(level)
        root.removeHandler(handler)
        handler.close()
        if screen is not None:
            root.removeHandler(screen)
        if handler.foreign_warnings:
            log.info(
                "%d warning(s) of other packages are in %s",
                handler.foreign_warnings,
                run_dir / RUN_LOG,
            )
