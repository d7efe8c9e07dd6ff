"""A fixed-capacity buffer of tensors with reservoir insertion."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, cast

import torch
from torch import nn

from lifelong.buffers.reservoir import reservoir_slots
from lifelong.errors import ConfigError

FieldSpec = tuple[tuple[int, ...], torch.dtype]
DRAW_BLOCK = 256
"""Index rows drawn at once by :meth:`TensorBuffer.sample` once the buffer is full."""


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
        self._rng = random.Random(seed)
        self._block: torch.Tensor | None = None
        self._block_next = 0

    def __len__(self) -> int:
        return min(self.num_seen, self.capacity)

    def field(self, name: str) -> torch.Tensor:
        """The stored tensor of ``name`` (only the first ``len(self)`` rows are meaningful)."""
        value: torch.Tensor = getattr(self, name)
        return value

    def add(self, items: Mapping[str, torch.Tensor | int]) -> None:
        """Offer a batch of items; reservoir sampling decides which are stored.

        Args:
            items: One value per field: a tensor whose first dimension is the batch size, or
                an int shared by the whole batch (such as the experience id).
        """
        batch_size = 0
        for value in items.values():
            if isinstance(value, torch.Tensor):
                batch_size = value.shape[0]
                break
        slots = reservoir_slots(self.num_seen, batch_size, self.capacity, self._rng)
        self.num_seen += batch_size
        # slot -> item; a later item drawing the same slot replaces the earlier one, as in the
        # sequential algorithm, so the scatter below never sees a repeated index.
        chosen = {slot: item for item, slot in enumerate(slots) if slot >= 0}
        if not chosen:
            return
        with torch.no_grad():
            self._write(items, torch.tensor(list(chosen)), torch.tensor(list(chosen.values())))

    def _write(
        self, items: Mapping[str, torch.Tensor | int], target: torch.Tensor, source: torch.Tensor
    ) -> None:
        """Copy item rows ``source`` of ``items`` into slots ``target``."""
        for name in self.field_names:
            store = self._buffers[name]
            assert store is not None
            value = items[name]
            if isinstance(value, int):
                store[target.to(store.device)] = value
            else:
                rows = value.index_select(0, source.to(value.device)).to(store.dtype)
                store.index_copy_(0, target.to(store.device), rows)

    def sample(self, n: int, fields: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        """Draw ``min(n, len(self))`` distinct stored items uniformly at random.

        Args:
            n: Number of items wanted.
            fields: Which fields to return (all when None).
        """
        size = len(self)
        if size == 0:
            raise RuntimeError("sample() on an empty buffer")
        index = self._draw(size, min(n, size))
        stores = self._buffers
        return {
            name: torch.index_select(cast(torch.Tensor, stores[name]), 0, index)
            for name in fields or self.field_names
        }

    def _draw(self, size: int, n: int) -> torch.Tensor:
        """``n`` distinct indices below ``size``, on the buffer's device.

        Once the buffer is full its size no longer changes, so index rows are drawn
        ``DRAW_BLOCK`` at a time and handed out one per call: the same distribution (each row
        uniform without replacement, rows independent) for one tensor creation instead of one
        per training step.
        """
        device = cast(torch.Tensor, self._buffers[self.field_names[0]]).device
        if size < self.capacity:
            return torch.tensor(self._rng.sample(range(size), n), device=device)
        if self._block is None or self._block.shape[1] != n or self._block_next == len(self._block):
            rows = [self._rng.sample(range(size), n) for _ in range(DRAW_BLOCK)]
            self._block = torch.tensor(rows, device=device)
            self._block_next = 0
        row = self._block[self._block_next]
        self._block_next += 1
        return row

    def get_extra_state(self) -> dict[str, Any]:
        """The insertion counter, the generator state and pending index rows, for checkpoints."""
        return {
            "num_seen": self.num_seen,
            "rng": self._rng.getstate(),
            "block": self._block,
            "block_next": self._block_next,
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_extra_state` returned."""
        self.num_seen = int(state["num_seen"])
        self._rng.setstate(state["rng"])
        block = state["block"]
        device = cast(torch.Tensor, self._buffers[self.field_names[0]]).device
        self._block = None if block is None else block.to(device)
        self._block_next = int(state["block_next"])
