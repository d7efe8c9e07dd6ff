"""SARL: Semantic-Aware Representation Learning (Sarfraz, Arani & Zonooz, ICLR 2025)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F  # noqa: N812

from lifelong.data.stream import Experience
from lifelong.errors import ConfigError
from lifelong.losses.prototypes import cosine_groups, prototype_regularisation, semantic_contrast
from lifelong.methods.base import EpochNeed, MethodContext, register
from lifelong.methods.der import DER, DERConfig, logit_replay_loss
from lifelong.types import Batch, StepOutput


@dataclass(frozen=True)
class SARLConfig(DERConfig):
    """Settings of SARL (defaults: the reference parser; presets hold the paper values)."""

    alpha: float = 0.5
    """Weight of DER logit replay on buffer examples."""
    beta: float = 1.0
    """Weight of functional distillation from the frozen previous model."""
    op_weight: float = 0.1
    """Weight of the prototype regularisation of buffer features."""
    sm_weight: float = 0.01
    """Weight of the semantic attraction/repulsion ratio."""
    sim_thresh: float = 0.8
    """Cosine similarity above which two classes are grouped as semantically similar."""
    warmup_epochs: int = 5
    """Epochs (passes, also under ``train.iters``) of each experience after the first before
    distillation and grouping (the official scripts define 3 but never pass it, so their
    effective value is this default, 5)."""
    lr_steps: tuple[int, ...] = (70, 90)
    """Epochs at which the learning rate is divided by 10 (schedule restarts every experience)."""
    recalibration_batch_size: int = 32
    """Batch size of the end-of-experience BN re-estimation pass over the buffer."""
    feature_batch_size: int = 256
    """Batch size of the prototype passes over an experience's training data."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("beta", "op_weight", "sm_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"method.{name} must be >= 0, got {getattr(self, name)}")
        if not -1 <= self.sim_thresh <= 1:
            raise ConfigError(f"method.sim_thresh must be in [-1, 1], got {self.sim_thresh}")
        if self.warmup_epochs < 0:
            raise ConfigError(f"method.warmup_epochs must be >= 0, got {self.warmup_epochs}")

    def epochs_needed(self, experience: int) -> EpochNeed | None:
        """``warmup_epochs + 2`` epochs in every experience after the first.

        The new classes are grouped at the end of epoch ``warmup_epochs + 1``; distillation and
        the semantic ratio act from the next epoch on.
        """
        if experience == 0:
            return None
        return EpochNeed(
            self.warmup_epochs + 2,
            f"method.warmup_epochs={self.warmup_epochs}",
            "the distillation and semantic terms act",
        )


@register
class SARL(DER):
    """SARL (spec §1): DER replay + prototypes + semantic grouping + distillation.

    Per step: ``CE(f(x), y)``; with a non-empty buffer ``alpha MSE(f(x_b), z_b) + CE(f(x_b), y_b)``
    and, after the first experience, ``op_weight`` x prototype regularisation of buffer
    features; from epoch ``warmup_epochs + 1`` of later experiences, ``beta MSE(f(x), f_old(x))``
    and ``sm_weight`` x the semantic P/N ratio. After epoch ``warmup_epochs`` the running
    prototypes of the new classes are computed and grouped by cosine similarity; at the end of an
    experience the optimiser and schedule restart, the network is copied as the frozen old model,
    BN statistics are re-estimated on the buffer and the class prototypes are stored.

    Differences from the reference code: prototype and grouping passes run under no-grad; the
    running prototype sums restart each experience (the reference never resets them, which
    biases recurring classes); a batch class without a group is simply not attracted.
    """

    name = "sarl"
    config_cls = SARLConfig
    supported_settings = frozenset({"class-il", "gcil"})
    backbone_variants: ClassVar[Mapping[str, str]] = {
        "mlp": "sparse_mlp",
        "resnet18": "sparse_resnet18",
    }
    prototypes: torch.Tensor
    running: torch.Tensor
    learned: torch.Tensor
    similar: torch.Tensor

    def __init__(self, cfg: SARLConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg: SARLConfig = cfg
        self.old_net = copy.deepcopy(self.net).requires_grad_(False).train(False)
        dim = int(self.net.head.in_features)
        classes = ctx.num_classes
        self.register_buffer("prototypes", torch.zeros(classes, dim, device=ctx.device))
        self.register_buffer("running", torch.zeros(classes, dim, device=ctx.device))
        self.register_buffer("learned", torch.zeros(classes, dtype=torch.bool, device=ctx.device))
        self.register_buffer(
            "similar", torch.zeros(classes, classes, dtype=torch.bool, device=ctx.device)
        )
        self.experiences_done = 0
        self.epoch = 0
        self.grouped = False
        self.scheduler = self.make_scheduler()

    def make_scheduler(self) -> torch.optim.lr_scheduler.MultiStepLR:
        """Step decay by 0.1 at ``lr_steps`` epochs."""
        return torch.optim.lr_scheduler.MultiStepLR(self.optimizer, list(self.cfg.lr_steps), 0.1)

    def observe(self, batch: Batch) -> StepOutput:
        """The SARL objective on one batch; store (x, y, f(x)) in the buffer."""
        cfg = self.cfg
        self.optimizer.zero_grad(set_to_none=True)
        loss = batch.x.new_zeros(())
        terms: dict[str, torch.Tensor] = {}
        if len(self.buffer) > 0:
            replay = self.replay_sample()
            replay_features = self.net.features(self.augment(replay["x"]))
            replay_logits = self.net.head(replay_features)
            terms["logit_mse"] = logit_replay_loss(replay_logits, replay["logits"])
            terms["replay_ce"] = F.cross_entropy(replay_logits, replay["y"])
            loss = loss + cfg.alpha * terms["logit_mse"] + terms["replay_ce"]
            if self.experiences_done > 0:
                terms["prototype"] = prototype_regularisation(
                    F.normalize(replay_features, dim=1), replay["y"], self.prototypes, self.learned
                )
                loss = loss + cfg.op_weight * terms["prototype"]
        features = self.net.features(batch.x)
        logits = self.net.head(features)
        self.track_features(features, batch.y)
        if self.semantic_active:
            with torch.no_grad():
                old_logits = self.old_net(batch.x)
            terms["distill"] = F.mse_loss(logits, old_logits)
            terms["semantic"] = semantic_contrast(
                F.normalize(features, dim=1),
                batch.y,
                self.prototypes,
                self.learned,
                self.semantic_weights(),
            )
            loss = loss + cfg.beta * terms["distill"] + cfg.sm_weight * terms["semantic"]
        terms["ce"] = F.cross_entropy(logits, batch.y)
        loss = loss + terms["ce"]
        loss.backward()
        self.optimizer.step()
        self.store_step(batch, logits, features)
        return StepOutput(loss.detach(), {k: v.detach() for k, v in terms.items()})

    def replay_sample(self) -> dict[str, torch.Tensor]:
        """The replay minibatch: ``minibatch_size`` buffer items drawn uniformly."""
        return self.buffer.sample(self.cfg.minibatch_size, ("x", "y", "logits"))

    def store_step(self, batch: Batch, logits: torch.Tensor, features: torch.Tensor) -> None:
        """Offer the batch to the buffer with its logits (``features`` unused by SARL itself)."""
        self.store(batch, logits)

    def track_features(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """See the current batch's features before the loss terms (SARL: nothing to do).

        SARL takes its class statistics from passes over the data at epoch ends; the online
        form accumulates them here, step by step.
        """

    @property
    def semantic_active(self) -> bool:
        """Whether distillation and the semantic ratio apply (experience > 1, after warm-up)."""
        return self.experiences_done > 0 and self.epoch > self.cfg.warmup_epochs

    def semantic_weights(self) -> torch.Tensor:
        """Weights (C, C) of the semantic ratio: SARL's hard cosine-threshold groups."""
        return self.similar

    def before_experience(self, experience: Experience) -> None:
        """Start counting epochs of the new experience."""
        self.epoch = 0
        self.grouped = False

    def after_epoch(self, experience: Experience, epoch: int) -> None:
        """Step the schedule; after the warm-up, group the new classes by similarity."""
        self.scheduler.step()
        self.epoch = epoch + 1
        if epoch >= self.cfg.warmup_epochs and self.experiences_done > 0 and not self.grouped:
            new = self.new_classes(experience)
            sums, counts = self.feature_sums(experience)
            self.running[new] = sums[new] / counts[new].clamp(min=1)[:, None]
            self.similar = cosine_groups(
                self.running[new], new, self.prototypes, self.learned, self.cfg.sim_thresh
            )
            self.grouped = True
            self.net.train()

    def after_experience(self, experience: Experience) -> None:
        """Restart the optimiser, freeze the old model, re-estimate BN, store prototypes."""
        self.optimizer = self.make_optimizer()
        self.scheduler = self.make_scheduler()
        self.old_net.load_state_dict(self.net.state_dict())
        self.recalibrate_batch_norm()
        self.store_prototypes(experience)
        self.experiences_done += 1
        self.net.train()

    def store_prototypes(self, experience: Experience) -> None:
        """Set each class's prototype to its mean normalised feature over the experience."""
        sums, counts = self.feature_sums(experience)
        seen = counts > 0
        self.prototypes[seen] = sums[seen] / counts[seen][:, None]
        self.learned |= seen

    def new_classes(self, experience: Experience) -> list[int]:
        """Classes of ``experience`` without a stored prototype."""
        return [c for c in experience.classes if not bool(self.learned[c])]

    @torch.no_grad()
    def recalibrate_batch_norm(self) -> None:
        """Forward the augmented buffer in train mode (no step): only BN statistics change."""
        if len(self.buffer) == 0:
            return
        self.net.train()
        order = torch.randperm(len(self.buffer), generator=self.ctx.generator)
        stored = self.buffer.field("x")[: len(self.buffer)]
        for chunk in order.split(self.cfg.recalibration_batch_size):
            self.net(self.augment(stored[chunk.to(stored.device)]))

    @torch.no_grad()
    def feature_sums(self, experience: Experience) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-class sums of normalised features over the experience's augmented training data."""
        self.net.train(False)
        sums = torch.zeros_like(self.prototypes)
        counts = torch.zeros(len(sums), device=sums.device)
        data = experience.train
        for start in range(0, len(data), self.cfg.feature_batch_size):
            x = data.x[start : start + self.cfg.feature_batch_size].to(self.ctx.device)
            y = data.y[start : start + self.cfg.feature_batch_size].to(self.ctx.device)
            features = F.normalize(self.net.features(self.augment(x)), dim=1)
            sums.index_add_(0, y, features)
            counts.index_add_(0, y, torch.ones_like(y, dtype=counts.dtype))
        return sums, counts

    def get_extra_state(self) -> dict[str, Any]:
        """Optimiser, schedule and progress counters."""
        return {
            **super().get_extra_state(),
            "scheduler": self.scheduler.state_dict(),
            "experiences_done": self.experiences_done,
            "epoch": self.epoch,
            "grouped": self.grouped,
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_extra_state` saved."""
        super().set_extra_state(state)
        self.scheduler.load_state_dict(state["scheduler"])
        self.experiences_done = int(state["experiences_done"])
        self.epoch = int(state["epoch"])
        self.grouped = bool(state["grouped"])
