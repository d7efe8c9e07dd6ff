"""A fixed-capacity buffer of tensors with reservoir insertion."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, cast

import torch
from torch import nn

from lifelong.buffers.reservoir import Reservoir
from lifelong.buffers.storage_bounds import check_storage_fits
from lifelong.errors import ConfigError

FieldSpec = tuple[tuple[int, ...], torch.dtype]
DRAW_BLOCK = 256
"""Index rows drawn at once by :meth:`TensorBuffer.sample` once the buffer is full."""
FEW_ITEMS = 4
"""Up to this many kept items per batch are written row by row instead of by index tensors."""
TOPK_MAX_SIZE = 1024
"""Up to this many stored items, index rows are the top-k of random keys; above, Python draws."""


class TensorBuffer(nn.Module):
    """Preallocated tensors, one per field, filled by reservoir sampling.

    Fields are registered as module buffers, so the contents travel with the owning method's
    ``state_dict``; the reservoir's position and both generators travel as extra state.

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
        check_storage_fits(capacity, fields.values(), "buffer_size")
        self.capacity = capacity
        self.field_names = tuple(fields)
        for name, (shape, dtype) in fields.items():
            self.register_buffer(name, torch.zeros((capacity, *shape), dtype=dtype))
        seeds = torch.randint(0, 2**62, (2,), generator=generator).tolist()
        self.reservoir = Reservoir(capacity, random.Random(seeds[0]))
        self._index_generator = torch.Generator().manual_seed(seeds[1])
        self._rows: list[torch.Tensor] = []  # pending index rows, handed out last first

    @property
    def num_seen(self) -> int:
        """Items offered to the buffer so far."""
        return self.reservoir.num_seen

    def __len__(self) -> int:
        return min(self.reservoir.num_seen, self.capacity)

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
        kept = self.reservoir.slots(batch_size)
        if not kept:
            return
        # slot -> item; a later item drawing the same slot replaces the earlier one, as in the
        # sequential algorithm, so the scatter below never sees a repeated index.
        chosen = {slot: item for item, slot in kept}
        with torch.no_grad():
            if len(chosen) <= FEW_ITEMS:
                self._write_each(items, chosen)
            else:
                self._write(items, torch.tensor(list(chosen)), torch.tensor(list(chosen.values())))

    def _write_each(self, items: Mapping[str, torch.Tensor | int], chosen: dict[int, int]) -> None:
        """Copy items into slots one row at a time (fewer tensor operations for a few items)."""
        for name in self.field_names:
            store = cast(torch.Tensor, self._buffers[name])
            value = items[name]
            for slot, item in chosen.items():
                store[slot] = value if isinstance(value, int) else value[item]

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
        return self._gather(self._draw(size, min(n, size)), fields)

    def sample_weighted(
        self, weights: torch.Tensor, n: int, fields: tuple[str, ...] | None = None
    ) -> dict[str, torch.Tensor]:
        """Draw ``n`` distinct stored items with probabilities proportional to ``weights``.

        Successive draws without replacement, as ``torch.multinomial``: the first item is drawn
        with probability ``weights[i] / sum(weights)``, each next one from the rest.

        Args:
            weights: Non-negative weights (len(self),) of the stored items.
            n: Number of items wanted (at most the number with positive weight).
            fields: Which fields to return (all when None).
        """
        if len(weights) != len(self) or len(self) == 0:
            raise ValueError(f"need {len(self)} weights for a non-empty buffer, got {len(weights)}")
        available = int((weights > 0).sum())
        index = torch.multinomial(
            weights.detach().float().cpu(),
            min(n, available),
            replacement=False,
            generator=self._index_generator,
        )
        return self._gather(index.to(self._device), fields)

    def _gather(
        self, index: torch.Tensor, fields: tuple[str, ...] | None
    ) -> dict[str, torch.Tensor]:
        """Rows ``index`` of each requested field (all when None)."""
        stores = self._buffers
        return {
            name: torch.index_select(cast(torch.Tensor, stores[name]), 0, index)
            for name in fields or self.field_names
        }

    @property
    def _device(self) -> torch.device:
        """Where the stored tensors live."""
        return cast(torch.Tensor, self._buffers[self.field_names[0]]).device

    def _draw(self, size: int, n: int) -> torch.Tensor:
        """``n`` distinct indices below ``size``, on the buffer's device.

        Once the buffer is full its size no longer changes, so index rows are drawn
        ``DRAW_BLOCK`` at a time and handed out one per call: the same distribution (each row
        uniform without replacement, rows independent) for one tensor operation per block
        instead of several per training step.
        """
        device = self._device
        generator = self._index_generator
        if size < self.capacity:
            return torch.randperm(size, generator=generator)[:n].to(device)
        if not self._rows or self._rows[-1].shape[0] != n:
            if size <= TOPK_MAX_SIZE:
                keys = torch.rand(DRAW_BLOCK, size, generator=generator)
                block = keys.topk(n, dim=1, sorted=False).indices
            else:
                rng = random.Random(int(torch.randint(0, 2**62, (1,), generator=generator)))
                block = torch.tensor([rng.sample(range(size), n) for _ in range(DRAW_BLOCK)])
            self._rows = list(block.to(device).unbind(0))
        return self._rows.pop()

    def get_extra_state(self) -> dict[str, Any]:
        """The reservoir's position, both generators and pending index rows, for checkpoints."""
        rows = torch.stack(self._rows) if self._rows else None
        return {
            "reservoir": self.reservoir.state(),
            "index_generator": self._index_generator.get_state(),
            "rows": rows,
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_extra_state` returned."""
        self.reservoir.load_state(state["reservoir"])
        self._index_generator.set_state(state["index_generator"])
        rows = state["rows"]
        self._rows = [] if rows is None else list(rows.to(self._device).unbind(0))
