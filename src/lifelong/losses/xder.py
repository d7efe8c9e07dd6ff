"""X-DER's logit update, head masks and loss terms (Boschini et al., TPAMI 2022).

*Class-Incremental Continual Learning into the eXtended DER-verse* (arXiv 2201.00766); the
reference code is mammoth's ``models/xder.py``. Heads are boolean masks over the ``K`` output
units: the classes of past experiences, of the current one, and the not yet seen ("future")
classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812

from lifelong.losses.supcon import label_positives, supervised_contrastive


def transplant_logits(
    stored: torch.Tensor,
    new: torch.Tensor,
    labels: torch.Tensor,
    heads: torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """X-DER's memory update: overwrite the ``heads`` units of stored logits with new ones.

    With ``g = stored[y]`` the stored ground-truth logit (``y`` outside ``heads``) and
    ``m = max_{k ∈ heads} new_k``, the transplanted block is::

        new[heads]                        if m <= g
        new[heads] · γ g / m              if m > g and g > 0   (mammoth's ``update_logits``)
        new[heads] − m + g − (1 − γ)|g|   if m > g and g <= 0

    so its maximum is at most ``γ g`` and the ground truth stays the largest stored logit.
    The third case is ours: mammoth scales by ``γ g / m`` there too, which for ``g <= 0``
    flips the block's signs and can put it above ``g``; the shift gives the block the same
    maximum ``g − (1 − γ)|g|`` the scaling gives when ``g > 0``.

    Args:
        stored: Stored logits (B, K).
        new: The current network's logits for the same examples (B, K).
        labels: Ground-truth classes (B,), none of them in ``heads``.
        heads: Boolean mask (K,) of the units to overwrite.
        gamma: γ in (0, 1].

    Returns:
        Updated logits (B, K); the inputs are not modified.
    """
    block = new[:, heads]
    if block.shape[1] == 0:
        return stored.clone()
    gt = stored.gather(1, labels[:, None]).squeeze(1)
    top = block.max(dim=1).values
    above = top > gt
    scalable = above & (gt > 0)
    scaled = block * (gamma * gt / torch.where(scalable, top, torch.ones_like(top)))[:, None]
    shifted = block + (gt - top - (1.0 - gamma) * gt.abs())[:, None]
    rescaled = torch.where(scalable[:, None], scaled, shifted)
    out = stored.clone()
    out[:, heads] = torch.where(above[:, None], rescaled, block)
    return out


def future_heads(seen: torch.Tensor, head_size: int) -> list[torch.Tensor]:
    """The future heads: the classes not seen yet, ascending, in groups of ``head_size``.

    mammoth's heads are the ``cpt`` output units of each future task (``label // cpt``); the
    method does not know how future experiences group their classes, so the unseen units are
    chunked in ascending order, which is the same heads when labels follow the experiences.

    Args:
        seen: Boolean mask (K,) of the classes seen so far (past and current).
        head_size: Units per head (the current experience's number of classes).

    Returns:
        Index tensors, one per head; empty when every class has been seen.
    """
    unseen = (~seen).nonzero().flatten()
    if len(unseen) == 0:
        return []
    return list(unseen.split(max(head_size, 1)))


def future_preparation_loss(
    outputs: torch.Tensor, labels: torch.Tensor, heads: list[torch.Tensor], temperature: float
) -> torch.Tensor:
    """X-DER's future preparation: SupCon on each future head's normalised outputs.

    For each head ``h`` (a set of output units), the ``V`` views of the ``N`` examples give
    ``N V`` projections ``normalize(outputs[n, v, h])``; SupCon (Khosla et al. 2020,
    :func:`~lifelong.losses.supcon.supervised_contrastive`, positives: same label, the other
    views included) with ``τ = τ_base = temperature``. mammoth sums SupCon over the ``N V``
    anchors and divides by ``N`` and by the number of heads, hence::

        L = V · mean_h mean_anchors SupCon_h

    Args:
        outputs: Logits of the views, shape (N, V, K).
        labels: Class of each example, shape (N,).
        heads: Unit indices of each future head (:func:`future_heads`).
        temperature: SupCon temperature (mammoth's ``simclr_temp``, 5).

    Returns:
        Scalar loss (0 without heads).
    """
    n, views, _ = outputs.shape
    if not heads:
        return outputs.new_zeros(())
    positives = label_positives(labels.repeat_interleave(views))
    per_head = [
        supervised_contrastive(
            F.normalize(outputs[:, :, head], dim=2).reshape(n * views, -1),
            positives,
            temperature,
            base_temperature=temperature,
        )
        for head in heads
    ]
    return views * torch.stack(per_head).mean()


def margin_violation(bad: torch.Tensor, good: torch.Tensor, margin: float) -> torch.Tensor:
    """X-DER's logit constraints: ``mean over violators of (max bad + m − max good)``.

    Rows where ``max(bad) + m − max(good) <= 0`` do not count (mammoth averages over the
    violating rows only); with none the loss is 0.

    Args:
        bad: Scores that must stay below (B, P) (e.g. the future heads' logits).
        good: Scores that must lead by the margin (B, Q); ``-inf`` entries are ignored.
        margin: m.

    Returns:
        Scalar loss.
    """
    gap = bad.max(dim=1).values + margin - good.max(dim=1).values
    violated = gap > 0
    if not bool(violated.any()):
        return gap.new_zeros(())
    return gap[violated].mean()


def head_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, units: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy restricted to the output units ``units`` (mammoth's per-head slices).

    ``CE(logits[:, units], position of y among units)``: the softmax spans only those units.

    Args:
        logits: Logits (B, K).
        labels: Classes (B,), each inside ``units``.
        units: Boolean mask (K,).

    Returns:
        Scalar loss.
    """
    position = units.long().cumsum(0) - 1
    return F.cross_entropy(logits[:, units], position[labels])
