"""GSS-Greedy's buffer: keep the examples whose gradients are the most diverse."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import torch
from torch import nn

from lifelong.buffers.tensor_buffer import FieldSpec
from lifelong.errors import ConfigError

EMPTY_BUFFER_SCORE = 0.1
"""Score of an example offered to an empty buffer (no gradient to compare with; the DER code's
value)."""


def gss_scores(cosines: torch.Tensor) -> torch.Tensor:
    """GSS-Greedy's score (Aljundi et al., NeurIPS 2019, Algorithm 2).

    ``c_i = max_j cos(g_i, G_j) + 1`` in [0, 2]: high when example i's gradient is aligned with a
    stored example's (redundant), low when it points elsewhere (diverse).

    Args:
        cosines: ``cos(g_i, G_j)`` between the gradients of the offered examples and those of a
            random subset of the buffer, shape (B, N), N >= 1.

    Returns:
        Scores, shape (B,).
    """
    return cosines.max(dim=1).values + 1


class GSSBuffer(nn.Module):
    """A buffer filled by GSS-Greedy (Aljundi et al., NeurIPS 2019, Algorithm 2).

    Each stored example keeps its score ``C_j``. An offered example with score c is stored in
    the next free slot while the buffer is not full. Once full, only an example with ``c < 1``
    (its gradient has negative cosine with every compared stored gradient; or whatever
    ``eligible`` says, see :meth:`add`) may enter: a slot j
    is drawn with probability ``C_j / Σ C`` and replaced with probability ``C_j / (C_j + c)``;
    the slot then keeps score c. Examples of one batch are offered in order.

    Args:
        capacity: Maximum number of stored items.
        fields: Name → (per-item shape, dtype) of the stored fields.
        generator: Source of the seed of the buffer's own generator.
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
        self.register_buffer("scores", torch.zeros(capacity, dtype=torch.float32))
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        self._generator = torch.Generator().manual_seed(seed)
        self.num_seen = 0

    def __len__(self) -> int:
        return min(self.num_seen, self.capacity)

    def field(self, name: str) -> torch.Tensor:
        """The stored tensor of ``name`` (only the first ``len(self)`` rows are meaningful)."""
        return cast(torch.Tensor, self._buffers[name])

    def sample(self, n: int, fields: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        """``min(n, len(self))`` distinct stored items drawn uniformly at random."""
        if len(self) == 0:
            raise RuntimeError("sample() on an empty buffer")
        index = torch.randperm(len(self), generator=self._generator)[:n]
        index = index.to(self.field(self.field_names[0]).device)
        return {name: self.field(name)[index] for name in fields or self.field_names}

    def add(
        self,
        items: Mapping[str, torch.Tensor | int],
        scores: torch.Tensor,
        eligible: torch.Tensor | None = None,
    ) -> None:
        """Offer a batch whose items have GSS scores ``scores`` (shape (B,)).

        ``eligible`` (bool, (B,)) says which items a full buffer may consider for replacement;
        by default those with ``c < 1`` (the paper's rule). The draw uses each item's score.
        """
        candidates = scores.detach().float().cpu().tolist()
        allowed = (scores < 1 if eligible is None else eligible).cpu().tolist()
        slots: dict[int, int] = {}  # slot -> item; a later item replaces an earlier one
        weights = cast(torch.Tensor, self.scores).cpu().clone()  # C_j, updated item by item
        for item, c in enumerate(candidates):
            slot = self._slot_for(c, weights, bool(allowed[item]))
            self.num_seen += 1
            if slot is not None:
                slots[slot] = item
                weights[slot] = c
        if not slots:
            return
        target = torch.tensor(list(slots), device=self.field("scores").device)
        with torch.no_grad():
            self.field("scores")[target] = weights[target.cpu()].to(target.device)
            for name in self.field_names:
                value = items[name]
                store = self.field(name)
                if isinstance(value, int):
                    store[target] = value
                else:
                    source = torch.tensor(list(slots.values()), device=value.device)
                    store[target] = value[source].to(device=store.device, dtype=store.dtype)

    def _slot_for(self, c: float, weights: torch.Tensor, eligible: bool) -> int | None:
        """Where an example of score c goes: a free slot, a replaced one, or nowhere.

        ``weights`` are the stored scores C (on the CPU); a full buffer considers the example
        only when it is ``eligible``.
        """
        if self.num_seen < self.capacity:
            return self.num_seen
        if not eligible or float(weights.sum()) <= 0:
            return None
        j = int(torch.multinomial(weights, 1, generator=self._generator))
        u = float(torch.rand((), generator=self._generator))
        cj = float(weights[j])
        return j if u < cj / (cj + c) else None

    def get_extra_state(self) -> dict[str, Any]:
        """Items seen and the generator's state, for checkpoints."""
        return {"num_seen": self.num_seen, "generator": self._generator.get_state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_extra_state` returned."""
        self.num_seen = int(state["num_seen"])
        self._generator.set_state(state["generator"])
