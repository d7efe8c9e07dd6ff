"""Learning without Forgetting: distil the previous model's outputs on the old classes."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from lifelong.data.stream import Experience
from lifelong.errors import ConfigError
from lifelong.losses.distillation import soft_target_distillation
from lifelong.methods.base import Method, MethodConfig, MethodContext, register
from lifelong.types import Batch, StepOutput


@dataclass(frozen=True)
class LwFConfig(MethodConfig):
    """Settings of LwF."""

    alpha: float = 1.0
    """Weight of the distillation term (Li & Hoiem's λ_o)."""
    temperature: float = 2.0
    """Softmax temperature T of the distillation (mammoth's ``softmax_temp``)."""
    warmup_epochs: int = 1
    """Epochs of head-only training on the new classes before each later experience (0: none)."""
    warmup_batch_size: int = 32
    """Examples per step of the warm-up (mammoth uses the training batch size)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (math.isfinite(self.alpha) and self.alpha >= 0):
            raise ConfigError(f"method.alpha must be a finite number >= 0, got {self.alpha}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ConfigError(f"method.temperature must be positive, got {self.temperature}")
        if self.warmup_epochs < 0:
            raise ConfigError(f"method.warmup_epochs must be >= 0, got {self.warmup_epochs}")
        if self.warmup_batch_size <= 0:
            raise ConfigError(
                f"method.warmup_batch_size must be positive, got {self.warmup_batch_size}"
            )


def frozen_copy(net: nn.Module) -> nn.Module:
    """A copy of ``net`` that never trains: no gradients, eval mode."""
    previous = copy.deepcopy(net)
    previous.requires_grad_(False)
    return previous.train(False)


def seen_logits(logits: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """``logits`` with the units of classes not seen yet at −inf (they leave the softmax)."""
    return logits.masked_fill(~seen, float("-inf"))


@register
class LwF(Method):
    """LwF (Li & Hoiem, TPAMI 2017): CE on the seen classes + alpha × softened distillation.

    The previous model is a frozen copy of the network taken at the end of each experience.
    Each step minimises the cross-entropy of the current batch over the classes seen so far
    (the current experience's included) plus ``alpha × KD_T`` with KD_T the cross-entropy of
    ``softmax(z / T)`` against the previous model's ``softmax(z_prev / T)`` on the current
    inputs, both over the classes of earlier experiences
    (:func:`~lifelong.losses.distillation.soft_target_distillation`). Before each later
    experience, as in the paper, a warm-up trains only the head's new-class units on the new
    data (``warmup_epochs`` passes, plain SGD at ``lr``; the old units get no gradient).
    Task-IL is evaluated by masking the shared head to the task's classes.

    Logged terms: ``ce`` and ``distillation`` (before multiplying by alpha).

    As in the DER paper's mammoth code (``models/lwf.py``), the old classes are one group: one
    softened softmax over all of them. Li & Hoiem's multi-head network distils each old task's
    head separately; the two agree with one old task. Differences from mammoth:

    - mammoth records the previous model's logits on the un-augmented training inputs before the
      experience; here the frozen copy sees the same (augmented) input as the student, each step;
    - mammoth's ``softmax_temp`` is not used by its loss (T is fixed at 2); here T is used;
    - the warm-up batch size is a setting here (mammoth: the training batch size).
    """

    name = "lwf"
    config_cls = LwFConfig
    supported_settings = frozenset({"class-il"})
    seen: torch.Tensor
    """Classes seen so far, the current experience's included (bool, num_classes)."""
    old_classes: torch.Tensor
    """Classes of the experiences before the current one (bool, num_classes)."""

    def __init__(self, cfg: LwFConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg: LwFConfig = cfg
        self.previous = frozen_copy(self.net)
        seen = torch.zeros(ctx.num_classes, dtype=torch.bool, device=ctx.device)
        self.register_buffer("seen", seen)
        self.register_buffer("old_classes", torch.zeros_like(self.seen))

    def observe(self, batch: Batch) -> StepOutput:
        """Minimise CE over seen classes + alpha · KD_T(f(x), f_prev(x)) over old classes."""
        self.seen[batch.y] = True
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.net(batch.x)
        ce = F.cross_entropy(seen_logits(logits, self.seen), batch.y)
        loss, terms = ce, {"ce": ce.detach()}
        if self.old_classes.any():
            with torch.no_grad():
                teacher = self.previous.train(False)(batch.x)
            old = self.old_classes
            kd = soft_target_distillation(logits[:, old], teacher[:, old], self.cfg.temperature)
            loss = loss + self.cfg.alpha * kd
            terms["distillation"] = kd.detach()
        loss.backward()
        self.optimizer.step()
        return StepOutput(loss.detach(), terms)

    def before_experience(self, experience: Experience) -> None:
        """Warm up the head's units of the experience's new classes (not before the first)."""
        new = [c for c in experience.classes if not bool(self.seen[c])]
        self.seen[list(experience.classes)] = True
        if not self.old_classes.any() or not new or self.cfg.warmup_epochs == 0:
            return
        self.warm_up_head(experience, torch.tensor(new, device=self.ctx.device))

    def warm_up_head(self, experience: Experience, new: torch.Tensor) -> None:
        """SGD on the head only, CE over the ``new`` classes' units, features held fixed.

        Runs in eval mode (batch norm keeps its statistics), on the examples of new classes.
        """
        head: nn.Linear = self.net.head
        optimizer = torch.optim.SGD(head.parameters(), lr=self.cfg.lr)
        position = torch.full((self.ctx.num_classes,), -1, dtype=torch.int64)
        position[new.cpu()] = torch.arange(len(new))
        data = experience.train.select(position[experience.train.y] >= 0)
        was_training = self.net.training
        self.net.train(False)
        for _ in range(self.cfg.warmup_epochs):
            order = torch.randperm(len(data), generator=self.ctx.generator)
            for index in order.split(self.cfg.warmup_batch_size):
                x = self.augment(data.x[index].to(self.ctx.device))
                y = position[data.y[index]].to(self.ctx.device)
                with torch.no_grad():
                    features = self.net.features(x)
                optimizer.zero_grad(set_to_none=True)
                F.cross_entropy(head(features)[:, new], y).backward()
                optimizer.step()
        self.net.train(was_training)

    def after_experience(self, experience: Experience) -> None:
        """The previous model becomes the current one; the seen classes become the old ones."""
        self.seen[list(experience.classes)] = True
        self.previous.load_state_dict(self.net.state_dict())
        self.old_classes.copy_(self.seen)
