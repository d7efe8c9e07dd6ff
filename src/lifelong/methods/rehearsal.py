"""What every rehearsal method shares: its config fields and its reservoir buffer of inputs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import torch

from lifelong.buffers.tensor_buffer import FieldSpec, TensorBuffer
from lifelong.errors import ConfigError
from lifelong.methods.base import MethodConfig, MethodContext
from lifelong.types import Batch


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


def replay_fields(ctx: MethodContext) -> dict[str, FieldSpec]:
    """The fields every replay memory stores: the un-augmented input, its label, its experience.

    Inputs are stored as the loop's ``Batch.x_clean``: uint8 when the stream augments, else
    normalised float32 (four times the memory, no re-normalisation per replayed item).
    """
    stored_dtype = torch.uint8 if ctx.transform.augments else torch.float32
    return {
        "x": (ctx.image_shape, stored_dtype),
        "y": ((), torch.int64),
        "experience": ((), torch.int64),
    }


def rehearsal_buffer(
    ctx: MethodContext,
    capacity: int,
    logits: bool,
    extra: Mapping[str, FieldSpec] | None = None,
) -> TensorBuffer:
    """A reservoir buffer of :func:`replay_fields` and optional fields.

    ``logits`` adds the network's logits; ``extra`` adds fields as name → (item shape, dtype).
    """
    fields = replay_fields(ctx)
    if logits:
        fields["logits"] = ((ctx.num_classes,), torch.float32)
    fields.update(extra or {})
    return TensorBuffer(capacity, fields, ctx.generator).to(ctx.device)


class ReplaySource(Protocol):
    """A buffer that can be sampled (:class:`TensorBuffer`, the GSS buffer)."""

    def __len__(self) -> int: ...

    def sample(self, n: int, fields: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        """``n`` stored items, the given fields only."""
        ...


def with_replay(
    batch: Batch,
    buffer: ReplaySource,
    minibatch_size: int,
    augment: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """``([x; augment(x_buf)], [y; y_buf])``: the batch and ``minibatch_size`` replayed examples.

    While the buffer is empty, the batch alone.
    """
    if len(buffer) == 0:
        return batch.x, batch.y
    replay = buffer.sample(minibatch_size, ("x", "y"))
    return torch.cat([batch.x, augment(replay["x"])]), torch.cat([batch.y, replay["y"]])
