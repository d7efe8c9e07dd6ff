"""What every rehearsal method shares: its config fields and its reservoir buffer of inputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from lifelong.buffers.tensor_buffer import FieldSpec, TensorBuffer
from lifelong.errors import ConfigError
from lifelong.methods.base import MethodConfig, MethodContext


@dataclass(frozen=True)
class RehearsalConfig(MethodConfig):
    """Settings of methods that replay from a reservoir buffer."""

    buffer_size: int = 200
    """Number of examples the buffer holds."""
    minibatch_size: int = 32
    """Examples drawn from the buffer at each step."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.buffer_size <= 0:
            raise ConfigError(f"method.buffer_size must be positive, got {self.buffer_size}")
        if self.minibatch_size <= 0:
            raise ConfigError(f"method.minibatch_size must be positive, got {self.minibatch_size}")


def rehearsal_buffer(
    ctx: MethodContext,
    capacity: int,
    logits: bool,
    extra: Mapping[str, FieldSpec] | None = None,
) -> TensorBuffer:
    """A reservoir buffer of un-augmented inputs, labels, experience ids and optional fields.

    Inputs are stored as the loop's ``Batch.x_clean``: uint8 when the stream augments, else
    normalised float32 (four times the memory, no re-normalisation per replayed item).

    ``logits`` adds the network's logits; ``extra`` adds fields as name → (item shape, dtype).
    """
    stored_dtype = torch.uint8 if ctx.transform.augments else torch.float32
    fields: dict[str, FieldSpec] = {
        "x": (ctx.image_shape, stored_dtype),
        "y": ((), torch.int64),
        "experience": ((), torch.int64),
    }
    if logits:
        fields["logits"] = ((ctx.num_classes,), torch.float32)
    fields.update(extra or {})
    return TensorBuffer(capacity, fields, ctx.generator).to(ctx.device)
