"""Supervised contrastive loss with soft positives and hard negatives (spec ``bir.md`` §6.5).

SupCon (Khosla et al., *Supervised Contrastive Learning*, NeurIPS 2020) as used on replayed data
by Millichamp & Chen (arXiv 2110.15056, 2021), optionally with the hard-negative estimator of
Robinson et al. (*Contrastive Learning with Hard Negative Samples*, ICLR 2021). ``N`` is the
number of projections (two views of ``B`` replayed samples give ``N = 2B``).
"""

from __future__ import annotations

import math

import torch


def label_positives(labels: torch.Tensor) -> torch.Tensor:
    """Hard positives ``P_ab = [y_a = y_b]`` (the diagonal is 1; the loss drops self pairs).

    Args:
        labels: Class of each projection (teacher argmax for replayed data), int64 (N,).

    Returns:
        Float matrix (N, N) of 0/1 weights.
    """
    return (labels[:, None] == labels[None, :]).float()


def score_positives(scores: torch.Tensor) -> torch.Tensor:
    """Soft positives ``P_ab = p_a · p_b`` with ``p = softmax(scores)`` (``--c-scores``).

    ``P_ab`` is the probability that two independent draws from the teacher's predictive
    distributions of ``a`` and ``b`` agree, a weight in [0, 1].

    Difference from the reference: it takes the dot product of the raw teacher logit vectors.
    Logit dot products can be negative (and are unbounded and shift-dependent: adding a
    constant to a sample's logits changes them, the prediction does not), so a "positive
    weight" built from them can be negative, which turns attraction into repulsion and can
    make ``Σ_b P_ab`` vanish or flip sign. Probabilities keep every weight non-negative.

    Args:
        scores: Teacher logits, shape (N, C) (repeat them for each view).

    Returns:
        Float matrix (N, N) of weights in [0, 1].
    """
    p = torch.softmax(scores, dim=1)
    return p @ p.T


def _log_hard_negatives(
    similarity: torch.Tensor,
    off_diagonal: torch.Tensor,
    temperature: float,
    tau_plus: float,
    beta: float,
) -> torch.Tensor:
    """Log of Robinson et al.'s debiased, importance-weighted negative term, per pair (N, N).

    For anchor ``a`` and positive ``b``, with the ``M = N − 1`` other projections ``k ≠ a`` as
    negatives and importance weights ``w_ak = softmax_k(β s_ak)``::

        Ng_ab = max((M Σ_k w_ak e^{s_ak} − τ⁺ M e^{s_ab}) / (1 − τ⁺),  M e^{−1/τ})

    computed in log space (``s_ab = f_a·f_b / τ``; the floor is the smallest value the sum of
    ``M`` negatives can take for unit vectors).
    """
    m = off_diagonal.shape[0] - 1
    tilted = ((1.0 + beta) * similarity).masked_fill(~off_diagonal, -torch.inf)
    importance = (beta * similarity).masked_fill(~off_diagonal, -torch.inf)
    log_reweighted = (
        math.log(m) + torch.logsumexp(tilted, dim=1) - torch.logsumexp(importance, dim=1)
    )[:, None]
    # log(A − τ⁺ M e^s) = log A + log(1 − τ⁺ M e^{s − log A}); non-positive values hit the floor.
    fraction = 1.0 - tau_plus * m * torch.exp(similarity - log_reweighted)
    log_debiased = log_reweighted + torch.log(fraction.clamp_min(1e-30)) - math.log(1.0 - tau_plus)
    floor = torch.full_like(log_debiased, math.log(m) - 1.0 / temperature)
    return torch.maximum(log_debiased, floor)


def supervised_contrastive(
    projections: torch.Tensor,
    positives: torch.Tensor,
    temperature: float,
    base_temperature: float = 0.07,
    hard_negatives: bool = False,
    tau_plus: float = 0.05,
    beta: float = 1.0,
) -> torch.Tensor:
    """Supervised contrastive loss with (soft) positive weights (Khosla et al. 2020; §6.5).

    With ``s_ab = f_a·f_b / τ`` and self pairs removed (``k ≠ a``)::

        L = −(τ / τ_base) · mean_a [ Σ_{b≠a} P_ab (s_ab − log Σ_{k≠a} e^{s_ak}) / Σ_{b≠a} P_ab ]

    over the anchors with ``Σ_{b≠a} P_ab > 0`` (anchors without a positive are skipped, where
    the reference SupCon would produce NaN; with no such anchor the loss is 0).

    With ``hard_negatives`` the denominator ``Σ_{k≠a} e^{s_ak}`` is replaced by Robinson et
    al.'s (ICLR 2021) estimator ``Ng_ab = max((M Σ_k w_ak e^{s_ak} − τ⁺ M e^{s_ab}) / (1 − τ⁺),
    M e^{−1/τ})`` with ``M = N − 1`` negatives ``k ≠ a`` and importance weights
    ``w_ak = softmax_k(β s_ak)`` (``--c-hard``: τ⁺ = 0.05, β = 1). The negatives are the same
    ``k ≠ a`` as in the plain denominator; the τ⁺ term debiases for the positives among them.
    Hence β = τ⁺ = 0 gives exactly the plain loss (their SimCLR form instead adds the pair's
    positive to ``Ng`` over the other ``N − 2``).

    Args:
        projections: L2-normalised projections f, shape (N, D).
        positives: Non-negative positive weights P, shape (N, N) (:func:`label_positives`,
            :func:`score_positives`); the diagonal is ignored.
        temperature: τ (``--c-temp``, default 1.0).
        base_temperature: τ_base (fixed 0.07 in the reference).
        hard_negatives: Use the hard-negative estimator.
        tau_plus: Class prior τ⁺ of the estimator, in [0, 1).
        beta: Concentration β >= 0 of the importance weights.

    Returns:
        Scalar loss.

    Raises:
        ValueError: On mismatched shapes or τ⁺ outside [0, 1).
    """
    n = projections.shape[0]
    if projections.dim() != 2 or positives.shape != (n, n):
        raise ValueError(
            f"need projections (N, D) and positives (N, N), got {tuple(projections.shape)} "
            f"and {tuple(positives.shape)}"
        )
    if not 0.0 <= tau_plus < 1.0:
        raise ValueError(f"tau_plus must be in [0, 1), got {tau_plus}")
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=projections.device)
    weights = positives.to(projections.dtype) * off_diagonal
    total = weights.sum(dim=1)
    anchors = total > 0
    if n < 2 or not bool(anchors.any()):
        return projections.new_zeros(())
    similarity = projections @ projections.T / temperature
    if hard_negatives:
        log_denominator = _log_hard_negatives(similarity, off_diagonal, temperature, tau_plus, beta)
    else:
        masked = similarity.masked_fill(~off_diagonal, -torch.inf)
        log_denominator = torch.logsumexp(masked, dim=1, keepdim=True)
    log_prob = (similarity - log_denominator).masked_fill(~off_diagonal, 0.0)
    mean_log_prob = (weights * log_prob).sum(dim=1)[anchors] / total[anchors]
    return -(temperature / base_temperature) * mean_log_prob.mean()
