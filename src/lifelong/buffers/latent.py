"""AR1*'s replay memory: patterns (latent activations or inputs) with the 1/(i+1) replacement rule.

Pellegrini, Graffieti, Lomonaco & Maltoni, *Latent Replay for Real-Time Continual Learning*
(IROS 2020, arXiv 1912.01100), spec ``ar1.md`` §4. After training on experience ``i`` (0-based),
``h = min(capacity // (i + 1), n_new)`` of the experience's patterns, drawn at random without
replacement, enter the memory; each overwrites a random slot. Each experience thus keeps an
expected share of about ``1 / (i + 1)`` of the memory, as reservoir sampling would, at the cost
of one update per experience instead of one per pattern.

Difference from the reference: while the memory has free slots (a first experience smaller than
the capacity), the chosen patterns fill them before any slot is overwritten; the reference
overwrites from the second experience on, so such a memory would never fill.

Replay reads the memory in its stored order, ``n`` patterns at a time, wrapping around
(:meth:`LatentMemory.next`), as the reference's fixed slices ``[it·n, (it+1)·n)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lifelong.errors import ConfigError


class LatentMemory(nn.Module):
    """A fixed-capacity memory of patterns and labels with AR1*'s replacement rule.

    Args:
        capacity: Patterns held at most (the reference's ``rm_sz``, 1,500).
        dtype: Storage type of float patterns (``torch.float16`` halves the memory); integer
            patterns (uint8 images) keep their own type.
    """

    def __init__(self, capacity: int, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if capacity <= 0:
            raise ConfigError(f"the replay memory size must be positive, got {capacity}")
        self.capacity = capacity
        self.dtype = dtype
        self.patterns: torch.Tensor | None = None
        self.labels = torch.zeros(0, dtype=torch.int64)
        self.cursor = 0

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def nbytes(self) -> int:
        """Bytes held by the stored patterns and labels."""
        held = 0 if self.patterns is None else self.patterns.nelement() * self.patterns.itemsize
        return held + self.labels.nelement() * self.labels.itemsize

    def update(
        self,
        patterns: torch.Tensor,
        labels: torch.Tensor,
        experience_index: int,
        generator: torch.Generator,
    ) -> int:
        """Store ``h = min(capacity // (i + 1), n)`` random patterns of experience ``i``.

        Args:
            patterns: The experience's patterns, shape (n, ...), all of them once.
            labels: Their labels, int64 (n,).
            experience_index: ``i``, 0-based.
            generator: Draws the patterns and the slots (CPU).

        Returns:
            ``h``, the number of patterns stored.
        """
        n = len(labels)
        keep = min(self.capacity // (experience_index + 1), n)
        chosen = torch.randperm(n, generator=generator)[:keep].to(labels.device)
        new_patterns = self._stored(patterns.index_select(0, chosen))
        new_labels = labels.index_select(0, chosen).to(torch.int64)
        if self.patterns is None:
            self.patterns = new_patterns[:0].clone()
        free = min(self.capacity - len(self), keep)
        self.patterns = torch.cat([self.patterns, new_patterns[:free]])
        self.labels = torch.cat([self.labels.to(new_labels.device), new_labels[:free]])
        rest = keep - free
        if rest > 0:
            slots = torch.randperm(len(self), generator=generator)[:rest].to(self.labels.device)
            self.patterns[slots] = new_patterns[free:]
            self.labels[slots] = new_labels[free:]
        return keep

    def _stored(self, patterns: torch.Tensor) -> torch.Tensor:
        """Patterns in the storage type (float ones cast to ``dtype``), detached."""
        patterns = patterns.detach()
        return patterns.to(self.dtype) if patterns.is_floating_point() else patterns

    def next(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The next ``n`` patterns (as float32 when stored as float) and labels, in stored order.

        Raises:
            ValueError: When the memory is empty.
        """
        if self.patterns is None or len(self) == 0:
            raise ValueError("the replay memory is empty")
        index = (torch.arange(n) + self.cursor) % len(self)
        self.cursor = (self.cursor + n) % len(self)
        index = index.to(self.labels.device)
        chosen = self.patterns.index_select(0, index)
        if chosen.is_floating_point():
            chosen = chosen.float()
        return chosen, self.labels.index_select(0, index)

    def restart(self) -> None:
        """Start the next replay pass at the first slot (the reference restarts every epoch)."""
        self.cursor = 0

    def get_extra_state(self) -> dict[str, Any]:
        """Patterns, labels and the read position, for checkpoints."""
        return {"patterns": self.patterns, "labels": self.labels, "cursor": self.cursor}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_extra_state` saved."""
        self.patterns = state["patterns"]
        self.labels = state["labels"]
        self.cursor = int(state["cursor"])
