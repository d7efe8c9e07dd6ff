"""Hindsight Anchor Learning: experience replay plus anchors that keep forgettable outputs fixed."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn
from torch.func import functional_call

from lifelong.data.stream import Experience
from lifelong.errors import ConfigError
from lifelong.methods.base import Method, MethodContext, register
from lifelong.methods.rehearsal import RehearsalConfig, rehearsal_buffer, with_replay
from lifelong.types import Batch, StepOutput


@dataclass(frozen=True)
class HALConfig(RehearsalConfig):
    """Settings of HAL (the SGD ``lr`` also drives fine-tuning and the anchor ascent)."""

    hal_lambda: float = 0.1
    """Weight of the anchor term: mean squared change of the anchors' outputs."""
    beta: float = 0.5
    """Decay of the running mean embedding of the current experience."""
    gamma: float = 0.1
    """Weight of the embedding-distance penalty in the anchor objective."""
    steps_on_anchors: int = 100
    """Gradient-ascent steps per anchor."""
    finetuning_epochs: int = 1
    """Passes over the buffer that fine-tune the copy whose forgetting anchors maximise."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("hal_lambda", "gamma"):
            if getattr(self, name) < 0:
                raise ConfigError(f"method.{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.beta < 1:
            raise ConfigError(f"method.beta must be in [0, 1), got {self.beta}")
        if self.steps_on_anchors < 0 or self.finetuning_epochs < 0:
            raise ConfigError("method.steps_on_anchors and method.finetuning_epochs must be >= 0")


def anchor_objective(
    anchor: torch.Tensor,
    label: int,
    tuned: nn.Module,
    current: nn.Module,
    mean_embedding: torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """HAL's anchor objective (Chaudhry et al., AAAI 2021, Eq. 5), maximised over ``anchor``.

    ``CE(f_tuned(e), y) - CE(f_current(e), y) - gamma || phi_current(e) - phi_mean ||^2``: the
    forgetting of ``e`` that fine-tuning on the memory causes, kept near the mean embedding of
    the experience (``phi``: the current network's features, squared norm summed over them).

    Args:
        anchor: The anchor input, shape (1, C, H, W).
        label: Its class.
        tuned: The network after fine-tuning on the memory (``theta_M``).
        current: The network at the end of the experience (``theta_t``); needs ``features``.
        mean_embedding: Running mean of the experience's features, shape (D,).
        gamma: Weight of the embedding term.

    Returns:
        Scalar objective.
    """
    target = torch.tensor([label], device=anchor.device)
    forgetting = F.cross_entropy(tuned(anchor), target) - F.cross_entropy(current(anchor), target)
    distance = (current.features(anchor) - mean_embedding).pow(2).sum()  # type: ignore[operator]
    objective: torch.Tensor = forgetting - gamma * distance
    return objective


def learn_anchor(
    init: torch.Tensor,
    label: int,
    tuned: nn.Module,
    current: nn.Module,
    mean_embedding: torch.Tensor,
    gamma: float,
    steps: int,
    lr: float,
) -> torch.Tensor:
    """``steps`` gradient-ascent steps of size ``lr`` on :func:`anchor_objective` from ``init``."""
    anchor = init.detach().clone().requires_grad_(True)
    for _ in range(steps):
        objective = anchor_objective(anchor, label, tuned, current, mean_embedding, gamma)
        (gradient,) = torch.autograd.grad(objective, anchor)
        with torch.no_grad():
            anchor += lr * gradient
    return anchor.detach()


@register
class HAL(Method):
    """HAL (Chaudhry, Gordo, Dokania, Torr & Lopez-Paz, AAAI 2021), Algorithm 1.

    Each step replays ``minibatch_size`` buffer examples with the batch (ER). Once anchors
    exist, a temporary SGD step ``theta~ = theta - lr * grad CE`` is taken in thought and the
    real step descends ``CE + hal_lambda * mean((f_theta(E) - f_theta~(E))^2)`` over the anchors
    ``E``: replay, while keeping the anchors' outputs where they were before the update would
    move them. A running mean ``phi <- beta phi + (1 - beta) mean features(x)`` of the
    experience's embeddings (from 0 at each experience) is kept.

    After each experience a copy of the network is fine-tuned on the buffer for
    ``finetuning_epochs`` passes, then one anchor per class of the experience is learned from a
    uniform [0, 1) input by ``steps_on_anchors`` gradient-ascent steps on
    :func:`anchor_objective`: the anchor the fine-tuned copy forgets most, near ``phi``.

    Differences from the DER paper's code (mammoth ``models/hal.py``): the paper and mammoth
    keep a ring buffer per task; here it is ER's reservoir buffer. Mammoth's
    ``finetuning_epochs`` is a number of single minibatch steps; here passes over the buffer.
    The temporary step is plain SGD (mammoth calls the optimiser, so momentum would enter),
    and the anchors ascend by plain gradient steps of size ``lr``, as mammoth's SGD does.
    """

    name = "hal"
    config_cls = HALConfig
    supported_settings = frozenset({"class-il", "domain-il"})

    def __init__(self, cfg: HALConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg: HALConfig = cfg
        self.buffer = rehearsal_buffer(ctx, cfg.buffer_size, logits=False)
        self.anchors = torch.zeros((0, *ctx.image_shape), device=ctx.device)
        self.anchor_labels = torch.zeros(0, dtype=torch.int64, device=ctx.device)
        self.mean_embedding: torch.Tensor | None = None

    def before_experience(self, experience: Experience) -> None:
        """Restart the running mean embedding."""
        self.mean_embedding = None

    def observe(self, batch: Batch) -> StepOutput:
        """ER's loss plus the anchor term; update the mean embedding; store the batch."""
        x, y = with_replay(batch, self.buffer, self.cfg.minibatch_size, self.augment)
        self.optimizer.zero_grad(set_to_none=True)
        ce = F.cross_entropy(self.net(x), y)
        ce.backward()
        loss, terms = ce.detach(), {"ce": ce.detach()}
        if len(self.anchors) > 0:
            anchor = self.anchor_change(self.anchors)
            (self.cfg.hal_lambda * anchor).backward()
            loss = loss + self.cfg.hal_lambda * anchor.detach()
            terms["anchor"] = anchor.detach()
        self.optimizer.step()
        with torch.no_grad():
            mean = self.net.features(batch.x).mean(0)
            previous = (
                torch.zeros_like(mean) if self.mean_embedding is None else self.mean_embedding
            )
            self.mean_embedding = self.cfg.beta * previous + (1 - self.cfg.beta) * mean
        self.buffer.add({"x": batch.x_clean, "y": batch.y, "experience": batch.experience_id})
        return StepOutput(loss, terms)

    def anchor_change(self, anchors: torch.Tensor) -> torch.Tensor:
        """``mean((f_theta(E) - f_theta~(E))^2)``, theta~ the SGD step the current grads give."""
        with torch.no_grad():
            stepped = {
                name: p if p.grad is None else p - self.cfg.lr * p.grad
                for name, p in self.net.named_parameters()
            }
            target = functional_call(self.net, stepped, (anchors,))
        change: torch.Tensor = (self.net(anchors) - target).pow(2).mean()
        return change

    def after_experience(self, experience: Experience) -> None:
        """Fine-tune a copy on the buffer; learn one anchor per class of the experience."""
        if len(self.buffer) == 0 or self.mean_embedding is None:
            return
        tuned = self.finetuned_copy()
        current = copy.deepcopy(self.net).requires_grad_(False)
        for label in experience.classes:
            init = torch.rand((1, *self.ctx.image_shape), generator=self.ctx.generator)
            anchor = learn_anchor(
                init.to(self.ctx.device),
                label,
                tuned,
                current,
                self.mean_embedding,
                self.cfg.gamma,
                self.cfg.steps_on_anchors,
                self.cfg.lr,
            )
            self.anchors = torch.cat([self.anchors, anchor])
            label_tensor = torch.tensor([label], device=self.anchor_labels.device)
            self.anchor_labels = torch.cat([self.anchor_labels, label_tensor])

    def finetuned_copy(self) -> nn.Module:
        """A copy of the network after ``finetuning_epochs`` SGD passes over the buffer."""
        tuned = copy.deepcopy(self.net)
        optimizer = torch.optim.SGD(tuned.parameters(), lr=self.cfg.lr)
        stored = len(self.buffer)
        for _ in range(self.cfg.finetuning_epochs):
            order = torch.randperm(stored, generator=self.ctx.generator)
            for start in range(0, stored, self.cfg.minibatch_size):
                index = order[start : start + self.cfg.minibatch_size].to(self.ctx.device)
                x = self.augment(self.buffer.field("x")[index])
                optimizer.zero_grad(set_to_none=True)
                F.cross_entropy(tuned(x), self.buffer.field("y")[index]).backward()
                optimizer.step()
        return tuned.requires_grad_(False)

    def get_extra_state(self) -> dict[str, Any]:
        """Optimiser state, anchors and the running mean embedding."""
        return {
            **super().get_extra_state(),
            "anchors": self.anchors,
            "anchor_labels": self.anchor_labels,
            "mean_embedding": self.mean_embedding,
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_extra_state` returned."""
        super().set_extra_state(state)
        self.anchors = state["anchors"]
        self.anchor_labels = state["anchor_labels"]
        self.mean_embedding = state["mean_embedding"]
