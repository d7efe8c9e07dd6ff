"""Dark Experience Replay: replay past logits with an MSE penalty."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812

from lifelong.errors import ConfigError
from lifelong.methods.base import Method, MethodContext, register
from lifelong.methods.rehearsal import RehearsalConfig, rehearsal_buffer
from lifelong.nn.joint_forward import forward_each
from lifelong.types import Batch, StepOutput


@dataclass(frozen=True)
class DERConfig(RehearsalConfig):
    """Settings of DER."""

    alpha: float = 0.3
    """Weight of the logit-matching (MSE) term on buffer examples."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.alpha < 0:
            raise ConfigError(f"method.alpha must be >= 0, got {self.alpha}")


def logit_replay_loss(logits: torch.Tensor, stored: torch.Tensor) -> torch.Tensor:
    """DER's dark-knowledge term (Buzzega et al., NeurIPS 2020, Eq. 5).

    ``mean((f(x) - z)^2)`` over all B x K elements, where ``z`` are the logits recorded when
    ``x`` entered the buffer.

    Args:
        logits: Current logits, shape (B, K).
        stored: Logits stored with the examples, shape (B, K).

    Returns:
        Scalar loss.
    """
    return F.mse_loss(logits, stored)


@register
class DER(Method):
    """DER (Buzzega et al., NeurIPS 2020): CE on the current batch + alpha x logit MSE on replay.

    The buffer stores the un-augmented input, its label, the experience id and the logits the
    network produced for the augmented input at insertion time (reservoir sampling). The current
    and replayed batches share one forward pass when the network treats examples independently
    (:func:`~lifelong.nn.joint_forward.forward_each`); the paper's code takes two.
    """

    name = "der"
    config_cls = DERConfig

    def __init__(self, cfg: DERConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg: DERConfig = cfg
        self.buffer = rehearsal_buffer(ctx, cfg.buffer_size, logits=True)

    def observe(self, batch: Batch) -> StepOutput:
        """CE(f(x), y) + alpha MSE(f(x_buf), z_buf); store (x, y, f(x)) in the buffer."""
        self.optimizer.zero_grad(set_to_none=True)
        if len(self.buffer) == 0:
            logits = self.net(batch.x)
            loss = F.cross_entropy(logits, batch.y)
            terms = {"ce": loss.detach()}
        else:
            replay = self.buffer.sample(self.cfg.minibatch_size, ("x", "logits"))
            logits, replayed = forward_each(self.net, batch.x, self.augment(replay["x"]))
            ce = F.cross_entropy(logits, batch.y)
            mse = logit_replay_loss(replayed, replay["logits"])
            loss = ce + self.cfg.alpha * mse
            terms = {"ce": ce.detach(), "logit_mse": mse.detach()}
        loss.backward()
        self.optimizer.step()
        self.store(batch, logits)
        return StepOutput(loss.detach(), terms)

    def store(
        self,
        batch: Batch,
        logits: torch.Tensor,
        extra: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        """Offer the batch to the buffer: un-augmented inputs, labels, experience id, logits.

        ``extra`` adds per-item fields (name → tensor) that the buffer was built with.
        """
        items: dict[str, torch.Tensor | int] = {
            "x": batch.x_clean,
            "y": batch.y,
            "experience": batch.experience_id,
            "logits": logits.detach(),
        }
        self.buffer.add({**items, **(extra or {})})
