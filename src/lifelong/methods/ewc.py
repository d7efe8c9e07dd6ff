"""Elastic Weight Consolidation, offline (one penalty per experience) and online (one running)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

from lifelong.data.stream import Experience
from lifelong.errors import ConfigError
from lifelong.methods.base import (
    Method,
    MethodConfig,
    MethodContext,
    register,
    register_variant,
)
from lifelong.nn.fisher import empirical_fisher_diagonal
from lifelong.types import Batch, StepOutput


@dataclass(frozen=True)
class EWCConfig(MethodConfig):
    """Settings of EWC and online EWC."""

    ewc_lambda: float = 100.0
    """λ of the penalty λ/2 Σ F (θ − θ*)² (mammoth's ``e_lambda`` is λ/2: it has no ½)."""
    online: bool = False
    """One running Fisher F ← γ F + F_t and one anchor (online EWC), not one per experience."""
    gamma: float = 1.0
    """Decay γ of the running Fisher of online EWC (1: a plain sum, as in the DER paper)."""
    weight_by_probability: bool = False
    """Weigh each example's squared gradient by p(y | x) in the Fisher, as mammoth's code does."""
    fisher_batch_size: int = 64
    """Examples per vectorised chunk of per-example gradients when the Fisher is computed."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (math.isfinite(self.ewc_lambda) and self.ewc_lambda >= 0):
            raise ConfigError(
                f"method.ewc_lambda must be a finite number >= 0, got {self.ewc_lambda}"
            )
        if not (math.isfinite(self.gamma) and self.gamma >= 0):
            raise ConfigError(f"method.gamma must be a finite number >= 0, got {self.gamma}")
        if not self.online and self.gamma != 1.0:
            raise ConfigError("method.gamma applies only to online EWC: use ewc_online to set it")
        if self.fisher_batch_size <= 0:
            raise ConfigError(
                f"method.fisher_batch_size must be positive, got {self.fisher_batch_size}"
            )


def ewc_penalty(
    parameters: Sequence[torch.Tensor],
    importances: Sequence[Sequence[torch.Tensor]],
    anchors: Sequence[Sequence[torch.Tensor]],
) -> torch.Tensor:
    """EWC's quadratic penalty without λ/2 (Kirkpatrick et al., PNAS 2017, Eq. 3).

    ``Σ_t Σ_i F_t,i (θ_i − θ*_t,i)²`` over the stored pairs t (one per past experience, or the
    single running pair of online EWC) and every element i of every parameter.

    Args:
        parameters: The current parameters θ, any shapes.
        importances: Per stored pair, one Fisher diagonal per parameter, of its shape.
        anchors: Per stored pair, one anchor θ* per parameter, of its shape.

    Returns:
        Scalar penalty, differentiable with respect to ``parameters`` (0 with no pair stored).
    """
    total = torch.zeros(())
    for fisher, anchor in zip(importances, anchors, strict=True):
        for theta, f, star in zip(parameters, fisher, anchor, strict=True):
            total = total + (f * (theta - star).square()).sum()
    return total


@register
class EWC(Method):
    """EWC (Kirkpatrick et al., PNAS 2017): CE + λ/2 Σ_t Σ_i F_t,i (θ_i − θ*_t,i)².

    After each experience t the method stores the empirical Fisher diagonal F_t of the
    log-likelihood of the true labels over the experience's training inputs (per-example
    gradients, see :mod:`lifelong.nn.fisher`) and the anchor θ*_t (the parameters then). Each
    step minimises the cross-entropy on the current batch (over every output unit) plus the
    penalty over all stored pairs. With ``online`` (the ``ewc_online`` entry: Schwarz et al.,
    ICML 2018, "Progress & Compress"; oEWC in the DER paper) there is one pair: the running
    Fisher F ← γ F + F_t and the latest anchor. Parameters trainable when the method is built
    are tracked.

    Logged terms: ``ce`` and ``ewc`` (the penalty before multiplying by λ/2).

    Differences from the DER paper's mammoth code (``models/ewc_on.py``):

    - mammoth's penalty is ``e_lambda Σ F (θ − θ*)²`` (no ½): its ``e_lambda`` is our λ/2;
    - mammoth weighs each example's squared gradient by p(y | x) (here an option,
      ``weight_by_probability``, off by default) and divides by ``len(loader) × batch_size``
      (here by the exact number of examples);
    - mammoth computes the Fisher in train mode on augmented inputs one example at a time; here
      in eval mode (batch norm's running statistics) on the inputs as the loop trains on them
      (augmented when the stream augments), vectorised with ``torch.func``;
    - mammoth adds the penalty's gradient by hand and logs the CE only; here the penalty is part
      of the loss and logged.
    """

    name = "ewc"
    config_cls = EWCConfig
    supported_settings = frozenset({"class-il", "domain-il"})

    def __init__(self, cfg: EWCConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg: EWCConfig = cfg
        self.tracked = [(n, p) for n, p in self.net.named_parameters() if p.requires_grad]
        self.importances: list[list[torch.Tensor]] = []
        self.anchors: list[list[torch.Tensor]] = []

    def observe(self, batch: Batch) -> StepOutput:
        """Minimise CE(f(x), y) + λ/2 Σ_t Σ_i F_t,i (θ_i − θ*_t,i)²."""
        self.optimizer.zero_grad(set_to_none=True)
        ce = F.cross_entropy(self.net(batch.x), batch.y)
        penalty = ewc_penalty([p for _, p in self.tracked], self.importances, self.anchors)
        loss = ce + self.cfg.ewc_lambda / 2 * penalty.to(ce.device)
        loss.backward()
        self.optimizer.step()
        return StepOutput(loss.detach(), {"ce": ce.detach(), "ewc": penalty.detach()})

    def after_experience(self, experience: Experience) -> None:
        """Store F_t and θ*_t (offline), or F ← γ F + F_t and θ* ← θ (online)."""
        fisher = empirical_fisher_diagonal(
            self.net, self.tracked, self.fisher_chunks(experience), self.cfg.weight_by_probability
        )
        anchor = [p.detach().clone() for _, p in self.tracked]
        if not self.cfg.online:
            self.importances.append(fisher)
            self.anchors.append(anchor)
            return
        if self.importances:
            previous = self.importances[0]
            fisher = [self.cfg.gamma * old + new for old, new in zip(previous, fisher, strict=True)]
        self.importances, self.anchors = [fisher], [anchor]

    def fisher_chunks(self, experience: Experience) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The experience's training inputs (as the loop feeds them) and labels, in chunks."""
        data, size, device = experience.train, self.cfg.fisher_batch_size, self.ctx.device
        for start in range(0, len(data), size):
            x = self.augment(data.x[start : start + size].to(device))
            yield x, data.y[start : start + size].to(device)

    def get_extra_state(self) -> dict[str, Any]:
        """Optimiser state plus the stored Fisher diagonals and anchors."""
        return {
            **super().get_extra_state(),
            "importances": self.importances,
            "anchors": self.anchors,
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_extra_state` saved."""
        super().set_extra_state(state)
        device = self.ctx.device
        self.importances = [[f.to(device) for f in pair] for pair in state["importances"]]
        self.anchors = [[a.to(device) for a in pair] for pair in state["anchors"]]


register_variant(
    "ewc_online",
    of="ewc",
    summary="one running Fisher F ← γ F + F_t and one anchor (online EWC, Schwarz et al. 2018)",
    defaults={},
    fixed={"online": True},
)
