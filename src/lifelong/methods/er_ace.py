"""ER-ACE: Experience Replay with an asymmetric cross-entropy."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812

from lifelong.errors import ConfigError
from lifelong.methods.base import Method, MethodContext, register
from lifelong.methods.rehearsal import RehearsalConfig, rehearsal_buffer
from lifelong.types import Batch, StepOutput


@dataclass(frozen=True)
class ERACEConfig(RehearsalConfig):
    """Settings of ER-ACE."""

    mask_unseen: bool = True
    """Mask the logits of classes never seen yet in the incoming-batch loss too (the paper);
    False keeps them, as the authors' code and mammoth do."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.mask_unseen, bool):
            raise ConfigError(f"method.mask_unseen must be true or false, got {self.mask_unseen!r}")


def incoming_class_mask(
    labels: torch.Tensor, seen: torch.Tensor, mask_unseen: bool
) -> torch.Tensor:
    """The output units ER-ACE's incoming-batch loss keeps, shape (K,) bool.

    Args:
        labels: The incoming batch's labels, shape (B,).
        seen: Classes seen so far, the batch's included, shape (K,) bool.
        mask_unseen: Whether classes not seen yet are masked too.

    Returns:
        True for the classes present in the batch (and, unless ``mask_unseen``, for the
        classes not seen yet).
    """
    keep = torch.zeros_like(seen)
    keep[labels] = True
    return keep if mask_unseen else keep | ~seen


def asymmetric_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, keep: torch.Tensor
) -> torch.Tensor:
    """ER-ACE's incoming-data term (Caccia et al., ICLR 2022, Sec. 4, "ER-ACE").

    ``-mean_i log( exp(z_i,y_i) / sum_{c in C} exp(z_i,c) )`` where ``C`` is the set of kept
    classes: the other logits are set to the lowest finite value, so they get no gradient and
    the softmax runs over ``C`` only.

    Args:
        logits: Logits of the incoming batch, shape (B, K).
        labels: Its labels, shape (B,); each must be a kept class.
        keep: Kept output units, shape (K,) bool.

    Returns:
        Scalar loss.
    """
    masked = logits.masked_fill(~keep, torch.finfo(logits.dtype).min)
    return F.cross_entropy(masked, labels)


@register
class ERACE(Method):
    """ER-ACE (Caccia et al., ICLR 2022): ER whose incoming batch sees only its own classes.

    Each step adds two cross-entropies: the incoming batch's
    (:func:`asymmetric_cross_entropy`, with the logits of the classes absent from the batch
    masked out, so learning new classes does not push the old classes' logits down) and the
    plain cross-entropy over every output unit of ``minibatch_size`` examples replayed from a
    reservoir buffer (as soon as it holds any). The buffer receives the un-augmented batch
    after the step.

    What the references do with the mask: the paper keeps the classes of the incoming
    minibatch. The authors' code (pclucas14/AML ``methods/er_ace.py``) and mammoth
    (``models/er_ace.py``) also keep every label from the largest one seen so far upwards,
    i.e. the classes not seen yet when labels arrive in increasing order; ``mask_unseen:
    false`` keeps the classes not seen yet (by set, not by label order). Mammoth masks and
    replays only from the second task on (a plain cross-entropy, no replay, during the first); the
    authors' code and this one mask from the first batch and replay as soon as the buffer is
    not empty. The two terms are summed as in both codes (Avalanche averages them). Replay uses
    every output unit as both codes do, so units of classes not seen yet are pushed down by
    the replayed examples. Class-IL (task-IL is reported by masking at evaluation),
    generalised class-IL and the general setting; not domain-IL, where no class is new.
    """

    name = "er_ace"
    config_cls = ERACEConfig
    supported_settings = frozenset({"class-il", "gcil", "general"})
    seen_classes: torch.Tensor

    def __init__(self, cfg: ERACEConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg: ERACEConfig = cfg
        self.buffer = rehearsal_buffer(ctx, cfg.buffer_size, logits=False)
        seen = torch.zeros(ctx.num_classes, dtype=torch.bool, device=ctx.device)
        self.register_buffer("seen_classes", seen)

    def observe(self, batch: Batch) -> StepOutput:
        """ACE(f(x), y) + CE(f(x_buf), y_buf); then offer the batch to the buffer."""
        self.seen_classes[batch.y] = True
        keep = incoming_class_mask(batch.y, self.seen_classes, self.cfg.mask_unseen)
        self.optimizer.zero_grad(set_to_none=True)
        ace = asymmetric_cross_entropy(self.net(batch.x), batch.y, keep)
        loss = ace
        terms = {"ace": ace.detach()}
        if len(self.buffer) > 0:
            replay = self.buffer.sample(self.cfg.minibatch_size, ("x", "y"))
            ce = F.cross_entropy(self.net(self.augment(replay["x"])), replay["y"])
            loss = loss + ce
            terms["replay_ce"] = ce.detach()
        loss.backward()
        self.optimizer.step()
        self.buffer.add({"x": batch.x_clean, "y": batch.y, "experience": batch.experience_id})
        return StepOutput(loss.detach(), terms)
