"""Regular Polytope Classifier: Experience Replay with a fixed regular-simplex classifier."""

from __future__ import annotations

import torch

from lifelong.backbones import Backbone
from lifelong.methods.base import MethodContext, register
from lifelong.methods.er import ER
from lifelong.methods.rehearsal import RehearsalConfig
from lifelong.nn.polytope import PolytopeHead


def install_polytope_head(backbone: Backbone, num_classes: int) -> PolytopeHead:
    """Replace ``backbone.head`` (``Linear(D → K)``) by a :class:`PolytopeHead`, in place.

    The projection starts as the first ``K − 1`` rows of the old head (weights and bias): the
    network computes at initialisation exactly mammoth's ``net(x)[:, :-1] @ simplex``.
    """
    old = backbone.head
    head = PolytopeHead(old.in_features, num_classes).to(old.weight.device)
    with torch.no_grad():
        head.weight.copy_(old.weight[: num_classes - 1])
        if old.bias is not None:
            head.bias.copy_(old.bias[: num_classes - 1])
        else:
            head.bias.zero_()
    backbone.head = head
    return head


@register
class RPC(ER):
    """RPC (Pernici et al., ICPR 2021): ER whose classifier is a fixed regular simplex.

    The backbone's head becomes a :class:`~lifelong.nn.polytope.PolytopeHead`: a trainable
    projection ``Linear(D → K − 1)`` (with bias) of the features, then the fixed classifier
    ``logits = z · V`` whose ``K`` columns are the unit vertices of a centred regular
    ``(K − 1)``-simplex (:func:`~lifelong.nn.polytope.simplex_vertices`; pairwise inner product
    ``−1/(K − 1)``), no bias, never trained. Every class, including those of future experiences,
    has its pre-allocated direction from the start. The step is ER's: one cross-entropy over the
    current batch joined with ``minibatch_size`` replayed examples of a reservoir buffer.

    Differences from mammoth's ``models/rpc.py``: (1) mammoth trains with ``self.net(x)`` — the
    plain, trainable ``K``-way head — and applies the simplex only in ``forward`` at evaluation,
    so its training never sees the fixed classifier; we train through it, as the paper intends.
    (2) mammoth keeps the head's ``K``-th output and drops it (``net(x)[:, :-1]``); we narrow
    the head to ``K − 1`` outputs, the same function without a dead row. (3) mammoth fills its
    buffer at the end of each experience with a class-balanced, first-come selection; we keep
    ER's reservoir sampling (the buffer changes during the experience, not only at its end).
    """

    name = "rpc"
    config_cls = RehearsalConfig

    def __init__(self, cfg: RehearsalConfig, ctx: MethodContext) -> None:
        install_polytope_head(ctx.backbone, ctx.num_classes)
        super().__init__(cfg, ctx)
