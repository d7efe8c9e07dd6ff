"""Continual self-supervised learning: any SSL model × any strategy, scored by a fitted probe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch

from lifelong.backbones import Backbone
from lifelong.data.stream import Experience
from lifelong.data.transforms import ImageTransform
from lifelong.errors import ConfigError
from lifelong.evaluation.probe_head import FittedProbe
from lifelong.evaluation.probe_names import PROBE_KINDS, ProbeKind
from lifelong.evaluation.probes import ProbeConfig
from lifelong.methods.base import DataScope, Method, MethodConfig, MethodContext, register
from lifelong.ssl.augment import CommonAugment
from lifelong.ssl.model import SSL_MODELS
from lifelong.ssl.optimizers import OPTIMIZERS, build_ssl_optimizer
from lifelong.ssl.options import SSLModelOptions, build_ssl_model
from lifelong.ssl.strategies.base import (
    StrategyConfig,
    buffer_kind,
    build_strategy,
)
from lifelong.types import Batch, StepOutput


@dataclass(frozen=True)
class CSSLConfig(SSLModelOptions, StrategyConfig, MethodConfig):
    """Settings of continual SSL (defaults: the reference's command line, ``cssl.md`` §5)."""

    lr: float = 0.01
    """Learning rate (constant; the reference has no schedule)."""
    momentum: float = 0.9
    """SGD momentum (Nesterov under LARS; unused by Adam)."""
    weight_decay: float = 1e-4
    """Weight decay."""
    optimizer: str = "sgd"
    """sgd, adam, or lars (clipped LARS over Nesterov SGD, for large batches)."""
    lars_eta: float = 0.005
    """LARS trust coefficient η."""
    ssl_model: str = "simsiam"
    """SSL model: simsiam, byol, barlow_twins, emp_ssl or mae (mae needs backbone vit_tiny)."""
    strategy: str = "none"
    """Strategy: none, er, lump, minred, cassle, aep, arp or apre."""
    passes: int = 3
    """Training passes per stream minibatch, each with fresh views and a fresh replay sample."""
    probe: ProbeKind = "ridge"
    """Probe behind predict(): ridge, knn or linear, fitted after each experience."""
    probe_per_class: int = 500
    """Training images per class kept for the probe (a uniform sample of those seen)."""
    probe_val_ratio: float = 0.1
    """Linear probe: fraction of each class's kept images held out to stop early (0: none)."""
    knn_k: int = 50
    """Neighbours of the knn probe."""
    ridge_alpha: float = 1.0
    """Regularisation of the ridge probe."""
    train_encoder: bool = True
    """False: no SSL update at all, the probes read the initial encoder (``--no-train``)."""
    iid: bool = False
    """Train on the IID stream: all experiences shuffled into equal parts (the upper bound)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_strategy()
        SSL_MODELS.get(self.ssl_model)
        buffer_kind(self, self.strategy)  # unknown strategy, or a buffer for a buffer-free one
        if self.passes < 1:
            raise ConfigError(f"method.passes must be at least 1, got {self.passes}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"method.optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"
            )
        if not self.lars_eta > 0:
            raise ConfigError(f"method.lars_eta must be positive, got {self.lars_eta}")
        if self.probe not in PROBE_KINDS:
            raise ConfigError(f"method.probe must be one of {', '.join(PROBE_KINDS)}")
        if not 0 <= self.probe_val_ratio < 1:
            raise ConfigError(
                f"method.probe_val_ratio must be in [0, 1), got {self.probe_val_ratio}"
            )
        if self.probe_per_class < 1 or self.knn_k < 1 or self.ridge_alpha < 0:
            raise ConfigError(
                "method.probe_per_class and method.knn_k must be >= 1, ridge_alpha >= 0"
            )
        self.ssl_config(self.ssl_model)  # the model's own validation of the ssl_* options


def as_uint8(x: torch.Tensor, transform: ImageTransform) -> torch.Tensor:
    """The uint8 images behind ``Batch.x_clean``.

    A stream without augmentation hands normalised floats; undoing the normalisation and
    rounding recovers the stored uint8 values exactly.
    """
    if x.dtype == torch.uint8:
        return x
    mean = torch.tensor(transform.mean, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(transform.std, device=x.device).view(1, -1, 1, 1)
    return ((x * std + mean) * 255.0).round_().clamp_(0, 255).to(torch.uint8)


@register
class CSSL(Method):
    """Continual SSL: an SSL model trained on the stream under a strategy; probes score it.

    One method for the spec ``cssl.md`` study (the reference ``giacomo-cgn/ocl-self-supervised``):
    the SSL model (:data:`~lifelong.ssl.model.SSL_MODELS`: SimSiam, BYOL, Barlow Twins, EMP-SSL,
    MAE) is built on the run's backbone (the encoder) and the strategy
    (:data:`~lifelong.ssl.strategies.base.SSL_STRATEGIES`: none, er, lump, minred, cassle, aep,
    arp, apre) with its buffer, so N models × M strategies need no N × M classes. Labels are
    never used for training.

    Per stream minibatch S, :meth:`observe` runs ``passes`` times: the strategy builds the pass's
    images (S, replay, or both), each image is augmented into ``num_views`` fresh views (the
    common augmentations, :mod:`lifelong.ssl.augment`, with per-sample parameters from the run's
    generator), the strategy may alter the views (LUMP), the model gives the SSL loss, the
    strategy adds its alignment term, one SGD step, then the model's EMA (BYOL) and the
    strategy's EMA / stored-feature updates. ``passes = 1`` is conventional continual learning;
    more passes with small batches and one epoch are the online setting. The optimiser (SGD, Adam
    or LARS over the model and the aligner, :mod:`lifelong.ssl.optimizers`) is built once and
    persists across experiences.

    Evaluation (§5): after each experience the probe (``ridge``, ``knn`` or ``linear``,
    :mod:`lifelong.evaluation.probe_head`) is refitted on the frozen eval-encoder's features
    (before the projector, eval mode) of a class-balanced uniform sample of the training images
    of every experience seen so far (``probe_per_class`` per class, kept in the checkpoint and
    re-extracted with the current encoder at each fit). :meth:`predict` returns the probe's class
    scores, so the loop's accuracy matrix holds probe accuracies: row t is the probe trained on
    experiences 0..t (the reference's ``upto`` probe) tested on every experience; the last row,
    averaged, is the reference's joint probe accuracy when test sets are of equal size. Ridge
    and linear probes live in the backbone's head (a checkpoint holds them as parameters); k-NN
    keeps its reference features in the checkpoint. Before the first fit the head is the
    backbone's untrained one.

    ``iid: true`` is the IID upper bound: experience t trains on the t-th of equal parts of the
    shuffled union of every experience (:func:`lifelong.running.train.training_data`), so the
    encoder sees the same images for the same number of steps in random order and the probe
    rows are the reference's probes at equally spaced steps of its ``--iid`` run; the last row
    is the ceiling of the table (the probe is fitted on experiences 0..t's images, as always).

    Differences from the reference: a minibatch of fewer than two images (the last of an epoch)
    is skipped, as BatchNorm cannot train on it (the reference's loader drops every incomplete
    batch); the probe's training set is capped per class (the linear probe's validation images,
    ``probe_val_ratio``, come out of that sample); random
    numbers come from the run's generator. The strategies list their own differences.

    Users driving their own stream call :func:`lifelong.running.train.train_experience` with this
    method and an :class:`~lifelong.data.stream.Experience` (then evaluate with the evaluator).
    """

    name = "cssl"
    nonnegative_loss = False  # SimSiam's −cos, EMP-SSL's coding rate
    config_cls = CSSLConfig

    def __init__(self, cfg: CSSLConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg: CSSLConfig = cfg
        self.model = build_ssl_model(cfg.ssl_model, cfg, self.net, ctx.generator).to(ctx.device)
        self.strategy = build_strategy(
            cfg.strategy,
            cfg,
            self.model,
            ctx.image_shape,
            ctx.transform.normalize,
            ctx.generator,
        )
        self.views = CommonAugment(ctx.transform.mean, ctx.transform.std)
        probe_cfg = ProbeConfig(ridge_alpha=cfg.ridge_alpha, knn_k=cfg.knn_k)
        self.probe = FittedProbe(
            cfg.probe, ctx.num_classes, cfg.probe_per_class, probe_cfg, ctx.device,
            cfg.probe_val_ratio,
        )  # fmt: skip
        self.optimizer = build_ssl_optimizer(
            cfg.optimizer,
            self.model.trainable_parameters() + self.strategy.trainable_parameters(),
            cfg.lr,
            cfg.momentum,
            cfg.weight_decay,
            cfg.lars_eta,
        )

    def training_scope(self) -> DataScope:
        """``iid`` with ``method.iid`` (the reference's ``--iid``), else the current experience."""
        return "iid" if self.cfg.iid else "current"

    def augment(self, x_clean: torch.Tensor) -> torch.Tensor:
        """One SSL view per image: the common augmentations, then normalisation."""
        return self.views(as_uint8(x_clean, self.ctx.transform), self.ctx.generator)

    def before_experience(self, experience: Experience) -> None:
        """Experience boundary for the strategy (CaSSLe freezes the previous model)."""
        self.strategy.before_experience(self.model)

    def observe(self, batch: Batch) -> StepOutput:
        """``passes`` × (strategy batch → views → SSL loss + alignment → SGD step → EMA)."""
        x = as_uint8(batch.x_clean, self.ctx.transform)  # the stream minibatch S
        if len(x) < 2 or not self.cfg.train_encoder:
            return StepOutput(torch.zeros((), device=x.device))
        model, strategy = self.model, self.strategy
        strategy.before_passes(model, x)
        for _ in range(self.cfg.passes):
            plan = strategy.before_forward(x)
            views = [self.augment(plan.x) for _ in range(model.num_views)]
            views = strategy.after_transforms(views, plan)
            out = model(views)
            loss, terms = strategy.after_forward(model, views, out, plan)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            model.after_step()
            strategy.after_step(model, out, plan)
        strategy.after_passes(x, out, plan)
        return StepOutput(loss.detach(), {"ssl": out.loss.detach(), **terms})

    def after_experience(self, experience: Experience) -> None:
        """Add the experience's training images to the probe's sample and refit the probe."""
        self.probe.add(experience.train, self.ctx.generator)
        encoder = self.eval_encoder()
        self.probe.fit(
            encoder, encoder.features, self.ctx.transform, self.net.head, self.ctx.generator
        )

    def eval_encoder(self) -> Backbone:
        """The encoder the probe reads (BYOL: the momentum encoder by default)."""
        return cast(Backbone, self.model.eval_encoder())

    def probe_encoder(self) -> Backbone:
        """The evaluation encoder: what every probe reads."""
        return self.eval_encoder()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Eval-encoder features of normalised inputs, (B, d_e)."""
        out: torch.Tensor = self.eval_encoder().features(x)
        return out

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The probe's class scores for normalised inputs, (B, num_classes)."""
        return self.probe.scores(self.features(x), self.net.head)
