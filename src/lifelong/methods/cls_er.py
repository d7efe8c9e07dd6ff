"""CLS-ER: replay with a plastic and a stable semantic memory (Arani et al., ICLR 2022)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

from lifelong.errors import ConfigError
from lifelong.methods.base import Method, MethodContext, register
from lifelong.methods.rehearsal import RehearsalConfig, rehearsal_buffer, with_replay
from lifelong.nn.ema import ema_decay, ema_update_, update_gate
from lifelong.types import Batch, StepOutput


@dataclass(frozen=True)
class CLSERConfig(RehearsalConfig):
    """Settings of CLS-ER (defaults: the authors' parser; presets hold their best values)."""

    reg_weight: float = 0.1
    """λ: weight of the consistency MSE between working and semantic-memory logits on replay."""
    plastic_model_update_freq: float = 0.9
    """r_P: probability that the plastic model takes an EMA step after an optimiser step."""
    plastic_model_alpha: float = 0.999
    """α_P: ceiling of the plastic model's EMA decay (the decay ramps up to it)."""
    stable_model_update_freq: float = 0.7
    """r_S: probability that the stable model takes an EMA step after an optimiser step."""
    stable_model_alpha: float = 0.999
    """α_S: ceiling of the stable model's EMA decay (the decay ramps up to it)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reg_weight < 0:
            raise ConfigError(f"method.reg_weight must be >= 0, got {self.reg_weight}")
        for name in ("plastic_model_update_freq", "stable_model_update_freq"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"method.{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("plastic_model_alpha", "stable_model_alpha"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"method.{name} must be in [0, 1], got {getattr(self, name)}")


def semantic_memory_logits(
    plastic: torch.Tensor, stable: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Per example, the logits of the semantic memory that is surer of the true label (CLS-ER).

    ``Z_i = stable_i`` if ``softmax(stable_i)[y_i] > softmax(plastic_i)[y_i]`` else ``plastic_i``
    (a tie goes to the plastic model, as in the authors' code).

    Args:
        plastic: Plastic-model logits, shape (B, K).
        stable: Stable-model logits, shape (B, K).
        labels: True labels, shape (B,).

    Returns:
        The chosen logits, shape (B, K).
    """
    index = labels[:, None]
    p_stable = stable.softmax(1).gather(1, index)
    p_plastic = plastic.softmax(1).gather(1, index)
    return torch.where(p_stable > p_plastic, stable, plastic)


def consistency_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CLS-ER's (and SCoMMER's) consistency term: ``mean((f(x_b) − Z)²)`` over all B x K elements.

    Args:
        logits: Working-model logits on buffer examples, shape (B, K).
        target: Semantic-memory logits on the same examples, shape (B, K); no gradient flows.

    Returns:
        Scalar loss.
    """
    return F.mse_loss(logits, target.detach())


@register
class CLSER(Method):
    """CLS-ER (Arani, Sarfraz & Zonooz, ICLR 2022): replay regularised by two semantic memories.

    Per step: ``CE(f([x; x_b]), [y; y_b]) + reg_weight · MSE(f(x_b), Z)`` over the batch and a
    reservoir minibatch, where ``Z`` is, per buffer example, the logits of the plastic or the
    stable model, whichever gives the true label the higher softmax probability
    (:func:`semantic_memory_logits`). After the optimiser step the buffer takes the batch, then
    the plastic model and then the stable model each take an EMA step of the working model's
    parameters with probability ``r_P`` / ``r_S`` (one draw each from the run's generator), with
    decay ``min(1 − 1/(step + 1), α)`` where ``step`` counts optimiser steps since the start of
    training (never reset between experiences), as in the authors' ``models/clser.py``
    (:func:`~lifelong.nn.ema.ema_decay`): the early decays are 1/2, 2/3, 3/4, … and reach ``α``
    after ``1/(1 − α) − 1`` steps (99 for 0.99, 999 for 0.999). The paper states a fixed decay
    ``α``; the ramp is the code's. Predictions and features come from the stable model.

    Differences from the authors' code: the update gates draw from the run's generator instead
    of torch's global one (so resumed runs repeat them); the consistency term reads the buffer
    rows of the one forward pass over ``[x; x_b]`` instead of a second pass over ``x_b`` alone
    (the same numbers without batch norm). As in their code, the EMA covers parameters only:
    each memory's batch-norm statistics come from its own forward passes on replay minibatches.
    """

    name = "cls_er"
    config_cls = CLSERConfig

    def __init__(self, cfg: CLSERConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg: CLSERConfig = cfg
        self.buffer = rehearsal_buffer(ctx, cfg.buffer_size, logits=False)
        self.plastic = copy.deepcopy(self.net).requires_grad_(False)
        self.stable = copy.deepcopy(self.net).requires_grad_(False)
        self.global_step = 0

    def observe(self, batch: Batch) -> StepOutput:
        """CE on batch ∪ replay + λ consistency with the surer memory; store; update memories."""
        cfg = self.cfg
        x, y = with_replay(batch, self.buffer, cfg.minibatch_size, self.augment)
        n = batch.x.shape[0]
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.net(x)
        terms = {"ce": F.cross_entropy(logits, y)}
        loss = terms["ce"]
        if x.shape[0] > n:  # replayed examples follow the batch
            with torch.no_grad():
                target = semantic_memory_logits(self.plastic(x[n:]), self.stable(x[n:]), y[n:])
            terms["consistency"] = consistency_loss(logits[n:], target)
            loss = loss + cfg.reg_weight * terms["consistency"]
        loss.backward()
        self.optimizer.step()
        self.buffer.add({"x": batch.x_clean, "y": batch.y, "experience": batch.experience_id})
        self.global_step += 1
        self.update_memories()
        return StepOutput(loss.detach(), {k: v.detach() for k, v in terms.items()})

    def update_memories(self) -> None:
        """Stochastic EMA steps: the plastic model with ``r_P``, then the stable with ``r_S``."""
        cfg, generator = self.cfg, self.ctx.generator
        if update_gate(cfg.plastic_model_update_freq, generator):
            decay = ema_decay(self.global_step, cfg.plastic_model_alpha)
            ema_update_(self.plastic, self.net, decay)
        if update_gate(cfg.stable_model_update_freq, generator):
            ema_update_(self.stable, self.net, ema_decay(self.global_step, cfg.stable_model_alpha))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the stable model."""
        out: torch.Tensor = self.stable(x)
        return out

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features of the stable model."""
        out: torch.Tensor = self.stable.features(x)
        return out

    def get_extra_state(self) -> dict[str, Any]:
        """Optimiser state and the global step (the EMA decays ramp with it)."""
        return {**super().get_extra_state(), "global_step": self.global_step}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore the optimiser state and the global step."""
        super().set_extra_state(state)
        self.global_step = int(state["global_step"])
