"""DER++: Dark Experience Replay plus a cross-entropy term on buffer labels."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F  # noqa: N812

from lifelong.errors import ConfigError
from lifelong.methods.base import MethodContext, register
from lifelong.methods.der import DER, DERConfig, logit_replay_loss
from lifelong.nn.joint_forward import forward_each
from lifelong.types import Batch, StepOutput


@dataclass(frozen=True)
class DERppConfig(DERConfig):
    """Settings of DER++."""

    beta: float = 0.5
    """Weight of the cross-entropy term on a second buffer sample."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beta < 0:
            raise ConfigError(f"method.beta must be >= 0, got {self.beta}")


@register
class DERpp(DER):
    """DER++ (Buzzega et al., NeurIPS 2020, Eq. 6).

    ``CE(f(x), y) + alpha MSE(f(x'), z') + beta CE(f(x''), y'')`` where ``(x', z')`` and
    ``(x'', y'')`` are two independent samples of the reservoir buffer, as in the paper's code.
    The three batches share one forward pass when the network treats examples independently
    (:func:`~lifelong.nn.joint_forward.forward_each`); the paper's code takes three.
    """

    name = "derpp"
    config_cls = DERppConfig

    def __init__(self, cfg: DERppConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg: DERppConfig = cfg

    def observe(self, batch: Batch) -> StepOutput:
        """The DER++ objective on one batch; store (x, y, f(x)) in the buffer."""
        self.optimizer.zero_grad(set_to_none=True)
        if len(self.buffer) == 0:
            logits = self.net(batch.x)
            loss = F.cross_entropy(logits, batch.y)
            terms = {"ce": loss.detach()}
        else:
            first = self.buffer.sample(self.cfg.minibatch_size, ("x", "logits"))
            second = self.buffer.sample(self.cfg.minibatch_size, ("x", "y"))
            logits, first_out, second_out = forward_each(
                self.net, batch.x, self.augment(first["x"]), self.augment(second["x"])
            )
            ce = F.cross_entropy(logits, batch.y)
            mse = logit_replay_loss(first_out, first["logits"])
            replay_ce = F.cross_entropy(second_out, second["y"])
            loss = ce + self.cfg.alpha * mse + self.cfg.beta * replay_ce
            terms = {"ce": ce.detach(), "logit_mse": mse.detach(), "replay_ce": replay_ce.detach()}
        loss.backward()
        self.optimizer.step()
        self.store(batch, logits)
        return StepOutput(loss.detach(), terms)
