"""Episodic memories: one sample of examples per experience, sharing a fixed number of slots."""

from __future__ import annotations

import random
from typing import Any

import torch
from torch import nn

from lifelong.buffers.reservoir import Reservoir
from lifelong.errors import ConfigError

FREE = -1
"""Owner id of an empty slot."""


class EpisodicMemories(nn.Module):
    """GEM's episodic memories (Lopez-Paz & Ranzato, 2017): a memory per experience.

    ``capacity`` slots are split evenly over the experiences: ``capacity // max(planned, seen)``
    per experience, where ``seen`` counts the experiences met so far. With ``planned`` set to the
    stream's length this is the DER paper's GEM (memory per task = buffer_size / n_tasks);
    with ``planned = 0`` (stream length unknown) the first experience gets every slot and each
    new experience shrinks the older memories to a uniform random subset of what they held.

    The memory of the current experience is filled online by reservoir sampling over its
    batches, so it ends as a uniform sample of the experience (the GEM code keeps the last
    examples seen; the DER code draws a random sample of the experience at its end). Batches
    drive everything: the first batch of a new experience id starts its memory.

    Args:
        capacity: Slots in all.
        planned: Number of experiences the slots are planned for (0: unknown).
        image_shape: (C, H, W) of the stored inputs.
        stored_dtype: uint8 for streams that augment (inputs re-augmented on replay), else
            float32 (normalised inputs).
        generator: Source of the seed of the memories' own generator.
    """

    x: torch.Tensor
    y: torch.Tensor
    owner: torch.Tensor

    def __init__(
        self,
        capacity: int,
        planned: int,
        image_shape: tuple[int, int, int],
        stored_dtype: torch.dtype,
        generator: torch.Generator,
    ) -> None:
        super().__init__()
        self.capacity = capacity
        self.planned = planned
        self.register_buffer("x", torch.zeros((capacity, *image_shape), dtype=stored_dtype))
        self.register_buffer("y", torch.zeros(capacity, dtype=torch.int64))
        self.register_buffer("owner", torch.full((capacity,), FREE, dtype=torch.int64))
        self.rng = random.Random(int(torch.randint(0, 2**62, (1,), generator=generator)))
        self.current = FREE
        self.reservoir = Reservoir(1, self.rng)
        self.rows = torch.zeros(0, dtype=torch.int64)  # the slots of the current experience

    def __len__(self) -> int:
        return int((self.owner != FREE).sum())

    def per_experience(self, experiences: int) -> int:
        """Slots of each memory once ``experiences`` experiences have been met."""
        return self.capacity // max(self.planned, experiences)

    def past(self) -> list[int]:
        """Ids of the experiences with a memory, the current one excepted, ascending."""
        owners = self.owner[self.owner != FREE].unique().tolist()
        return [k for k in owners if k != self.current]

    def examples(self, experience: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The stored inputs and labels of ``experience``."""
        index = (self.owner == experience).nonzero().squeeze(1)
        return self.x[index], self.y[index]

    def sample_past(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``min(n, stored)`` distinct examples drawn uniformly from the past experiences."""
        index = ((self.owner != FREE) & (self.owner != self.current)).nonzero().squeeze(1)
        chosen = self.rng.sample(range(len(index)), min(n, len(index)))
        rows = index[torch.tensor(chosen, dtype=torch.int64, device=index.device)]
        return self.x[rows], self.y[rows]

    def add(self, x: torch.Tensor, y: torch.Tensor, experience: int) -> None:
        """Offer a batch of ``experience`` to its memory (reservoir sampling)."""
        if experience != self.current:
            self._start(experience)
        kept = self.reservoir.slots(len(y))
        if not kept:
            return
        items = torch.tensor([item for item, _ in kept], device=y.device)
        slots = self.rows[torch.tensor([slot for _, slot in kept])].to(y.device)
        with torch.no_grad():
            self.x[slots] = x[items].to(self.x.dtype)
            self.y[slots] = y[items]
            self.owner[slots] = experience

    def _start(self, experience: int) -> None:
        """Shrink the older memories and reserve the new experience's slots."""
        owner = self.owner
        owner[owner == experience] = FREE  # an experience met again starts afresh
        older = self.past() if self.current == FREE else [*self.past(), self.current]
        per = self.per_experience(len(set(older)) + 1)
        if per == 0:
            raise ConfigError(
                f"method.buffer_size={self.capacity} cannot hold one example for each of "
                f"{len(older) + 1} experiences; raise it"
            )
        for k in sorted(set(older)):
            index = (owner == k).nonzero().squeeze(1)
            if len(index) > per:
                dropped = self.rng.sample(range(len(index)), len(index) - per)
                owner[index[torch.tensor(dropped, device=index.device)]] = FREE
        self.rows = (owner == FREE).nonzero().squeeze(1)[:per].cpu()
        self.current = experience
        self.reservoir = Reservoir(per, self.rng)

    def get_extra_state(self) -> dict[str, Any]:
        """The current experience, its slots, its reservoir and the generator (checkpoints)."""
        return {"current": self.current, "rows": self.rows, "reservoir": self.reservoir.state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_extra_state` returned."""
        self.current = int(state["current"])
        self.rows = state["rows"].cpu()
        self.reservoir = Reservoir(len(self.rows) or 1, self.rng)
        self.reservoir.load_state(state["reservoir"])
