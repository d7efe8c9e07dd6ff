"""CaSSLe: distil toward a frozen copy of the previous model (spec ``cssl.md`` §2).

Fini et al., *Self-Supervised Models are Continual Learners*, CVPR 2022: the current projection,
through a predictor, is pulled toward the frozen previous model's projection of the same views.
"""

from __future__ import annotations

from typing import Any, Self

import torch

from lifelong.ssl.model import SSLModel, SSLOutput
from lifelong.ssl.strategies.base import (
    SSL_STRATEGIES,
    Alignment,
    PassBatch,
    Projection,
    Strategy,
)


@SSL_STRATEGIES.register("cassle")
class CaSSLe(Strategy):
    """L = L_SSL + ω · mean crit(g(z_all), z_all^frozen); buffer-free.

    z_all is the current projection of every view of the batch, concatenated; z^frozen is the
    frozen encoder and projector of the end of the previous experience applied to the same views.
    At each experience boundary after training has started, the frozen copy takes the current
    weights; on the first experience there is nothing to distil.

    Differences from the reference (§2, §9.5), following the original CaSSLe: no distillation on
    the first experience (the reference distils toward the random initialisation), and the frozen
    network always runs in eval mode, so its BatchNorm uses the running statistics it was frozen
    with (the reference uses batch statistics). The loss form is the reference's (crit, ω = 0.1,
    aligner width 512), not the original's per-method loss with λ = 1 and a 2048-wide predictor.
    """

    name = "cassle"

    def build_modules(self, model: SSLModel) -> None:
        """The frozen copy of the previous experience's network and the aligner."""
        self.frozen = Projection.frozen_copy(model).train(False)
        self.align = Alignment(self.cfg, model)
        self.trained = False
        """Whether an optimiser step was taken (a boundary after it freezes the model)."""
        self.active = False
        """Whether the frozen copy holds a previous experience's model."""

    def train(self, mode: bool = True) -> Self:
        """Set the mode of the strategy; the frozen network stays in eval mode."""
        super().train(mode)
        self.frozen.train(False)
        return self

    def before_experience(self, model: SSLModel) -> None:
        """Freeze a copy of the current encoder and projector (once training has started)."""
        if self.trained:
            self.frozen.load_state_dict(Projection.of(model).state_dict())
            self.active = True

    def after_forward(
        self, model: SSLModel, views: list[torch.Tensor], out: SSLOutput, batch: PassBatch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Add ω · mean crit(g(z), z^frozen) over all views once a previous model exists."""
        if not self.active:
            return out.loss, {}
        with torch.no_grad():
            target = torch.cat([self.frozen(v) for v in views])
        align = self.align(torch.cat(out.z), target)
        return out.loss + self.cfg.omega * align, {"align": align.detach()}

    def after_step(self, model: SSLModel, out: SSLOutput, batch: PassBatch) -> None:
        """Note that training has started."""
        self.trained = True

    def get_extra_state(self) -> dict[str, Any]:
        """The two flags, for checkpoints."""
        return {"trained": self.trained, "active": self.active}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_extra_state` returned."""
        self.trained, self.active = bool(state["trained"]), bool(state["active"])
