"""Synaptic Intelligence: cross-entropy plus a path-integral importance-weighted penalty."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F  # noqa: N812

from lifelong.data.stream import Experience
from lifelong.errors import ConfigError
from lifelong.methods.base import Method, MethodConfig, MethodContext, register
from lifelong.nn.synaptic_intelligence import SynapticIntelligence
from lifelong.types import Batch, StepOutput

ADAM_BETAS = (0.9, 0.999)
"""Adam's betas in the BI-R and three-scenarios code."""


@dataclass(frozen=True)
class SIConfig(MethodConfig):
    """Settings of Synaptic Intelligence (the BI-R code's values are in the seq-mnist/si preset).

    The optimiser defaults to the library's plain SGD, whose learning rates the shared contract
    tests use; the BI-R code's Adam at lr 0.001 is ``optimizer: adam`` (see ``specs/bir.md``
    §1.2).
    """

    lr: float = 0.1
    """Learning rate of SGD or Adam (the BI-R code: Adam at 0.001 on split MNIST)."""
    c: float = 1.0
    """Strength of the SI penalty (BI-R split MNIST: 0.1 class-IL, 10 task-IL)."""
    epsilon: float = 0.1
    """Damping of the importance denominator (θ − θ*)² + epsilon."""
    optimizer: Literal["sgd", "adam"] = "sgd"
    """``sgd`` (uses ``momentum``) or ``adam`` (betas 0.9/0.999 as in BI-R; no ``momentum``)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (math.isfinite(self.c) and self.c >= 0):
            raise ConfigError(f"method.c must be a finite number >= 0, got {self.c}")
        if not self.epsilon > 0:
            raise ConfigError(f"method.epsilon must be positive, got {self.epsilon}")
        if self.optimizer not in ("sgd", "adam"):
            raise ConfigError(f"method.optimizer must be sgd or adam, got {self.optimizer!r}")


@register
class SI(Method):
    """Synaptic Intelligence (Zenke, Poole & Ganguli, ICML 2017) on any classifier backbone.

    Every step minimises ``CE(f(x), y) + c * Σ ω (θ − θ*)²`` on the current batch with one
    optimiser step (SGD, or Adam as in the BI-R code), then adds the step's contribution
    ``−g ⊙ Δθ`` to each parameter's path integral W (g: the gradient of the total loss used by
    the step). At the end of an experience each parameter's importance grows by
    ``W / ((θ − θ*)² + ε)`` and the anchor θ* moves to the current parameters; W restarts at
    the next experience. The state lives in a
    :class:`~lifelong.nn.synaptic_intelligence.SynapticIntelligence` component (``self.si``)
    that tracks every parameter of the network that is trainable when the method is built;
    parameters frozen later get no gradient and so no importance.

    Logged terms: ``ce`` and ``si`` (the penalty before multiplying by ``c``).

    Follows the SI of the Brain-Inspired Replay code (van de Ven et al., Nat. Commun. 2020;
    ``specs/bir.md`` §3.5): no ½ in the penalty, ω not clipped (it can be negative), θ_old
    updated after every step even for parameters without a gradient. Differences from it:

    - W and θ_old are registered buffers as well as ω and θ* (the reference keeps W and θ_old
      in local dictionaries), so a checkpoint holds the whole state.
    - The reference tracks the parameters the model lists; BI-R tracks only its encoder and
      classifier (``convE``, ``fcE``, ``classifier``), not the decoder or prior. Here the
      standalone method tracks the whole backbone; a method composing the component chooses
      the list it passes.
    - In class-IL the reference's cross-entropy covers only the classes seen so far; here, as
      for the library's other methods, it covers every output unit.
    """

    name = "si"
    config_cls = SIConfig

    def __init__(self, cfg: SIConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg: SIConfig = cfg
        trainable = [(n, p) for n, p in self.net.named_parameters() if p.requires_grad]
        self.si = SynapticIntelligence(trainable, cfg.epsilon)

    def make_optimizer(self) -> torch.optim.Optimizer:
        """Adam (betas 0.9/0.999) or SGD with momentum over the network's parameters."""
        if self.cfg.optimizer == "adam":
            return torch.optim.Adam(
                self.net.parameters(),
                lr=self.cfg.lr,
                betas=ADAM_BETAS,
                weight_decay=self.cfg.weight_decay,
            )
        return super().make_optimizer()

    def before_experience(self, experience: Experience) -> None:
        """Restart the path integral: W ← 0, θ_old ← θ."""
        self.si.begin_experience()

    def observe(self, batch: Batch) -> StepOutput:
        """Minimise CE(f(x), y) + c · Σ ω (θ − θ*)², then accumulate the path integral."""
        self.optimizer.zero_grad(set_to_none=True)
        ce = F.cross_entropy(self.net(batch.x), batch.y)
        penalty = self.si.penalty()
        loss = ce + self.cfg.c * penalty
        loss.backward()
        self.optimizer.step()
        self.si.after_step()  # after the step: reads .grad and the change the step made
        return StepOutput(loss.detach(), {"ce": ce.detach(), "si": penalty.detach()})

    def after_experience(self, experience: Experience) -> None:
        """Consolidate: ω += W / ((θ − θ*)² + ε), θ* ← θ."""
        self.si.end_experience()
