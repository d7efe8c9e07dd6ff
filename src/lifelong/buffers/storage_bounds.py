"""Refusing a buffer whose preallocated storage would not fit in this machine's memory.

Buffers preallocate one tensor per field for their whole capacity. A capacity larger than the
stream is allowed (the buffer simply never fills), but one whose storage exceeds the machine's
memory would fail inside the allocator, or be killed by the system later, so it is refused as a
:class:`~lifelong.errors.ConfigError` before anything is allocated (and before the run folder is
created: methods are built before it).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable

import torch

from lifelong.errors import ConfigError

GIB = 2**30


def physical_memory_bytes() -> int | None:
    """The machine's physical memory, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def storage_bytes(capacity: int, fields: Iterable[tuple[tuple[int, ...], torch.dtype]]) -> int:
    """Bytes that ``capacity`` items of the given per-item shapes and dtypes take."""
    per_item = sum(math.prod(shape) * dtype.itemsize for shape, dtype in fields)
    return capacity * per_item


def check_storage_fits(
    capacity: int, fields: Iterable[tuple[tuple[int, ...], torch.dtype]], name: str
) -> None:
    """Refuse a buffer whose storage would exceed this machine's physical memory.

    Args:
        capacity: Items the buffer holds.
        fields: Per-item shape and dtype of each stored tensor.
        name: The config field that sets the capacity, for the message (``buffer_size``).

    Raises:
        ConfigError: naming the field, the storage needed and the memory there is.
    """
    needed = storage_bytes(capacity, fields)
    memory = physical_memory_bytes()
    if memory is not None and needed > memory:
        raise ConfigError(
            f"a buffer of {name}={capacity} needs {needed / GIB:.1f} GiB of preallocated storage, "
            f"more than this machine's {memory / GIB:.1f} GiB of memory: choose a smaller {name}"
        )
