"""What an epoch-counted schedule of a method needs from the length of an experience."""

from __future__ import annotations

from typing import NamedTuple


class EpochNeed(NamedTuple):
    """An epoch-counted schedule's demand on the length of an experience."""

    epochs: int
    """Epochs (passes over the data) the experience needs."""
    setting: str
    """The setting that counts them, as ``method.field=value``."""
    effect: str
    """What happens only from the last of those epochs on."""
