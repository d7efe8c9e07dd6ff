"""User-facing errors: one clear line naming the problem and the fix.

The command line turns every :class:`UserError` into that line on stderr and exit code 2, without a
traceback. Library callers can catch the specific subclasses.
"""

from __future__ import annotations


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


class UserInterruptError(Exception):
    """The user stopped a command (Ctrl-C); the message says what was saved and how to go on."""
