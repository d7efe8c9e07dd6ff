"""SARL and its variants: the algorithm in :mod:`.method`, its settings in :mod:`.config`."""

from lifelong.methods.sarl.config import SARLConfig
from lifelong.methods.sarl.method import SARL
from lifelong.methods.sarl.variants import GELU_BACKBONES

__all__ = ["GELU_BACKBONES", "SARL", "SARLConfig"]
