"""LwF.MC: multi-class Learning without Forgetting with sigmoid outputs (the iCaRL paper)."""

from __future__ import annotations

import torch

from lifelong.data.stream import Experience
from lifelong.losses.distillation import (
    multiclass_distillation_targets,
    sigmoid_distillation_loss,
)
from lifelong.methods.base import Method, MethodConfig, MethodContext, register
from lifelong.methods.lwf import frozen_copy
from lifelong.types import Batch, StepOutput


@register
class LwFMC(Method):
    """LwF.MC (Rebuffi et al., iCaRL, CVPR 2017): sigmoid BCE with distilled targets, no exemplars.

    The previous model is a frozen copy of the network taken at the end of each experience.
    Each step minimises one binary cross-entropy over the output units of the classes seen so
    far (the current experience's included): the targets are the previous model's sigmoid
    outputs ``σ(f_prev(x))`` for the classes of earlier experiences and the one-hot label for
    the others (:func:`~lifelong.losses.distillation.multiclass_distillation_targets`). In the
    first experience this is plain multi-label BCE on one-hot labels. Prediction is the argmax
    of the logits (iCaRL's network output, not its nearest-mean-of-exemplars classifier, which
    LwF.MC has no exemplars for).

    Logged terms: ``bce`` (the whole loss).

    As in the iCaRL paper the BCE is summed over the classes (and averaged over the batch); the
    DER paper's mammoth code (``models/lwf_mc.py``) averages it over the B × K elements, so its
    learning rate acts K times smaller. mammoth's ``wd_reg`` adds
    ``wd_reg · Σ θ²`` to the loss; here the same L2 term is the SGD ``weight_decay`` = 2 ·
    ``wd_reg``.
    """

    name = "lwf_mc"
    config_cls = MethodConfig
    supported_settings = frozenset({"class-il"})
    seen: torch.Tensor
    """Classes seen so far, the current experience's included (bool, num_classes)."""
    old_classes: torch.Tensor
    """Classes of the experiences before the current one (bool, num_classes)."""

    def __init__(self, cfg: MethodConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)
        self.previous = frozen_copy(self.net)
        seen = torch.zeros(ctx.num_classes, dtype=torch.bool, device=ctx.device)
        self.register_buffer("seen", seen)
        self.register_buffer("old_classes", torch.zeros_like(seen))

    def observe(self, batch: Batch) -> StepOutput:
        """Minimise BCE(f(x), [σ(f_prev(x)) on old classes; one-hot(y) on new]) on seen classes."""
        self.seen[batch.y] = True
        with torch.no_grad():  # before the second experience no target comes from it
            teacher = (
                self.previous.train(False)(batch.x)
                if self.old_classes.any()
                else batch.x.new_zeros(len(batch), self.ctx.num_classes)
            )
        targets = multiclass_distillation_targets(batch.y, teacher, self.old_classes)
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.net(batch.x)
        loss = sigmoid_distillation_loss(logits[:, self.seen], targets[:, self.seen])
        loss.backward()
        self.optimizer.step()
        return StepOutput(loss.detach(), {"bce": loss.detach()})

    def before_experience(self, experience: Experience) -> None:
        """The experience's classes join the trained output units."""
        self.seen[list(experience.classes)] = True

    def after_experience(self, experience: Experience) -> None:
        """The previous model becomes the current one; the seen classes become the old ones."""
        self.seen[list(experience.classes)] = True
        self.previous.load_state_dict(self.net.state_dict())
        self.old_classes.copy_(self.seen)
