"""The data that flows through the loop: batches and step outputs."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class Batch:
    """One training minibatch, already on the target device.

    Attributes:
        x: Augmented, normalised inputs, shape (B, C, H, W) float32.
        y: Integer labels, shape (B,).
        x_clean: The un-augmented inputs as rehearsal buffers store them, shape (B, C, H, W):
            uint8 when the stream augments (replay draws a fresh augmentation), otherwise the
            normalised float inputs themselves (``x``; replay then has nothing to recompute).
        experience_id: Index of the experience the batch comes from.
    """

    x: torch.Tensor
    y: torch.Tensor
    x_clean: torch.Tensor
    experience_id: int

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to(self, device: torch.device) -> Batch:
        """Return the batch with every tensor moved to ``device``."""
        return Batch(
            self.x.to(device), self.y.to(device), self.x_clean.to(device), self.experience_id
        )


@dataclass(frozen=True)
class StepOutput:
    """What ``Method.observe`` returns: the total loss and its named terms.

    Attributes:
        loss: The scalar total loss (detached) that was optimised.
        terms: Named, detached scalar loss terms for the logger (e.g. ``{"ce": ...}``).
    """

    loss: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
