"""Gradient-based Sample Selection (GSS-Greedy): a buffer of examples with diverse gradients."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812

from lifelong.buffers.gss import EMPTY_BUFFER_SCORE, GSSBuffer, gss_scores
from lifelong.errors import ConfigError
from lifelong.methods.base import Method, MethodContext, register
from lifelong.methods.rehearsal import RehearsalConfig, replay_fields, with_replay
from lifelong.nn.example_gradients import example_gradients
from lifelong.types import Batch, StepOutput


@dataclass(frozen=True)
class GSSConfig(RehearsalConfig):
    """Settings of GSS (``minibatch_size``: buffer examples replayed with each update)."""

    gss_minibatch_size: int = 10
    """Random buffer examples whose gradients an offered example's gradient is compared with."""
    batch_num: int = 1
    """Updates per incoming batch, each with a fresh buffer sample (the DER code's batch_num)."""
    batch_gate: bool = False
    """Gate a full buffer by the batch's mean-loss gradient, fill with its score (the DER code)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.gss_minibatch_size <= 0:
            raise ConfigError(
                f"method.gss_minibatch_size must be positive, got {self.gss_minibatch_size}"
            )
        if self.batch_num <= 0:
            raise ConfigError(f"method.batch_num must be positive, got {self.batch_num}")


@register
class GSS(Method):
    """GSS-Greedy (Aljundi, Lin, Goujaud & Bengio, NeurIPS 2019, Algorithm 2), as in the DER paper.

    Each incoming batch gives ``batch_num`` SGD steps on the cross-entropy of the batch joined
    with ``minibatch_size`` random buffer examples (as ER). Then every example of the batch is
    offered to the :class:`~lifelong.buffers.gss.GSSBuffer` with the score
    ``c = max_j cos(g, G_j) + 1`` (``gss_scores``), where g is the example's own loss gradient
    and G the per-example gradients of ``gss_minibatch_size`` random buffer examples, all with
    the updated network on un-augmented inputs.

    Differences from the DER code (``utils/gss_buffer.py``): each offered example is scored by
    its own gradient, as in the paper's algorithm, where the DER code scores the whole batch by
    the gradient of its mean loss (``c_B``), stores free-slot fills with ``c_B`` and lets a full
    buffer consider replacements (each drawn with the example's own score, whether or not that
    score is below 1) only when ``c_B < 1``; ``batch_gate: true`` does what the DER code does.
    Per-example gradients are computed at once
    (:func:`~lifelong.nn.example_gradients.example_gradients`: for an all-linear network such as
    the DER paper's MLP, the cosines come from each layer's inputs and output gradients without
    forming the gradients; otherwise by ``torch.func.vmap``), where the DER code runs one backward
    pass per buffer example and caches it within a step; the replayed samples of the
    ``batch_num`` steps are drawn independently (the DER code walks a random permutation of the
    buffer). Both compute gradients with the network in eval mode.
    """

    name = "gss"
    config_cls = GSSConfig
    supported_settings = frozenset({"class-il", "domain-il", "general"})

    def __init__(self, cfg: GSSConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg: GSSConfig = cfg
        self.buffer = GSSBuffer(cfg.buffer_size, replay_fields(ctx), ctx.generator).to(ctx.device)

    def observe(self, batch: Batch) -> StepOutput:
        """``batch_num`` replay steps, then offer the batch scored by gradient diversity."""
        loss = torch.zeros(())
        for _ in range(self.cfg.batch_num):
            x, y = with_replay(batch, self.buffer, self.cfg.minibatch_size, self.augment)
            self.optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(self.net(x), y)
            loss.backward()
            self.optimizer.step()
        scores = torch.full((len(batch),), EMPTY_BUFFER_SCORE)
        eligible = None
        if len(self.buffer) > 0:
            compared = self.buffer.sample(self.cfg.gss_minibatch_size, ("x", "y"))
            stored = example_gradients(self.net, self.clean(compared["x"]), compared["y"])
            own = example_gradients(self.net, self.clean(batch.x_clean), batch.y)
            scores = gss_scores(own.cosines(stored))
            if self.cfg.batch_gate:
                gated = self.gated(scores, gss_scores(own.mean_cosines(stored)))
                scores, eligible = gated
        items: dict[str, torch.Tensor | int] = {
            "x": batch.x_clean,
            "y": batch.y,
            "experience": batch.experience_id,
        }
        self.buffer.add(items, scores, eligible)
        return StepOutput(loss.detach())

    def gated(
        self, own: torch.Tensor, batch_score: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The DER code's rule: scores (``c_B`` for fills, own ones after) and who may replace.

        A full buffer considers every example of the batch when ``c_B < 1`` and none otherwise,
        whatever the example's own score; the draw then uses the own score.

        Args:
            own: Each example's own score, shape (B,).
            batch_score: Score of the batch's mean-loss gradient (the mean of the per-example
                gradients), shape (1,).

        Returns:
            The scores (B,) and the eligibility (B,) to offer the batch with.
        """
        position = self.buffer.num_seen + torch.arange(len(own))
        scores = torch.where(position < self.buffer.capacity, batch_score.expand_as(own), own)
        return scores, torch.full_like(own, float(batch_score) < 1, dtype=torch.bool)

    def clean(self, x_clean: torch.Tensor) -> torch.Tensor:
        """Normalised un-augmented inputs from stored ones (uint8 or already normalised)."""
        return x_clean if x_clean.is_floating_point() else self.ctx.transform.normalize(x_clean)
