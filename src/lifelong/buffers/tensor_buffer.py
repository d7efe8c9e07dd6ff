"""A fixed-capacity buffer of tensors with reservoir insertion."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from lifelong.buffers.reservoir import reservoir_slots
from lifelong.errors import ConfigError

FieldSpec = tuple[tuple[int, ...], torch.dtype]


class TensorBuffer(nn.Module):
    """Preallocated tensors, one per field, filled by reservoir sampling.

    Fields are registered as module buffers, so the contents travel with the owning method's
    ``state_dict``; the insertion counter and the sampling generator travel as extra state.

    Args:
        capacity: Maximum number of stored items.
        fields: Name → (per-item shape, dtype), e.g. ``{"x": ((1, 28, 28), torch.uint8)}``.
        generator: Source of the seed for the buffer's own sampling generator.
    """

    def __init__(
        self, capacity: int, fields: Mapping[str, FieldSpec], generator: torch.Generator
    ) -> None:
        super().__init__()
        if capacity <= 0:
            raise ConfigError(f"buffer_size must be positive, got {capacity}")
        self.capacity = capacity
        self.field_names = tuple(fields)
        for name, (shape, dtype) in fields.items():
            self.register_buffer(name, torch.zeros((capacity, *shape), dtype=dtype))
        self.num_seen = 0
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return min(self.num_seen, self.capacity)

    def field(self, name: str) -> torch.Tensor:
        """The stored tensor of ``name`` (only the first ``len(self)`` rows are meaningful)."""
        value: torch.Tensor = getattr(self, name)
        return value

    @torch.no_grad()
    def add(self, items: Mapping[str, torch.Tensor]) -> None:
        """Offer a batch of items; reservoir sampling decides which are stored.

        Args:
            items: One tensor per field, all with the same first dimension.
        """
        batch_size = next(iter(items.values())).shape[0]
        slots = reservoir_slots(self.num_seen, batch_size, self.capacity, self._rng)
        self.num_seen += batch_size
        keep = np.flatnonzero(slots >= 0)
        if keep.size == 0:
            return
        if keep.size > 1:
            # When two items draw one slot the later wins, as in the sequential algorithm;
            # drop the earlier one so the scatter below has no repeated index (undefined on GPU).
            _, last_from_end = np.unique(slots[keep][::-1], return_index=True)
            keep = np.sort(keep[keep.size - 1 - last_from_end])
        target = torch.from_numpy(slots[keep])
        source = torch.from_numpy(keep)
        for name in self.field_names:
            store = self.field(name)
            store[target.to(store.device)] = items[name][source.to(store.device)].to(store.dtype)

    def sample(self, n: int, fields: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        """Draw ``min(n, len(self))`` distinct stored items uniformly at random.

        Args:
            n: Number of items wanted.
            fields: Which fields to return (all when None).
        """
        size = len(self)
        if size == 0:
            raise RuntimeError("sample() on an empty buffer")
        index = torch.from_numpy(self._rng.choice(size, min(n, size), replace=False))
        index = index.to(self.field(self.field_names[0]).device)
        return {name: self.field(name)[index] for name in fields or self.field_names}

    def get_extra_state(self) -> dict[str, Any]:
        """The insertion counter and the generator state, for checkpoints."""
        return {"num_seen": self.num_seen, "rng": self._rng.bit_generator.state}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_extra_state` returned."""
        self.num_seen = int(state["num_seen"])
        self._rng.bit_generator.state = state["rng"]
