"""The probes and probing modes by name (no torch here: the command line lists them)."""

from __future__ import annotations

from typing import Literal

ProbeKind = Literal["ridge", "knn", "linear"]
PROBE_KINDS: tuple[ProbeKind, ...] = ("ridge", "knn", "linear")
"""Ridge regression, k-nearest neighbours, and a linear softmax classifier."""
PROBING_MODES = ("separate", "joint")
"""``separate``: a probe per experience on its own data; ``joint``: one on all of it."""
