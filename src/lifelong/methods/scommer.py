"""SCoMMER: sparse coding in a dual memory system (Sarfraz, Arani & Zonooz, AAAI 2023)."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from lifelong.data.stream import Experience
from lifelong.errors import ConfigError
from lifelong.methods.base import Method, MethodContext, register
from lifelong.methods.cls_er import consistency_loss
from lifelong.methods.rehearsal import RehearsalConfig, rehearsal_buffer
from lifelong.nn.ema import ema_decay, ema_update_, update_gate
from lifelong.nn.k_winners import KWinners
from lifelong.nn.semantic_dropout import SemanticDropout, activation_layers
from lifelong.types import Batch, StepOutput


@dataclass(frozen=True)
class SCoMMERConfig(RehearsalConfig):
    """Settings of SCoMMER (defaults: the authors' parser; sparsity is the backbone's ``kw``)."""

    reg_weight: float = 0.1
    """Weight of the consistency MSE between working and long-term-memory logits on replay."""
    ema_update_freq: float = 0.7
    """Probability that the long-term memory takes an EMA step after an optimiser step."""
    ema_alpha: float = 0.999
    """Ceiling of the long-term memory's EMA decay (the decay ramps up to it)."""
    dropout_layers: tuple[int, ...] = (-1,)
    """Activation layers (k-WTA, else ReLU; network order, negative from the end) that get
    heterogeneous and semantic dropout; the authors drop in their last stage only; () for none."""
    dropout_alpha: float = 5.0
    """Heterogeneous dropout: keep probability ``exp(−alpha · count / max count)``."""
    classwise_dropout_alpha: float = 2.0
    """Semantic dropout: keep probability ``1 − exp(−alpha · class count / max class count)``."""
    dropout_warmup: int = 30
    """Class-wise probabilities are also refreshed after each epoch whose 0-based index exceeds
    this (they are always refreshed at the end of an experience)."""
    init_active_factor: float = 1.1
    """Heterogeneous dropout keeps ``min(int(kw · factor · units), units)`` units per batch."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("reg_weight", "classwise_dropout_alpha", "dropout_warmup"):
            if getattr(self, name) < 0:
                raise ConfigError(f"method.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("ema_update_freq", "ema_alpha"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"method.{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0 <= self.dropout_alpha <= 80:  # exp(-80) is still a positive float32
            raise ConfigError(f"method.dropout_alpha must be in [0, 80], got {self.dropout_alpha}")
        if self.init_active_factor <= 0:
            raise ConfigError(
                f"method.init_active_factor must be positive, got {self.init_active_factor}"
            )


@register
class SCoMMER(Method):
    """SCoMMER (Sarfraz, Arani & Zonooz, AAAI 2023): sparse coding + a long-term semantic memory.

    Per step: ``CE(f(x_b), y_b) + reg_weight · MSE(f(x_b), g(x_b))`` on a reservoir minibatch,
    where ``g`` is the long-term memory (an EMA of the working model ``f``), then ``CE(f(x), y)``
    on the batch with dropout in ``dropout_layers``: before the layer's activation (k-WTA on the
    sparse backbones, which keep the top ``kw`` fraction of units) each example's units are
    masked by :func:`dropout_mask` (semantic for a class with counts, else heterogeneous), and
    the units that fire after it are counted, overall and per class. Replayed examples see no
    dropout and are not counted. After the optimiser step the buffer takes the batch and, with
    probability ``ema_update_freq``, ``g`` takes an EMA step with decay
    ``min(1 − 1/(step + 1), ema_alpha)`` (:func:`~lifelong.nn.ema.ema_decay`, step = optimiser
    steps since the start). At the end of an experience both keep probabilities are recomputed
    from the counts (:func:`heterogeneous_keep`, :func:`classwise_keep`); the class-wise ones
    also after each epoch past ``dropout_warmup``. Counts are never reset. Predictions and
    features come from ``g``. With one epoch per experience semantic dropout reaches only classes
    that recur in later experiences (domain-IL); class-IL then gets heterogeneous dropout only.

    Differences from the authors' code: k-WTA is the backbone's (SARL's ``sparse_mlp`` /
    ``sparse_resnet18``: per unit / per location) instead of their filter-level
    ``kwinners2d_global``; dropout precedes chosen activation modules (``dropout_layers``, default
    the last) instead of ResNet stages; class-wise draws are independent per example (theirs
    share one uniform vector across the batch); the initial heterogeneous probabilities follow
    their ResNet rule on every backbone (their MLP starts uniform, but their default
    ``layerwise_dropout`` never drops an MLP layer and their MNIST branch reads an undefined
    ``stable_kw``); draws use the run's generator. The EMA covers parameters only, as theirs.
    """

    name = "scommer"
    config_cls = SCoMMERConfig
    backbone_variants: ClassVar[Mapping[str, str]] = {
        "mlp": "sparse_mlp",
        "resnet18": "sparse_resnet18",
    }

    def __init__(self, cfg: SCoMMERConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg: SCoMMERConfig = cfg
        self.buffer = rehearsal_buffer(ctx, cfg.buffer_size, logits=False)
        self.ema = copy.deepcopy(self.net).requires_grad_(False)
        self.global_step = 0
        layers = activation_layers(self.net)
        picked = {i % len(layers) for i in cfg.dropout_layers if -len(layers) <= i < len(layers)}
        if len(picked) != len(cfg.dropout_layers):
            raise ConfigError(
                f"method.dropout_layers={cfg.dropout_layers} must name distinct layers among the "
                f"network's {len(layers)} activation layers (k-WTA, else ReLU)"
            )
        self.targets = [layers[i] for i in cfg.dropout_layers]
        self.dropouts = nn.ModuleList(self.make_dropouts())

    def make_dropouts(self) -> list[SemanticDropout]:
        """Dropout state per target layer; ``kept = min(int(kw · init_active_factor · C), C)``.

        The widths ``C`` come from one forward pass of a blank input (``kw`` = 1 for a ReLU).
        """
        widths: list[int] = []
        hook = lambda _m, _i, out: widths.append(out.shape[1])  # noqa: E731
        handles = [target.register_forward_hook(hook) for target in self.targets]
        was_training = self.net.training
        with torch.no_grad():
            self.net.train(False)(torch.zeros(1, *self.ctx.image_shape, device=self.ctx.device))
        self.net.train(was_training)
        for handle in handles:
            handle.remove()
        dropouts = []
        for layer, units in zip(self.targets, widths, strict=True):
            on = layer.percent_on if isinstance(layer, KWinners) else 1.0
            kept = max(1, min(int(on * self.cfg.init_active_factor * units), units))
            dropouts.append(SemanticDropout(units, self.ctx.num_classes, kept, self.ctx.device))
        return dropouts

    def observe(self, batch: Batch) -> StepOutput:
        """Replay CE + consistency with the EMA, CE with sparse dropout; store; update the EMA."""
        cfg = self.cfg
        self.optimizer.zero_grad(set_to_none=True)
        loss = batch.x.new_zeros(())
        terms: dict[str, torch.Tensor] = {}
        if len(self.buffer) > 0:
            replay = self.buffer.sample(cfg.minibatch_size, ("x", "y"))
            x_b = self.augment(replay["x"])
            with torch.no_grad():
                target = self.ema(x_b)
            logits_b = self.net(x_b)
            terms["replay_ce"] = F.cross_entropy(logits_b, replay["y"])
            terms["consistency"] = consistency_loss(logits_b, target)
            loss = loss + terms["replay_ce"] + cfg.reg_weight * terms["consistency"]
        with self.sparse_dropout(batch.y):
            logits = self.net(batch.x)
        terms["ce"] = F.cross_entropy(logits, batch.y)
        loss = loss + terms["ce"]
        loss.backward()
        self.optimizer.step()
        self.buffer.add({"x": batch.x_clean, "y": batch.y, "experience": batch.experience_id})
        self.global_step += 1
        if update_gate(cfg.ema_update_freq, self.ctx.generator):
            ema_update_(self.ema, self.net, ema_decay(self.global_step, cfg.ema_alpha))
        return StepOutput(loss.detach(), {k: v.detach() for k, v in terms.items()})

    @contextlib.contextmanager
    def sparse_dropout(self, labels: torch.Tensor) -> Iterator[None]:
        """Within the block, mask the dropout layers' inputs and count their firing units."""
        pairs = zip(self.targets, self.layers(), strict=True)
        handles = [h for t, d in pairs for h in d.attach(t, labels, self.ctx.generator)]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def layers(self) -> list[SemanticDropout]:
        """The per-layer dropout state, typed."""
        return [cast(SemanticDropout, d) for d in self.dropouts]

    def after_epoch(self, experience: Experience, epoch: int) -> None:
        """Past the warm-up, refresh the class-wise keep probabilities."""
        if epoch > self.cfg.dropout_warmup:
            for dropout in self.layers():
                dropout.refresh(self.cfg.dropout_alpha, self.cfg.classwise_dropout_alpha, False)

    def after_experience(self, experience: Experience) -> None:
        """Recompute both keep probabilities from the counts."""
        for dropout in self.layers():
            dropout.refresh(self.cfg.dropout_alpha, self.cfg.classwise_dropout_alpha, True)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the long-term memory."""
        return cast(torch.Tensor, self.ema(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features of the long-term memory."""
        return cast(torch.Tensor, self.ema.features(x))

    def get_extra_state(self) -> dict[str, Any]:
        """Optimiser state and the global step (the EMA decay ramps with it)."""
        return {**super().get_extra_state(), "global_step": self.global_step}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore the optimiser state and the global step."""
        super().set_extra_state(state)
        self.global_step = int(state["global_step"])
