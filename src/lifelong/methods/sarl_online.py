"""SARL-online: SARL with warm-up in iterations and step-wise prototypes (spec §1.8)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

from lifelong.data.stream import Experience
from lifelong.errors import ConfigError
from lifelong.losses.prototypes import cosine_groups
from lifelong.methods.base import EpochNeed, MethodContext, register
from lifelong.methods.sarl import SARL, SARLConfig
from lifelong.types import Batch, StepOutput


@dataclass(frozen=True)
class SARLOnlineConfig(SARLConfig):
    """Settings of SARL-online (defaults: the reference parser; no epoch warm-up, no schedule)."""

    warmup_iters: int = 10
    """Steps at the start of each experience before features are tracked and grouping starts."""
    warmup_epochs: int = 0
    """Not used by the online form (its warm-up is ``warmup_iters``); must stay 0."""
    lr_steps: tuple[int, ...] = ()
    """Not used: the online form keeps a constant learning rate; must stay empty."""
    feature_batch_size: int = 256
    """Not used: the online form makes no pass over the data (prototypes are running means)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.warmup_iters < 0:
            raise ConfigError(f"method.warmup_iters must be >= 0, got {self.warmup_iters}")
        if self.warmup_epochs != 0:
            raise ConfigError(
                "method.warmup_epochs does not apply to sarl_online, whose warm-up is counted "
                "in steps: set method.warmup_iters instead"
            )
        if self.lr_steps:
            raise ConfigError(
                "method.lr_steps does not apply to sarl_online (constant learning rate, as in "
                "the reference): remove it or use sarl"
            )

    def epochs_needed(self, experience: int) -> EpochNeed | None:
        """Nothing: the online warm-up is counted in steps, not epochs."""
        return None


@register
class SARLOnline(SARL):
    """SARL-online (spec §1.8): the SARL objective with epoch-free warm-up and prototypes.

    The per-step objective is :class:`~lifelong.methods.sarl.SARL`'s: ``CE(f(x), y)``; with a
    non-empty buffer ``alpha MSE(f(x_b), z_b) + CE(f(x_b), y_b)`` and, after the first
    experience, ``op_weight`` x prototype regularisation of buffer features. What changes is
    the timing. The first ``warmup_iters`` steps of every experience are warm-up. From then on,
    every step first adds the batch's L2-normalised, detached features to per-class running
    sums and counts; at the first such step of an experience after the first, the running
    prototypes (sum / count) of the new classes seen so far are grouped by cosine similarity
    (``> sim_thresh``, SARL's rule), and from that step on ``beta MSE(f(x), f_old(x))`` and
    ``sm_weight`` x the semantic P/N ratio apply. At the end of an experience the optimiser is
    re-created, the network is copied as the frozen old model, BN statistics are re-estimated
    on the buffer, each new class's prototype becomes its running sum / count (no pass over the
    data), and the step counter and running sums restart. The learning rate is constant.

    MNIST-360 (``mnist-360``, setting ``general``) is one experience, so, as in the reference,
    the prototype regularisation, distillation and semantic terms never activate there: the
    method trains as DER plus a cross-entropy on the same replayed examples, on the sparse MLP,
    and its end-of-experience work comes after all training.

    Differences from the reference code (reconstructed from the spec; the reference itself was
    not available): tracking and grouping run under no-grad; a class's prototype is set only if
    it was seen after the warm-up (no 0 / 0); if no new class has been seen at the first
    post-warm-up step, grouping waits for the first step that has one; a class first seen after
    grouping has no group and is not attracted (as in SARL).
    """

    name = "sarl_online"
    config_cls = SARLOnlineConfig
    supported_settings = frozenset({"class-il", "gcil", "general"})
    running_sum: torch.Tensor
    running_count: torch.Tensor

    def __init__(self, cfg: SARLOnlineConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg: SARLOnlineConfig = cfg
        self.register_buffer("running_sum", torch.zeros_like(self.running))
        self.register_buffer("running_count", torch.zeros(len(self.running), device=ctx.device))
        self.steps = 0

    def observe(self, batch: Batch) -> StepOutput:
        """The SARL step (tracking features after the warm-up); then count the step."""
        out = super().observe(batch)
        self.steps += 1
        return out

    @property
    def warmed_up(self) -> bool:
        """Whether the current step comes after the experience's ``warmup_iters`` steps."""
        return self.steps >= self.cfg.warmup_iters

    @property
    def semantic_active(self) -> bool:
        """Whether distillation and the semantic ratio apply (experience > 1, after warm-up)."""
        return self.experiences_done > 0 and self.warmed_up

    @torch.no_grad()
    def track_features(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """After the warm-up: add the batch to the running sums; group once per experience."""
        if not self.warmed_up:
            return
        self.running_sum.index_add_(0, labels, F.normalize(features.detach(), dim=1))
        ones = torch.ones_like(labels, dtype=self.running_count.dtype)
        self.running_count.index_add_(0, labels, ones)
        if self.experiences_done > 0 and not self.grouped:
            self.group_new_classes()

    def new_seen(self) -> torch.Tensor:
        """Bool mask (C,) of classes without a prototype that have running features."""
        return ~self.learned & (self.running_count > 0)

    def group_new_classes(self) -> None:
        """Running prototypes of the new classes seen so far, grouped by cosine similarity."""
        new = torch.nonzero(self.new_seen()).flatten().tolist()
        if not new:
            return
        self.running[new] = self.running_sum[new] / self.running_count[new][:, None]
        self.similar = cosine_groups(
            self.running[new], new, self.prototypes, self.learned, self.cfg.sim_thresh
        )
        self.grouped = True

    def after_epoch(self, experience: Experience, epoch: int) -> None:
        """Nothing at epoch ends: no schedule, and grouping follows the step count."""

    def after_experience(self, experience: Experience) -> None:
        """SARL's boundary (prototypes from the running sums); then restart the step count."""
        super().after_experience(experience)
        self.running_sum.zero_()
        self.running_count.zero_()
        self.steps = 0
        self.grouped = False

    def store_prototypes(self, experience: Experience) -> None:
        """``op[c] = running sum / count`` for the new classes seen after the warm-up."""
        new = self.new_seen()
        self.prototypes[new] = self.running_sum[new] / self.running_count[new][:, None]
        self.learned |= new

    def get_extra_state(self) -> dict[str, Any]:
        """SARL's state plus the step counter of the current experience."""
        return {**super().get_extra_state(), "steps": self.steps}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_extra_state` saved."""
        super().set_extra_state(state)
        self.steps = int(state["steps"])
