"""X-DER and its variants: the algorithm in :mod:`.method`, its settings in :mod:`.config`."""

from lifelong.methods.xder.config import XDERConfig
from lifelong.methods.xder.method import XDER

__all__ = ["XDER", "XDERConfig"]
