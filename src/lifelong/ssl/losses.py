"""Self-supervised losses as small pure functions (spec ``cssl.md`` §1).

B is the batch size and d the projection width. None of these functions detaches its inputs
unless its docstring says so; the stop-gradients of SimSiam and BYOL are applied by
:func:`simsiam_loss` and :func:`byol_loss`, not by the per-sample criteria, so strategies can use
the criteria as alignment losses with gradients wherever they choose.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812


def negative_cosine_per_sample(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """D(p, z) = −cos(p, z) per sample (SimSiam, Chen & He, CVPR 2021, Eq. 1).

    Gradients flow into both arguments; detach ``z`` yourself for SimSiam's stop-gradient.

    Args:
        p: Predictions, (B, d).
        z: Targets, (B, d).

    Returns:
        (B,) values in [−1, 1].
    """
    return -F.cosine_similarity(p, z, dim=1)


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Batch mean of :func:`negative_cosine_per_sample`: −(1/B) Σ_b cos(p_b, z_b); a scalar."""
    return negative_cosine_per_sample(p, z).mean()


def simsiam_loss(
    p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor
) -> torch.Tensor:
    """SimSiam's symmetric loss L = ½ D(p1, sg(z2)) + ½ D(p2, sg(z1)) (Chen & He, CVPR 2021).

    The stop-gradient sg is applied here: ``z1`` and ``z2`` are detached.

    Args:
        p1: Predictor output of view 1, (B, d).
        p2: Predictor output of view 2, (B, d).
        z1: Projector output of view 1, (B, d).
        z2: Projector output of view 2, (B, d).

    Returns:
        Scalar in [−1, 1].
    """
    return 0.5 * (negative_cosine(p1, z2.detach()) + negative_cosine(p2, z1.detach()))


def byol_distance_per_sample(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """‖p̄ − z̄‖² = 2 − 2 cos(p, z) per sample, with x̄ = x/‖x‖ (BYOL, Grill et al., NeurIPS 2020).

    Gradients flow into both arguments.

    Args:
        p: Online predictions, (B, d).
        z: Target projections, (B, d).

    Returns:
        (B,) values in [0, 4].
    """
    return 2 - 2 * F.cosine_similarity(p, z, dim=1)


def byol_loss(
    p1: torch.Tensor, p2: torch.Tensor, z1_target: torch.Tensor, z2_target: torch.Tensor
) -> torch.Tensor:
    """BYOL's symmetrised loss (Grill et al., NeurIPS 2020, Eq. 2 plus its mirror).

    L = (1/B) Σ_b [(2 − 2 cos(p1_b, z2ᵗ_b)) + (2 − 2 cos(p2_b, z1ᵗ_b))]: the **sum** of the two
    symmetric terms, as in the paper and the reference (so L lies in [0, 8]). The targets are
    detached here.

    Args:
        p1: Online prediction of view 1, (B, d).
        p2: Online prediction of view 2, (B, d).
        z1_target: Target projection of view 1, (B, d).
        z2_target: Target projection of view 2, (B, d).

    Returns:
        Scalar.
    """
    first = byol_distance_per_sample(p1, z2_target.detach())
    second = byol_distance_per_sample(p2, z1_target.detach())
    return (first + second).mean()


def standardize(z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """(z − mean) / sqrt(var + eps) per column with batch statistics (biased variance).

    This is what ``BatchNorm1d(d, affine=False)`` computes in training mode, without touching
    any running statistics. (B, d) → (B, d).
    """
    mean = z.mean(dim=0, keepdim=True)
    var = z.var(dim=0, unbiased=False, keepdim=True)
    return (z - mean) / torch.sqrt(var + eps)


def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, lambd: float = 5e-3) -> torch.Tensor:
    """Barlow Twins' redundancy-reduction loss (Zbontar et al., ICML 2021, Eq. 1).

    Each view is standardised with its batch statistics (:func:`standardize`), then
    C = z̃1ᵀ z̃2 / B (a d × d cross-correlation) and
    L = Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij². λ = 5e-3 is the reference default (the paper used
    5.1e-3 with an 8192-wide projector); no extra scale factor.

    Args:
        z1: Projections of view 1, (B, d), B ≥ 2.
        z2: Projections of view 2, (B, d).
        lambd: Weight λ of the off-diagonal (redundancy) term.

    Returns:
        Scalar.
    """
    c = standardize(z1).T @ standardize(z2) / z1.shape[0]
    diagonal = torch.diagonal(c)
    on_diag = (1 - diagonal).pow(2).sum()
    off_diag = c.pow(2).sum() - diagonal.pow(2).sum()
    return on_diag + lambd * off_diag


def total_coding_rate(z: torch.Tensor, eps: float = 0.2) -> torch.Tensor:
    """Total coding rate R(Z) = ½ logdet(I_d + d/(B·ε) ZᵀZ) (Ma et al., TPAMI 2007).

    Used by EMP-SSL (Tong et al. 2023) as in MCR² (Yu et al., NeurIPS 2020).

    Computed as ½ logdet(I_B + d/(B·ε) Z Zᵀ) when B < d (the same value by Sylvester's
    determinant identity, on the smaller matrix), in float32 at least.

    Args:
        z: Embeddings of one patch/view, (B, d).
        eps: Distortion ε (0.2 in EMP-SSL).

    Returns:
        Scalar ≥ 0; larger when the embeddings span more directions.
    """
    b, d = z.shape
    z = z.float() if z.dtype in (torch.float16, torch.bfloat16) else z
    gram = z @ z.T if b < d else z.T @ z
    eye = torch.eye(gram.shape[0], dtype=z.dtype, device=z.device)
    return 0.5 * torch.logdet(eye + (d / (b * eps)) * gram)


def emp_invariance(z_list: list[torch.Tensor]) -> torch.Tensor:
    """EMP-SSL's invariance term L_inv = −(1/n) Σ_i (1/B) Σ_b cos(z_i,b, z̄_b) (Tong et al. 2023).

    z̄ = (1/n) Σ_i z_i is the mean over the n patches; it is **not** detached (as in the EMP-SSL
    code and the reference), so gradients also flow through the mean.

    Args:
        z_list: n ≥ 1 tensors (B, d), one per patch/view.

    Returns:
        Scalar in [−1, 1].
    """
    stacked = torch.stack(z_list)
    mean = stacked.mean(dim=0, keepdim=True)
    return -F.cosine_similarity(stacked, mean.expand_as(stacked), dim=2).mean()


def emp_ssl_loss(
    z_list: list[torch.Tensor],
    lambda_inv: float = 200.0,
    lambda_tcr: float = 1.0,
    eps: float = 0.2,
) -> torch.Tensor:
    """EMP-SSL's objective L = λ_inv L_inv + λ_tcr L_tcr (Tong et al., *EMP-SSL*, 2023, Eq. 3).

    L_inv is :func:`emp_invariance` and L_tcr = −(1/n) Σ_i R(z_i) with R the
    :func:`total_coding_rate`, so minimising L pulls the patches of an image together while
    expanding the coding rate of each patch's batch. Normalising z is the caller's choice (the
    EMP-SSL model normalises, see :mod:`lifelong.ssl.emp_ssl`).

    Args:
        z_list: n tensors (B, d), one per patch/view.
        lambda_inv: Weight of the invariance term (200 in the paper and the reference).
        lambda_tcr: Weight of the coding-rate term (1).
        eps: Distortion ε of the coding rate (0.2).

    Returns:
        Scalar.
    """
    tcr = -torch.stack([total_coding_rate(z, eps) for z in z_list]).mean()
    return lambda_inv * emp_invariance(z_list) + lambda_tcr * tcr


def mae_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the masked pixels (MAE, He et al., CVPR 2022, §3).

    L = Σ (pred − target)² · mask / Σ mask, with ``mask`` broadcast to the shape of ``pred``, so
    every masked pixel value (each channel) counts once. The reference divides the mean over all
    pixels by the mask ratio r instead, which is the same when exactly a fraction r of the
    patches is masked (it is ⌈T·r⌉/T ≥ r with ⌊T(1−r)⌋ kept patches). The target is the
    dataset-normalised image, not MAE's optional per-patch normalised pixels.

    Args:
        pred: Reconstruction, (B, C, H, W) (or any shape).
        target: Image, same shape as ``pred``.
        mask: 1 where a pixel was hidden from the encoder, 0 elsewhere; broadcastable to
            ``pred`` (e.g. (B, 1, H, W)). At least one pixel must be masked.

    Returns:
        Scalar.
    """
    weight = mask.to(pred.dtype).expand_as(pred)
    return ((pred - target).pow(2) * weight).sum() / weight.sum()
