"""User-facing errors: one clear line naming the problem and the fix.

The command line turns every :class:`UserError` into that line on stderr and exit code 2, without a
traceback. Library callers can catch the specific subclasses.
"""

from __future__ import annotations

import reprlib


class UserError(Exception):
    """Bad input from the user: the message names the problem and how to fix it."""


class ConfigError(UserError):
    """An invalid configuration value, an unknown key or an incompatible combination."""


class DataError(UserError):
    """A dataset is missing, corrupt or truncated."""


class NonFiniteLossError(UserError):
    """Training produced a NaN or infinite loss; what was saved stays as it was."""


class RunDirError(UserError):
    """The output folder cannot be written, or a run to resume is incomplete."""


class OutputError(UserError):
    """An optional output (Weights & Biases, the PDF report) could not be written."""


class UserInterruptError(Exception):
    """The user stopped a command (Ctrl-C); the message says what was saved and how to go on."""


QUOTE_CHARS = 80
"""The most characters of a user's value that an error message quotes."""

_QUOTER = reprlib.Repr()
_QUOTER.maxlevel = 3
_QUOTER.maxstring = QUOTE_CHARS
_QUOTER.maxother = QUOTE_CHARS
_QUOTER.maxlong = QUOTE_CHARS


def quoted(value: object) -> str:
    """``repr(value)`` cut to :data:`QUOTE_CHARS` characters, in time bounded by that length.

    A value read from a user's file can be huge (a YAML alias bomb expands to billions of
    items); :mod:`reprlib` stops at a few items per level and three levels, so quoting it in an
    error message costs no more than quoting a short one.
    """
    text = _QUOTER.repr(value)
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 3] + "..."


def one_line(text: str, limit: int = 300) -> str:
    """``text`` (an error message of another library) as one line of at most ``limit`` chars."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
