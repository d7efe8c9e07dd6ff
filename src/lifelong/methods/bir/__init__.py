"""Brain-Inspired Replay: the algorithm in :mod:`.method`, settings and network in :mod:`.config`.

Where the library departs from the reference code is said in :class:`BIR`'s docstring.
"""

from lifelong.methods.bir.config import BIRConfig, build_net
from lifelong.methods.bir.method import BIR

__all__ = ["BIR", "BIRConfig", "build_net"]
