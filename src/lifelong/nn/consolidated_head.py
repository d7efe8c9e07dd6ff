"""CWR*: consolidation of the output layer's per-class weights (spec ``ar1.md`` §3).

Lomonaco, Maltoni & Pellegrini, *Rehearsal-Free Continual Learning over Small Non-I.I.D.
Batches* (CVPR-W 2020, arXiv 1907.03799); AR1* with latent replay (Pellegrini et al. 2020) keeps
it. The head is a bias-free ``Linear(D → C)`` with weight rows ``W[c]``. Per experience:

1. :meth:`ConsolidatedHead.begin`: ``cur[c]`` counts the experience's patterns of class ``c``
   plus the replay memory's; ``W ← 0``, then ``W[c] ← cw[c]`` for every current class that is
   consolidated already.
2. training updates ``W`` (with the rest of the trainable network);
3. :meth:`ConsolidatedHead.consolidate`: with ``ḡ`` the mean of all entries of ``W[cur]`` (one
   scalar) and ``w̃_c = W[c] − ḡ``, a new class gets ``cw[c] = w̃_c`` and a consolidated one
   ``cw[c] ← (α_c cw[c] + w̃_c) / (α_c + 1)`` with ``α_c = √(past[c] / cur[c])``;
4. :meth:`ConsolidatedHead.load`: ``W[c] ← cw[c]`` for every consolidated class, for evaluation;
5. :meth:`ConsolidatedHead.end`: ``past[c] += cur[c]``.
"""

from __future__ import annotations

import torch
from torch import nn


class ConsolidatedHead(nn.Module):
    """Consolidated head weights and per-class pattern counts; all state is in buffers.

    A head with a bias (the reference's has none) is handled as one more column of ``W``: the
    bias is reset, shifted and consolidated with its row.

    Args:
        num_classes: Rows of the head.
        in_features: Columns of the head's weight (the feature width).
        bias: Whether the head has a bias.
    """

    consolidated: torch.Tensor
    has_consolidated: torch.Tensor
    past: torch.Tensor
    cur: torch.Tensor

    def __init__(self, num_classes: int, in_features: int, bias: bool = False) -> None:
        super().__init__()
        columns = in_features + int(bias)
        self.register_buffer("consolidated", torch.zeros(num_classes, columns))
        self.register_buffer("has_consolidated", torch.zeros(num_classes, dtype=torch.bool))
        self.register_buffer("past", torch.zeros(num_classes, dtype=torch.int64))
        self.register_buffer("cur", torch.zeros(num_classes, dtype=torch.int64))

    @property
    def current_classes(self) -> torch.Tensor:
        """Indices of the classes with patterns in the current experience or the memory."""
        return (self.cur > 0).nonzero().squeeze(1)

    @staticmethod
    def rows(head: nn.Linear) -> torch.Tensor:
        """The head's rows ``[W | b]`` (C, D[+1]), detached."""
        if head.bias is None:
            return head.weight.detach()
        return torch.cat([head.weight.detach(), head.bias.detach()[:, None]], dim=1)

    @staticmethod
    @torch.no_grad()
    def write(head: nn.Linear, classes: torch.Tensor, rows: torch.Tensor) -> None:
        """Set the head's rows of ``classes`` (bool mask or indices) to ``rows``."""
        width = head.weight.shape[1]
        head.weight[classes] = rows[:, :width].to(head.weight.dtype)
        if head.bias is not None:
            head.bias[classes] = rows[:, width].to(head.bias.dtype)

    @torch.no_grad()
    def begin(self, head: nn.Linear, labels: torch.Tensor) -> None:
        """Count ``labels`` (new and replayed, int64) and reset ``head`` in place."""
        self.cur.copy_(torch.bincount(labels.to(self.cur.device), minlength=len(self.cur)))
        head.weight.zero_()
        if head.bias is not None:
            head.bias.zero_()
        keep = (self.cur > 0) & self.has_consolidated
        self.write(head, keep, self.consolidated[keep])

    @torch.no_grad()
    def consolidate(self, head: nn.Linear) -> None:
        """Fold the trained rows of the current classes into the consolidated weights."""
        classes = self.current_classes
        if len(classes) == 0:
            return
        rows = self.rows(head)[classes].to(self.consolidated.dtype)
        shifted = rows - rows.mean()
        known = self.has_consolidated[classes]
        alpha = torch.sqrt(self.past[classes].float() / self.cur[classes].float())[:, None]
        merged = (alpha * self.consolidated[classes] + shifted) / (alpha + 1.0)
        self.consolidated[classes] = torch.where(known[:, None], merged, shifted)
        self.has_consolidated[classes] = True

    @torch.no_grad()
    def load(self, head: nn.Linear) -> None:
        """Copy the consolidated rows into ``head`` (the other rows keep their values)."""
        self.write(head, self.has_consolidated, self.consolidated[self.has_consolidated])

    def end(self) -> None:
        """Add the current counts to the past counts."""
        self.past += self.cur
