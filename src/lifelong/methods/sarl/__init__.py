"""SARL and its variants: the algorithm in :mod:`.method`, its settings in :mod:`.config`."""

from lifelong.methods.sarl.config import SARLConfig
from lifelong.methods.sarl.method import SARL

__all__ = ["SARL", "SARLConfig"]
