"""AR1* and CWR*: the algorithm in :mod:`.method`, its settings in :mod:`.config`."""

from lifelong.methods.ar1_star.config import AR1StarConfig
from lifelong.methods.ar1_star.method import AR1Star

__all__ = ["AR1Star", "AR1StarConfig"]
