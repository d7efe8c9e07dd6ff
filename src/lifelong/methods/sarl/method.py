"""SARL: Semantic-Aware Representation Learning (Sarfraz, Arani & Zonooz, ICLR 2025).

One algorithm with the options of its SARL_Optim variants (learned similarity, GELU backbones,
importance replay) and of SARL-online; the named variants are registry entries at the end.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F  # noqa: N812

from lifelong.data.stream import Experience
from lifelong.losses.prototypes import cosine_groups, prototype_regularisation, semantic_contrast
from lifelong.methods.base import MethodContext, register
from lifelong.methods.der import DER, logit_replay_loss
from lifelong.methods.rehearsal import rehearsal_buffer
from lifelong.methods.sarl.config import SARLConfig
from lifelong.methods.sarl.passes import (
    feature_sums,
    recalibrate_batch_norm,
    similarity_scores,
    similarity_step,
)
from lifelong.nn.semantic_similarity import (
    SemanticSimilarity,
    replay_importance,
    soft_semantic_weights,
)
from lifelong.types import Batch, StepOutput

PROGRESS = {"experiences_done": int, "epoch": int, "steps": int, "grouped": bool}
"""The progress counters a checkpoint carries, with their types."""


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

    The variants' options (learned similarity, importance replay, the online form) and the
    differences from the reference code are described in the package docstring
    (:mod:`lifelong.methods.sarl`).
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
    running_sum: torch.Tensor
    running_count: torch.Tensor

    def __init__(self, cfg: SARLConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg: SARLConfig = cfg
        self.old_net = copy.deepcopy(self.net).requires_grad_(False).train(False)
        dim = int(self.net.head.in_features)
        classes = ctx.num_classes
        for name, shape, dtype in (
            ("prototypes", (classes, dim), torch.float32),
            ("running", (classes, dim), torch.float32),
            ("learned", (classes,), torch.bool),
            ("similar", (classes, classes), torch.bool),
        ):
            self.register_buffer(name, torch.zeros(shape, dtype=dtype, device=ctx.device))
        self.experiences_done = self.epoch = self.steps = 0
        self.grouped = False
        self.anchors: list[int] = []
        self.scheduler = self.make_scheduler()
        if cfg.similarity == "learned":
            self.similarity = SemanticSimilarity(dim).to(ctx.device)
            self.similarity_optimizer = torch.optim.Adam(self.similarity.parameters(), cfg.sim_lr)
        if cfg.use_balanced_sampling:  # replaces DER's buffer: one with a feature field
            feature = {"feature": ((dim,), torch.float32)}
            self.buffer = rehearsal_buffer(ctx, cfg.buffer_size, logits=True, extra=feature)
        if cfg.online:
            self.register_buffer("running_sum", torch.zeros_like(self.running))
            self.register_buffer("running_count", torch.zeros(classes, device=ctx.device))

    def make_scheduler(self) -> torch.optim.lr_scheduler.MultiStepLR:
        """Step decay by 0.1 at ``lr_steps`` epochs."""
        return torch.optim.lr_scheduler.MultiStepLR(self.optimizer, list(self.cfg.lr_steps), 0.1)

    def observe(self, batch: Batch) -> StepOutput:
        """The SARL objective on one batch; store (x, y, f(x)) in the buffer; train ``S``."""
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
        if cfg.online:
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
        if cfg.use_balanced_sampling:
            self.store(batch, logits, {"feature": F.normalize(features.detach(), dim=1)})
        else:
            self.store(batch, logits)
        if cfg.similarity == "learned" and self.semantic_active:
            terms["similarity_bce"] = self.train_similarity()
        self.steps += 1
        return StepOutput(loss.detach(), {k: v.detach() for k, v in terms.items()})

    def replay_sample(self) -> dict[str, torch.Tensor]:
        """The replay minibatch: uniform, or by importance with ``use_balanced_sampling``."""
        fields = ("x", "y", "logits")
        if not self.cfg.use_balanced_sampling:
            return self.buffer.sample(self.cfg.minibatch_size, fields)
        return self.buffer.sample_weighted(self.importance(), self.cfg.minibatch_size, fields)

    def importance(self) -> torch.Tensor:
        """Sampling weights (len(buffer),) of the stored items (:func:`replay_importance`)."""
        size, cfg = len(self.buffer), self.cfg
        scores = similarity_scores(
            self.similarity, self.buffer.field("feature")[:size], self.buffer.field("y")[:size],
            self.prototypes, self.learned,
        )  # fmt: skip
        return replay_importance(scores, cfg.adaptive_temp, cfg.balance_alpha, cfg.min_score)

    @property
    def semantic_active(self) -> bool:
        """Whether distillation and the semantic ratio apply (experience > 1, after warm-up)."""
        if self.experiences_done == 0:
            return False
        if self.cfg.online:
            return self.steps >= self.cfg.warmup_iters
        return self.epoch > self.cfg.warmup_epochs

    def semantic_weights(self) -> torch.Tensor:
        """Weights (C, C) of the semantic ratio: hard cosine groups, or ``S``'s soft weights."""
        if self.cfg.similarity == "cosine":
            return self.similar
        return soft_semantic_weights(
            self.similarity, self.running, self.prototypes, self.learned, self.anchors
        )

    def train_similarity(self) -> torch.Tensor:
        """One Adam step of ``S`` on pairs of learned prototypes; returns the BCE before it."""
        prototypes = self.prototypes[torch.nonzero(self.learned).flatten()]
        cfg = self.cfg
        return similarity_step(
            self.similarity, self.similarity_optimizer, prototypes, cfg.sim_thresh,
            cfg.sim_pairs, self.ctx.generator,
        )  # fmt: skip

    @torch.no_grad()
    def track_features(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Online, after the warm-up: add the batch to the running sums; group once."""
        if self.steps < self.cfg.warmup_iters:
            return
        self.running_sum.index_add_(0, labels, F.normalize(features.detach(), dim=1))
        ones = torch.ones_like(labels, dtype=self.running_count.dtype)
        self.running_count.index_add_(0, labels, ones)
        if self.experiences_done == 0 or self.grouped:
            return
        new = torch.nonzero(~self.learned & (self.running_count > 0)).flatten().tolist()
        if new:  # the running prototypes of the new classes seen so far
            self.group(new, self.running_sum[new] / self.running_count[new][:, None])

    def group(self, new: list[int], running: torch.Tensor) -> None:
        """Set the new classes' running prototypes (k, d) and group them by cosine similarity."""
        self.running[new] = running
        self.similar = cosine_groups(
            running, new, self.prototypes, self.learned, self.cfg.sim_thresh
        )
        self.grouped = True

    def before_experience(self, experience: Experience) -> None:
        """Start counting epochs of the new experience; no anchors until its warm-up pass."""
        self.epoch = 0
        self.grouped = False
        self.anchors = []

    def after_epoch(self, experience: Experience, epoch: int) -> None:
        """Step the schedule; after the warm-up, group the new classes by similarity.

        Online, nothing: there is no schedule, and grouping follows the step count.
        """
        if self.cfg.online:
            return
        self.scheduler.step()
        self.epoch = epoch + 1
        if epoch >= self.cfg.warmup_epochs and self.experiences_done > 0 and not self.grouped:
            new = self.new_classes(experience)
            sums, counts = self.feature_sums(experience)
            self.group(new, sums[new] / counts[new].clamp(min=1)[:, None])
            self.anchors = new if self.cfg.similarity == "learned" else []
            self.net.train()

    def after_experience(self, experience: Experience) -> None:
        """Restart the optimiser, freeze the old model, re-estimate BN, store prototypes."""
        self.optimizer = self.make_optimizer()
        self.scheduler = self.make_scheduler()
        self.old_net.load_state_dict(self.net.state_dict())
        self.recalibrate_batch_norm()
        if self.cfg.online:  # op[c] = running sum / count of the new classes seen after warm-up
            new = ~self.learned & (self.running_count > 0)
            self.prototypes[new] = self.running_sum[new] / self.running_count[new][:, None]
            self.learned |= new
            self.running_sum.zero_()
            self.running_count.zero_()
            self.grouped = False
        else:
            self.store_prototypes(experience)
        self.experiences_done += 1
        self.steps = 0
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

    def recalibrate_batch_norm(self) -> None:
        """Re-estimate BN statistics on the augmented buffer (:func:`recalibrate_batch_norm`)."""
        stored = self.buffer.field("x")[: len(self.buffer)]
        size, generator = self.cfg.recalibration_batch_size, self.ctx.generator
        recalibrate_batch_norm(self.net, stored, self.augment, size, generator)

    def feature_sums(self, experience: Experience) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-class sums of normalised features over the experience's augmented training data."""
        return feature_sums(
            self.net, experience.train, self.augment, len(self.prototypes),
            self.cfg.feature_batch_size, self.ctx.device,
        )  # fmt: skip

    def get_extra_state(self) -> dict[str, Any]:
        """Optimisers, schedule, progress counters and the anchors of the soft weights."""
        state = {
            **super().get_extra_state(),
            "scheduler": self.scheduler.state_dict(),
            **{name: getattr(self, name) for name in PROGRESS},
            "anchors": list(self.anchors),
        }
        if self.cfg.similarity == "learned":
            state["similarity_optimizer"] = self.similarity_optimizer.state_dict()
        return state

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_extra_state` saved (``steps``: 0 in older checkpoints)."""
        super().set_extra_state(state)
        self.scheduler.load_state_dict(state["scheduler"])
        for name, kind in PROGRESS.items():
            setattr(self, name, kind(state.get(name, 0)))
        self.anchors = [int(c) for c in state.get("anchors", [])]
        if self.cfg.similarity == "learned":
            self.similarity_optimizer.load_state_dict(state["similarity_optimizer"])
