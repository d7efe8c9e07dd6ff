"""Experience Replay with a reservoir buffer."""

from __future__ import annotations

import torch.nn.functional as F  # noqa: N812

from lifelong.methods.base import Method, MethodContext, register
from lifelong.methods.rehearsal import RehearsalConfig, rehearsal_buffer, with_replay
from lifelong.types import Batch, StepOutput


@register
class ER(Method):
    """Experience Replay (Riemer et al., 2019; Chaudhry et al., 2019) as in the DER paper.

    Each step concatenates the current batch with ``minibatch_size`` augmented examples drawn
    from a reservoir buffer and minimises one cross-entropy over the joint batch. The buffer
    receives the un-augmented current batch after the step.
    """

    name = "er"
    config_cls = RehearsalConfig

    def __init__(self, cfg: RehearsalConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg: RehearsalConfig = cfg
        self.buffer = rehearsal_buffer(ctx, cfg.buffer_size, logits=False)

    def observe(self, batch: Batch) -> StepOutput:
        """Minimise CE(f([x; x_buf]), [y; y_buf]), then offer the batch to the buffer."""
        x, y = with_replay(batch, self.buffer, self.cfg.minibatch_size, self.augment)
        self.optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.net(x), y)
        loss.backward()
        self.optimizer.step()
        self.buffer.add({"x": batch.x_clean, "y": batch.y, "experience": batch.experience_id})
        return StepOutput(loss.detach())
