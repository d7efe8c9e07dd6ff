"""GDumb's greedy class-balanced sampler (Prabhu et al., ECCV 2020) and the buffer it fills."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any, cast

import torch
from torch import nn

from lifelong.buffers.storage_bounds import check_storage_fits
from lifelong.buffers.tensor_buffer import FieldSpec
from lifelong.errors import ConfigError

FREE_SLOT = -1
"""Decision of :func:`greedy_class_balanced`: store the example in a free slot."""


def greedy_class_balanced(counts: Mapping[int, int], label: int, capacity: int) -> int | None:
    """GDumb's sampler: what happens to one incoming example of class ``label``.

    While the memory has room the example is stored. Once it is full, with ``Y`` the classes
    in memory plus ``label``, the example is stored only if its class holds fewer than
    ``capacity / |Y|`` examples (the paper's ``k / |Y_t|``), and an example of the class with
    the most stored examples (the lowest label among ties) makes room for it.

    Args:
        counts: Stored examples per class (classes absent or at 0 hold none).
        label: The incoming example's class.
        capacity: Memory size ``k``.

    Returns:
        None to drop the example, :data:`FREE_SLOT` to store it in a free slot, or the class
        that loses one (random) example to make room for it.
    """
    if sum(counts.values()) < capacity:
        return FREE_SLOT
    classes = {c for c, n in counts.items() if n > 0} | {label}
    if counts.get(label, 0) * len(classes) >= capacity:
        return None
    return max(sorted(c for c, n in counts.items() if n > 0), key=lambda c: counts[c])


class ClassBalancedBuffer(nn.Module):
    """Preallocated tensors, one per field, filled by :func:`greedy_class_balanced`.

    The first ``len(self)`` rows hold the stored items (an evicted item's row is overwritten in
    place). The field ``y`` (int64 labels) is required. Fields and the count of offered items
    are module buffers; the eviction generator travels as extra state.

    Args:
        capacity: Maximum number of stored items.
        fields: Name → (per-item shape, dtype), as for
            :class:`~lifelong.buffers.tensor_buffer.TensorBuffer`.
        generator: Source of the seed for the buffer's eviction generator.
    """

    seen: torch.Tensor

    def __init__(
        self, capacity: int, fields: Mapping[str, FieldSpec], generator: torch.Generator
    ) -> None:
        super().__init__()
        if capacity <= 0:
            raise ConfigError(f"buffer_size must be positive, got {capacity}")
        if "y" not in fields:
            raise ValueError("a class-balanced buffer needs a 'y' field of labels")
        check_storage_fits(capacity, fields.values(), "buffer_size")
        self.capacity = capacity
        self.field_names = tuple(fields)
        for name, (shape, dtype) in fields.items():
            self.register_buffer(name, torch.zeros((capacity, *shape), dtype=dtype))
        self.register_buffer("seen", torch.zeros((), dtype=torch.int64))
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        self._generator = torch.Generator().manual_seed(seed)
        self._size = 0

    @property
    def num_seen(self) -> int:
        """Items offered to the buffer so far."""
        return int(self.seen)

    def __len__(self) -> int:
        return self._size

    def field(self, name: str) -> torch.Tensor:
        """The stored tensor of ``name`` (only the first ``len(self)`` rows are meaningful)."""
        value: torch.Tensor = getattr(self, name)
        return value

    def class_counts(self) -> Counter[int]:
        """Stored items per class."""
        return Counter(self.field("y")[: self._size].tolist())

    def add(self, items: Mapping[str, torch.Tensor | int]) -> None:
        """Offer a batch of items one by one to the greedy class-balanced sampler.

        Args:
            items: One value per field: a tensor whose first dimension is the batch size, or
                an int shared by the whole batch (such as the experience id).
        """
        labels = cast(torch.Tensor, items["y"]).tolist()
        stored = self.field("y")[: self._size].tolist()
        counts = Counter(stored)
        chosen: dict[int, int] = {}  # slot -> item; a later item in the same slot wins
        for item, label in enumerate(labels):
            decision = greedy_class_balanced(counts, label, self.capacity)
            if decision is None:
                continue
            if decision == FREE_SLOT:
                slot = len(stored)
                stored.append(label)
            else:
                rows = [s for s, c in enumerate(stored) if c == decision]
                slot = rows[int(torch.randint(len(rows), (1,), generator=self._generator))]
                counts[decision] -= 1
                stored[slot] = label
            counts[label] += 1
            chosen[slot] = item
        self.seen += len(labels)
        if chosen:
            self._write(items, chosen)
        self._size = len(stored)

    def _write(self, items: Mapping[str, torch.Tensor | int], chosen: dict[int, int]) -> None:
        """Copy item rows ``chosen.values()`` of ``items`` into slots ``chosen.keys()``."""
        with torch.no_grad():
            for name in self.field_names:
                store = self.field(name)
                target = torch.tensor(list(chosen), device=store.device)
                value = items[name]
                if isinstance(value, int):
                    store[target] = value
                    continue
                source = torch.tensor(list(chosen.values()), device=value.device)
                store.index_copy_(0, target, value.index_select(0, source).to(store.dtype))

    def contents(self) -> dict[str, torch.Tensor]:
        """The stored items: the first ``len(self)`` rows of every field."""
        return {name: self.field(name)[: self._size] for name in self.field_names}

    def get_extra_state(self) -> dict[str, Any]:
        """The number of stored items and the eviction generator, for checkpoints."""
        return {"size": self._size, "generator": self._generator.get_state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_extra_state` returned."""
        self._size = int(state["size"])
        self._generator.set_state(state["generator"])
