"""Fine-tuning: plain SGD on each experience in turn, the lower bound of continual learning."""

from __future__ import annotations

import torch.nn.functional as F  # noqa: N812

from lifelong.methods.base import Method, MethodConfig, MethodContext, register
from lifelong.types import Batch, StepOutput


@register
class Finetune(Method):
    """Cross-entropy on the current batch only; nothing protects earlier experiences.

    Called "SGD" in the DER paper's tables (Buzzega et al., NeurIPS 2020).
    """

    name = "finetune"
    config_cls = MethodConfig

    def __init__(self, cfg: MethodConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)

    def observe(self, batch: Batch) -> StepOutput:
        """Minimise CE(f(x), y) on the current batch."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.net(batch.x), batch.y)
        loss.backward()
        self.optimizer.step()
        return StepOutput(loss.detach())
