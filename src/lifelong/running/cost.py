"""What a run costs: peak process memory (RSS) and, on a GPU, peak device memory.

Wall seconds and image counts are measured by the loop (:func:`lifelong.running.train.fit`);
this module reads the memory peaks, which the operating system and the CUDA allocator keep.
"""

from __future__ import annotations

import resource
import sys
from dataclasses import dataclass

import torch

MIB = 1024 * 1024


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (``getrusage``'s ``ru_maxrss``).

    Linux reports kibibytes, macOS bytes.
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MIB if sys.platform == "darwin" else peak / 1024


def peak_device_mib(device: torch.device) -> float | None:
    """Peak memory the CUDA allocator has handed out on ``device`` so far, in MiB; None on CPU."""
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / MIB


@dataclass(frozen=True)
class ExperienceCost:
    """What training and evaluating one experience cost.

    Attributes:
        train_seconds: Wall seconds of its training (hooks included).
        eval_seconds: Wall seconds of the evaluation after it.
        images: Training images fed to ``observe``.
        peak_rss_mib: Peak process memory so far (MiB).
        peak_device_mib: Peak CUDA memory so far (MiB); None on the CPU.
    """

    train_seconds: float
    eval_seconds: float
    images: int
    peak_rss_mib: float
    peak_device_mib: float | None
