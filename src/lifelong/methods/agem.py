"""Averaged GEM: one reference gradient on a memory minibatch instead of one per experience."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F  # noqa: N812

from lifelong.methods.base import Method, MethodContext, register
from lifelong.methods.gem import check_memory_split, episodic_memories
from lifelong.methods.rehearsal import RehearsalConfig
from lifelong.nn.gradient_projection import flat_grad, project_agem, set_flat_grad, trainable
from lifelong.types import Batch, StepOutput


@dataclass(frozen=True)
class AGEMConfig(RehearsalConfig):
    """Settings of A-GEM (``minibatch_size``: memory examples of the reference gradient)."""

    num_experiences: int = 0
    """Experiences the memory is split over (DER code: the stream length); 0: unknown, shrink."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_memory_split(self.buffer_size, self.num_experiences)


@register
class AGEM(Method):
    """Averaged GEM (Chaudhry, Ranzato, Rohrbach & Elhoseiny, ICLR 2019), as in the DER paper.

    Each step computes the gradient g of the cross-entropy on the current batch and the
    reference gradient g_ref on ``minibatch_size`` examples drawn uniformly from the memories
    of all past experiences. If ``gᵀ g_ref < 0`` the update is
    ``g̃ = g − (gᵀ g_ref / g_refᵀ g_ref) g_ref`` (``project_agem``), else g; then one SGD step.
    The batch is then offered to the current experience's memory.

    The memories are GEM's (:class:`~lifelong.buffers.episodic.EpisodicMemories`): an equal
    share of ``buffer_size`` per experience (``num_experiences`` as for GEM), filled by
    reservoir sampling over the experience's batches. The DER code adds a random sample of
    ``buffer_size // n_tasks`` examples of each task at its end to one buffer; the sampled
    reference batch is augmented here as every replay in the library is (the DER code too).
    """

    name = "agem"
    config_cls = AGEMConfig
    supported_settings = frozenset({"class-il", "domain-il"})

    def __init__(self, cfg: AGEMConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg: AGEMConfig = cfg
        self.memories = episodic_memories(ctx, cfg.buffer_size, cfg.num_experiences)

    def observe(self, batch: Batch) -> StepOutput:
        """The current gradient, the reference gradient, the projection, an SGD step."""
        params = trainable(self.net)
        self.optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.net(batch.x), batch.y)
        loss.backward()
        terms = {"ce": loss.detach()}
        if self.memories.past():
            g = flat_grad(params)
            x_ref, y_ref = self.memories.sample_past(self.cfg.minibatch_size)
            self.optimizer.zero_grad(set_to_none=True)
            reference = F.cross_entropy(self.net(self.augment(x_ref)), y_ref)
            reference.backward()
            g_ref = flat_grad(params)
            set_flat_grad(params, project_agem(g, g_ref))
            terms["reference_ce"] = reference.detach()
        self.optimizer.step()
        self.memories.add(batch.x_clean, batch.y, batch.experience_id)
        return StepOutput(loss.detach(), terms)
