"""Joint training: the upper bound, trained on every experience seen so far."""

from __future__ import annotations

import torch.nn.functional as F  # noqa: N812

from lifelong.methods.base import Method, MethodConfig, MethodContext, register
from lifelong.types import Batch, StepOutput


@register
class Joint(Method):
    """Cross-entropy on batches drawn from the union of all experiences seen so far.

    ``data_scope = "cumulative"`` tells the loop to train experience ``t`` on the shuffled union of
    experiences ``0..t``, so the accuracy matrix is that of an i.i.d. learner at every step and the
    last row is the joint upper bound of the DER paper. It costs ``T(T+1)/2`` experiences of
    training instead of ``T``; mammoth's joint trains once at the end, which gives the same last row
    but no meaningful matrix.
    """

    name = "joint"
    config_cls = MethodConfig
    data_scope = "cumulative"

    def __init__(self, cfg: MethodConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)

    def observe(self, batch: Batch) -> StepOutput:
        """Minimise CE(f(x), y) on a batch of the union of seen experiences."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.net(batch.x), batch.y)
        loss.backward()
        self.optimizer.step()
        return StepOutput(loss.detach())
