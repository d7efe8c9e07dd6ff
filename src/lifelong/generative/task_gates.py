"""Context-dependent gating of hidden units by task, XdG (Masse, Grant & Freedman, PNAS 2018).

Each task owns one fixed binary mask per gated hidden layer: a random subset of exactly
``round(prop · units)`` units is switched off (multiplied by 0), the rest pass unchanged. A
layer's output for an example of task ``k`` is ``h ⊙ m_k``. As in the continual-learning code of
van de Ven et al. (``--xdg --gating-prop``), the masks gate the hidden layers of the encoder
``fcE`` only (not the classifier or the decoder), they are drawn once before training, and the
task identity chooses them both when training (also for replay of an earlier task, with that
task's mask) and when testing, so XdG needs task-incremental testing.

Deviation from the reference code: the masks are registered buffers drawn from an explicit
``torch.Generator``, so a checkpoint restores them (the reference redraws them from numpy's
global generator).
"""

from __future__ import annotations

import torch
from torch import nn


def gated_unit_masks(
    n_tasks: int, units: int, prop: float, generator: torch.Generator
) -> torch.Tensor:
    """Masks (n_tasks, units) of 0/1 floats; each row has exactly ``round(prop · units)`` zeros.

    Args:
        n_tasks: Rows, one per task.
        units: Units of the gated layer.
        prop: Proportion of units switched off per task, in [0, 1).
        generator: Source of the random subsets.
    """
    if not 0.0 <= prop < 1.0:
        raise ValueError(f"gating proportion must be in [0, 1), got {prop}")
    off = round(prop * units)
    masks = torch.ones(n_tasks, units)
    for task in range(n_tasks):
        masks[task, torch.randperm(units, generator=generator)[:off]] = 0.0
    return masks


class TaskGates(nn.Module):
    """XdG masks for a stack of hidden layers: ``layer(h, i, task)`` returns ``h ⊙ m[i][task]``.

    Args:
        widths: Units of each gated hidden layer, in order.
        n_tasks: Tasks (experiences) of the stream.
        prop: Proportion of each layer's units switched off per task.
        generator: Source of the random subsets.
    """

    def __init__(
        self, widths: list[int], n_tasks: int, prop: float, generator: torch.Generator
    ) -> None:
        super().__init__()
        if n_tasks < 1:
            raise ValueError("XdG needs the number of tasks of the stream")
        self.n_tasks = n_tasks
        for i, units in enumerate(widths):
            self.register_buffer(f"mask{i}", gated_unit_masks(n_tasks, units, prop, generator))

    def mask(self, layer: int) -> torch.Tensor:
        """The masks of hidden layer ``layer``, shape (n_tasks, units)."""
        out: torch.Tensor = getattr(self, f"mask{layer}")
        return out

    def gate(self, h: torch.Tensor, layer: int, task: torch.Tensor) -> torch.Tensor:
        """``h`` (B, units) of hidden layer ``layer`` gated by each row's task ids ``task`` (B,)."""
        if int(task.max()) >= self.n_tasks or int(task.min()) < 0:
            raise ValueError(f"task ids must lie in [0, {self.n_tasks}), got {task.tolist()}")
        return h * self.mask(layer)[task]
