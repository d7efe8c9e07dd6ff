"""lifelong: continual learning in PyTorch with one loop, one data model and one command line.

``lifelong.Experiment`` (see :mod:`lifelong.running.experiment`) is the Python API; it is
imported on first use, so ``import lifelong`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lifelong.running.experiment import Experiment

__version__ = "0.1.0"
__all__ = ["Experiment", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Experiment":
        from lifelong.running.experiment import Experiment

        return Experiment
    raise AttributeError(f"module 'lifelong' has no attribute {name!r}")
