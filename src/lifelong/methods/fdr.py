"""Function Distance Regularization: keep the network's outputs on stored inputs in place."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812

from lifelong.data.stream import Experience
from lifelong.errors import ConfigError
from lifelong.losses.function_distance import function_distance
from lifelong.methods.base import Method, MethodContext, register
from lifelong.methods.rehearsal import RehearsalConfig
from lifelong.types import Batch, StepOutput

OUTPUT_BATCH = 512
"""Images per forward pass when the outputs of new memory items are recorded."""


@dataclass(frozen=True)
class FDRConfig(RehearsalConfig):
    """Settings of FDR."""

    alpha: float = 1.0
    """Weight of the function-distance step (1: the DER paper's code, which never weights it)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.alpha < 0:
            raise ConfigError(f"method.alpha must be >= 0, got {self.alpha}")


@register
class FDR(Method):
    """FDR (Benjamin, Rolnick & Kording, ICLR 2019) as in the DER paper's comparison.

    Each step first takes an SGD step on ``CE(f(x), y)`` for the current batch; when the memory
    holds examples, a second SGD step, same optimiser and learning rate, on
    ``mean_i || softmax(f(x_i)) - q_i ||_2``
    (:func:`~lifelong.losses.function_distance.function_distance`) for ``minibatch_size``
    memory inputs follows, ``q_i`` being the softmax output recorded when ``x_i``'s experience
    ended. The second step has weight ``alpha`` (1 by default, as in the DER paper's code).

    The memory is split evenly between experiences: after experience ``t`` (0-based) every
    older experience keeps its first ``buffer_size // (t + 1)`` items and that many examples of
    experience ``t``, drawn at random, join with the network's softmax outputs on their
    un-augmented inputs (network in evaluation mode).

    Differences from the DER paper's code (mammoth ``models/fdr.py``): mammoth records the
    outputs on augmented inputs and keeps the first examples of the shuffled loader; here the
    outputs are recorded on the un-augmented inputs of a random subset. The DER authors' best
    arguments list an ``alpha`` (0.2 to 1.0) that their FDR code reads but never uses, so the
    tuned learning rates assume weight 1; the presets leave ``alpha`` at 1. Weighting the step
    by the listed values left it too weak against the CE step at ``lr = 0.1``: class-IL accuracy
    on Seq-MNIST fell to about 35 with buffers 500 and 5120 (paper: about 86). The FDR paper adds
    the penalty to the task loss in one step; the DER paper's alternating two steps are kept
    because its hyper-parameters (the presets) were tuned with them.
    """

    name = "fdr"
    config_cls = FDRConfig
    supported_settings = frozenset({"class-il", "domain-il"})
    memory_x: torch.Tensor
    memory_probs: torch.Tensor
    memory_experience: torch.Tensor

    def __init__(self, cfg: FDRConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg: FDRConfig = cfg
        stored = torch.uint8 if ctx.transform.augments else torch.float32
        size, device = cfg.buffer_size, ctx.device
        shape = (size, *ctx.image_shape)
        self.register_buffer("memory_x", torch.zeros(shape, dtype=stored, device=device))
        self.register_buffer("memory_probs", torch.zeros(size, ctx.num_classes, device=device))
        self.register_buffer("memory_experience", torch.full((size,), -1, device=device))

    def observe(self, batch: Batch) -> StepOutput:
        """A CE step on the batch, then a function-distance step on memory inputs."""
        self.optimizer.zero_grad(set_to_none=True)
        ce = F.cross_entropy(self.net(batch.x), batch.y)
        ce.backward()
        self.optimizer.step()
        loss, terms = ce.detach(), {"ce": ce.detach()}
        stored = int((self.memory_experience >= 0).sum())
        if stored > 0:
            index = torch.randperm(stored, generator=self.ctx.generator)[: self.cfg.minibatch_size]
            index = index.to(self.memory_x.device)
            self.optimizer.zero_grad(set_to_none=True)
            probs = F.softmax(self.net(self.augment(self.memory_x[index])), dim=1)
            distance = function_distance(probs, self.memory_probs[index])
            (self.cfg.alpha * distance).backward()
            self.optimizer.step()
            loss = loss + self.cfg.alpha * distance.detach()
            terms["function_distance"] = distance.detach()
        return StepOutput(loss, terms)

    @torch.no_grad()
    def after_experience(self, experience: Experience) -> None:
        """Shrink each older experience's share; store a share of this one with its outputs."""
        filled = self.memory_experience >= 0
        old_ids = torch.unique(self.memory_experience[filled]).tolist()
        old_ids = [e for e in old_ids if e != experience.id]
        share = self.cfg.buffer_size // (len(old_ids) + 1)
        keep = torch.cat(
            [(self.memory_experience == e).nonzero().flatten()[:share] for e in old_ids]
            + [self.memory_experience.new_zeros(0)]
        )
        x, probs, ids = self.memory_x[keep], self.memory_probs[keep], self.memory_experience[keep]
        images = experience.train.x
        chosen = torch.randperm(len(images), generator=self.ctx.generator)[:share]
        clean = images[chosen].to(self.ctx.device)
        normalised = self.ctx.transform.normalize(clean)
        new_x = clean if self.ctx.transform.augments else normalised
        new_probs = self.outputs(normalised)
        x = torch.cat([x, new_x.to(x.dtype)])
        probs = torch.cat([probs, new_probs])
        ids = torch.cat([ids, torch.full_like(chosen, experience.id).to(ids.device)])
        self.memory_experience.fill_(-1)
        self.memory_x[: len(ids)] = x
        self.memory_probs[: len(ids)] = probs
        self.memory_experience[: len(ids)] = ids

    def outputs(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax outputs of the network in evaluation mode on normalised inputs ``x``."""
        was_training = self.net.training
        self.net.train(False)
        parts = [
            F.softmax(self.net(x[start : start + OUTPUT_BATCH]), dim=1)
            for start in range(0, len(x), OUTPUT_BATCH)
        ]
        self.net.train(was_training)
        return torch.cat(parts)
