"""SARL with a learned semantic similarity (SARL_Optim ``sarl_enhanced``, spec §2.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

from lifelong.data.stream import Experience
from lifelong.errors import ConfigError
from lifelong.methods.base import MethodContext, register
from lifelong.methods.sarl import SARL, SARLConfig
from lifelong.nn.semantic_similarity import SemanticSimilarity, similarity_targets
from lifelong.types import Batch, StepOutput


@dataclass(frozen=True)
class SARLEnhancedConfig(SARLConfig):
    """Settings of SARL with a learned similarity (``sim_thresh`` now defines its targets)."""

    sim_lr: float = 0.001
    """Adam learning rate of the similarity network."""
    sim_pairs: int = 256
    """Prototype pairs per similarity-network update (all pairs when there are fewer)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sim_lr < 0:
            raise ConfigError(f"method.sim_lr must be >= 0, got {self.sim_lr}")
        if self.sim_pairs <= 0:
            raise ConfigError(f"method.sim_pairs must be positive, got {self.sim_pairs}")


@register
class SARLEnhanced(SARL):
    """SARL whose hard cosine groups are replaced by soft weights from a trained network ``S``.

    The SARL objective is unchanged except the semantic term, which becomes the weighted ratio
    ``sum_c sum_r w_cr d(c, r) / sum_r (1 - w_cr) d(c, r)`` with ``w_cr = S(running_c, p_r)``:
    ``running_c`` is the new class's prototype from the warm-up pass, ``p_r`` the stored prototype
    of a learned class or the running prototype of a new one. Each step in which the semantic
    term is active, ``S`` takes one Adam step (``sim_lr``) on binary cross-entropy over up to
    ``sim_pairs`` pairs of learned-class prototypes, with target 1 when their cosine similarity
    exceeds ``sim_thresh`` (and for a class with itself), 0 otherwise.

    Differences from the reference code, whose ``S`` never trains: its collection of learned
    prototypes tests whether a class id occurs as a *value* in the prototype tensor, so it finds
    at most one prototype and returns early. Its targets (cos > 0.5 → 1, cos < -0.5 → 0) would
    also have no negatives on non-negative k-WTA features. We label pairs by SARL's own grouping
    rule (``sim_thresh``), so ``S`` learns a smooth version of SARL's groups that also scores
    pairs with running prototypes. ``S`` runs without dropout when it produces weights; the
    reference leaves dropout on, which makes the weights noisy.
    """

    name = "sarl_enhanced"
    config_cls = SARLEnhancedConfig

    def __init__(self, cfg: SARLEnhancedConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg: SARLEnhancedConfig = cfg
        self.similarity = SemanticSimilarity(self.prototypes.shape[1]).to(ctx.device)
        self.similarity_optimizer = torch.optim.Adam(self.similarity.parameters(), lr=cfg.sim_lr)
        self.anchors: list[int] = []

    def observe(self, batch: Batch) -> StepOutput:
        """The SARL step with soft semantic weights, then one update of the similarity net."""
        out = super().observe(batch)
        if not self.semantic_active:
            return out
        return StepOutput(out.loss, {**out.terms, "similarity_bce": self.train_similarity()})

    def train_similarity(self) -> torch.Tensor:
        """One Adam step of ``S`` on pairs of learned prototypes; returns the BCE before it."""
        learned = torch.nonzero(self.learned).flatten()
        prototypes = self.prototypes[learned]
        targets = similarity_targets(prototypes, self.cfg.sim_thresh)
        k = len(learned)
        if k * k <= self.cfg.sim_pairs:  # every ordered pair, self-pairs included
            pairs = torch.cartesian_prod(torch.arange(k), torch.arange(k)).T
        else:
            pairs = torch.randint(0, k, (2, self.cfg.sim_pairs), generator=self.ctx.generator)
        first, second = pairs.to(prototypes.device)
        self.similarity.train()
        loss = F.binary_cross_entropy_with_logits(
            self.similarity.logits(prototypes[first], prototypes[second]), targets[first, second]
        )
        self.similarity_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.similarity_optimizer.step()
        return loss.detach()

    @torch.no_grad()
    def semantic_weights(self) -> torch.Tensor:
        """``w[c, r] = S(running_c, p_r)`` for the new classes ``c``; 0 elsewhere and on c = r."""
        classes = len(self.prototypes)
        weights = torch.zeros(classes, classes, device=self.prototypes.device)
        if not self.anchors:
            return weights
        candidates = torch.nonzero(self.learned).flatten().tolist() + self.anchors
        table = torch.where(self.learned[:, None], self.prototypes, self.running)
        anchors = torch.tensor(self.anchors, device=weights.device)
        columns = torch.tensor(candidates, device=weights.device)
        rows = anchors.repeat_interleave(len(columns))
        pairs = columns.repeat(len(anchors))
        self.similarity.train(False)
        scores = self.similarity(self.running[rows], table[pairs])
        weights[rows, pairs] = scores
        weights[anchors, anchors] = 0.0
        return weights

    def before_experience(self, experience: Experience) -> None:
        """No semantic anchors until the warm-up pass of this experience."""
        super().before_experience(experience)
        self.anchors = []

    def after_epoch(self, experience: Experience, epoch: int) -> None:
        """SARL's warm-up pass; its new classes become the anchors of the soft weights."""
        was_grouped = self.grouped
        super().after_epoch(experience, epoch)
        if self.grouped and not was_grouped:
            self.anchors = self.new_classes(experience)

    def get_extra_state(self) -> dict[str, Any]:
        """SARL's state plus the similarity optimiser and the anchors."""
        return {
            **super().get_extra_state(),
            "similarity_optimizer": self.similarity_optimizer.state_dict(),
            "anchors": list(self.anchors),
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_extra_state` saved."""
        super().set_extra_state(state)
        self.similarity_optimizer.load_state_dict(state["similarity_optimizer"])
        self.anchors = [int(c) for c in state["anchors"]]
