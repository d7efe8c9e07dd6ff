"""Gradient Episodic Memory: project the gradient so no past experience's loss increases."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812

from lifelong.buffers.episodic import EpisodicMemories
from lifelong.errors import ConfigError
from lifelong.methods.base import Method, MethodConfig, MethodContext, register
from lifelong.nn.gradient_projection import flat_grad, project_gem, set_flat_grad, trainable
from lifelong.types import Batch, StepOutput


@dataclass(frozen=True)
class GEMConfig(MethodConfig):
    """Settings of GEM."""

    buffer_size: int = 200
    """Examples the episodic memories hold in all, split evenly over the experiences."""
    gamma: float = 0.5
    """Margin: lower bound of the dual variables v of the projection QP (the paper's gamma)."""
    num_experiences: int = 0
    """Experiences the memory is split over (DER code: the stream length); 0: unknown, shrink."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.buffer_size <= 0:
            raise ConfigError(f"method.buffer_size must be positive, got {self.buffer_size}")
        if self.gamma < 0:
            raise ConfigError(f"method.gamma must be >= 0, got {self.gamma}")
        check_memory_split(self.buffer_size, self.num_experiences)


def check_memory_split(buffer_size: int, num_experiences: int) -> None:
    """Refuse a memory split over a negative number of experiences, or over more than it holds."""
    if num_experiences < 0:
        raise ConfigError(f"method.num_experiences must be >= 0, got {num_experiences}")
    if num_experiences > buffer_size:
        raise ConfigError(
            f"method.buffer_size ({buffer_size}) must hold at least one example for "
            f"each of method.num_experiences ({num_experiences})"
        )


def episodic_memories(ctx: MethodContext, capacity: int, planned: int) -> EpisodicMemories:
    """Per-experience memories of un-augmented inputs, stored as the loop's ``Batch.x_clean``."""
    stored = torch.uint8 if ctx.transform.augments else torch.float32
    memories = EpisodicMemories(capacity, planned, ctx.image_shape, stored, ctx.generator)
    return memories.to(ctx.device)


@register
class GEM(Method):
    """Gradient Episodic Memory (Lopez-Paz & Ranzato, NeurIPS 2017), as in the DER paper.

    Each step computes the gradient g_k of the cross-entropy on the whole memory of every past
    experience k, then the gradient g on the current batch. If ``⟨g, g_k⟩ < 0`` for some k, g is
    replaced by the solution of the dual QP (``project_gem``)

        g̃ = Gᵀ v + g,   v = argmin_{v ≥ gamma} ½ vᵀ G Gᵀ v + gᵀ Gᵀ v,

    the closest update (for gamma = 0) that increases no past experience's loss to first order;
    then one SGD step. The batch is then offered to the current experience's memory.

    The QP is solved by ``quadprog``, the solver of the authors' and the DER code: a maintained,
    small compiled package (wheels for current Pythons) whose dual active-set method solves the
    K-variable problem exactly; writing a solver here would add code that is not the algorithm.

    Memories: ``buffer_size // max(num_experiences, experiences seen)`` examples per experience
    (see :class:`~lifelong.buffers.episodic.EpisodicMemories`). The presets set
    ``num_experiences`` to the stream length, as the DER code does; left at 0 (the method is not
    told the stream length) the older memories shrink as experiences arrive.

    Differences from the reference code: the memory of an experience is a reservoir sample of
    its batches (the GEM code keeps the last examples seen, the DER code draws a random sample of
    the experience's training set at its end); replayed memories are augmented as every replay
    in the library is (the DER code too); the current batch's constraint set is the past
    experiences only, as in both codes.
    """

    name = "gem"
    config_cls = GEMConfig
    supported_settings = frozenset({"class-il", "domain-il"})

    def __init__(self, cfg: GEMConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg: GEMConfig = cfg
        self.memories = episodic_memories(ctx, cfg.buffer_size, cfg.num_experiences)

    def observe(self, batch: Batch) -> StepOutput:
        """Gradients on every past memory, the current gradient, its projection, an SGD step."""
        params = trainable(self.net)
        memory_grads = []
        for k in self.memories.past():
            x_k, y_k = self.memories.examples(k)
            self.optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(self.net(self.augment(x_k)), y_k).backward()
            memory_grads.append(flat_grad(params))
        self.optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.net(batch.x), batch.y)
        loss.backward()
        terms = {"ce": loss.detach()}
        if memory_grads:
            g = flat_grad(params)
            memories = torch.stack(memory_grads)
            projected = project_gem(g, memories, self.cfg.gamma)
            set_flat_grad(params, projected)
            terms["violations"] = (memories @ g < 0).sum().to(loss.dtype)
        self.optimizer.step()
        self.memories.add(batch.x_clean, batch.y, batch.experience_id)
        return StepOutput(loss.detach(), terms)
