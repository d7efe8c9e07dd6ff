"""X-DER's memory: inputs, labels and logits kept class-balanced, rewritten in place."""

from __future__ import annotations

import random
from typing import Any

import torch
from torch import nn

from lifelong.buffers.reservoir import Reservoir
from lifelong.buffers.storage_bounds import check_storage_fits


class LogitMemory(nn.Module):
    """Fixed-capacity storage of (input, label, logits), filled in slots ``0 .. len − 1``.

    X-DER fills it at the end of each experience (:meth:`keep_per_class`, :meth:`append`) and
    rewrites stored logits in place (:attr:`logits` is writable); ``xder_ce`` also offers the
    batches of the first experience by reservoir sampling (:meth:`offer`). Every tensor is a
    registered buffer and the reservoir's state travels as extra state, for checkpoints.

    Args:
        capacity: Number of slots.
        image_shape: Shape (C, H, W) of one input.
        num_classes: Width of the stored logits.
        stored_dtype: uint8 (the stream augments) or float32 (normalised inputs).
        generator: Source of the reservoir's seed.
    """

    x: torch.Tensor
    y: torch.Tensor
    logits: torch.Tensor
    counter: torch.Tensor
    size: torch.Tensor

    def __init__(
        self,
        capacity: int,
        image_shape: tuple[int, int, int],
        num_classes: int,
        stored_dtype: torch.dtype,
        generator: torch.Generator,
    ) -> None:
        super().__init__()
        fields = [(image_shape, stored_dtype), ((num_classes,), torch.float32)]
        check_storage_fits(capacity, fields, "buffer_size")
        self.capacity = capacity
        self.register_buffer("x", torch.zeros((capacity, *image_shape), dtype=stored_dtype))
        self.register_buffer("y", torch.full((capacity,), -1, dtype=torch.int64))
        self.register_buffer("logits", torch.zeros(capacity, num_classes))
        self.register_buffer("counter", torch.zeros(capacity))
        self.register_buffer("size", torch.zeros((), dtype=torch.int64))
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        self.reservoir = Reservoir(capacity, random.Random(seed))

    def __len__(self) -> int:
        return int(self.size)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Indices of ``min(n, len)`` distinct stored items, uniformly at random."""
        index = torch.randperm(len(self), generator=generator)[:n]
        return index.to(self.y.device)

    def offer(self, x: torch.Tensor, y: torch.Tensor, logits: torch.Tensor) -> None:
        """Reservoir insertion of a batch (the DER++ rule)."""
        for item, slot in self.reservoir.slots(len(y)):
            self.x[slot] = x[item].to(self.x.dtype)
            self.y[slot] = y[item]
            self.logits[slot] = logits[item]
        self.size.fill_(min(self.reservoir.num_seen, self.capacity))

    def clear(self) -> None:
        """Forget every item and restart the reservoir's count."""
        self.y.fill_(-1)
        self.counter.zero_()
        self.size.zero_()
        self.reservoir = Reservoir(self.capacity, self.reservoir.rng)

    def keep_per_class(self, per_class: int) -> None:
        """Keep the first ``per_class`` stored items of each class, moved to the front."""
        stored = self.y[: len(self)]
        keep = torch.zeros_like(stored, dtype=torch.bool)
        for label in torch.unique(stored).tolist():
            keep[(stored == label).nonzero().flatten()[:per_class]] = True
        index = keep.nonzero().flatten()
        n = len(index)
        self.x[:n] = self.x[index].clone()
        self.y[:n] = self.y[index].clone()
        self.logits[:n] = self.logits[index].clone()
        self.y[n:] = -1
        self.size.fill_(n)

    def append(self, x: torch.Tensor, y: torch.Tensor, logits: torch.Tensor) -> None:
        """Store a batch in the next free slots (the caller keeps within capacity)."""
        start, end = len(self), len(self) + len(y)
        self.x[start:end] = x.to(self.x.dtype)
        self.y[start:end] = y
        self.logits[start:end] = logits
        self.size.fill_(end)

    def get_extra_state(self) -> dict[str, Any]:
        """The reservoir's position and generator."""
        return {"reservoir": self.reservoir.state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_extra_state` returned."""
        self.reservoir.load_state(state["reservoir"])
