"""Losses of VAE-based generative replay (GR, BI-R): reconstruction, KL, distillation, weighting.

Spec ``bir.md`` §3 (van de Ven, Siegelmann & Tolias, Nat. Commun. 2020, and its code's
``models/vae.py`` / ``models/utils/loss_functions.py``). Every per-sample loss is averaged over
the batch. Gaussian log-densities omit the constant ``-½ log 2π`` (it cancels in the KL).

**KL normalisation quirk (kept on purpose).** The KL functions divide the batch-mean KL by the
input size ``C·H·W`` of the *original image*, as the reference does, to put it on the per-unit
scale of the averaged reconstruction loss. The relative weight of the prior term — and with it
the paper's results — depends on this, so it is kept rather than "fixed".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812


def reconstruction_bce(x_recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy, mean over input units per sample, then mean over the batch (§3.1).

    ``L = mean_b mean_d −[x_d log x̂_d + (1 − x_d) log(1 − x̂_d)]`` (BI-R on MNIST).

    Args:
        x_recon: Reconstructions in (0, 1), shape (B, ...).
        x: Targets in [0, 1], same shape.

    Returns:
        Scalar loss.
    """
    per_unit = F.binary_cross_entropy(x_recon.flatten(1), x.flatten(1), reduction="none")
    return per_unit.mean(dim=1).mean()


def reconstruction_mse_half(x_recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Half squared error, mean over units per sample, then over the batch (§3.1, CIFAR).

    ``L = mean_b mean_d ½ (x_d − x̂_d)²``: the negative unit-variance Gaussian log-likelihood
    without its constant.

    Args:
        x_recon: Reconstructions, shape (B, ...).
        x: Targets, same shape.

    Returns:
        Scalar loss.
    """
    return (0.5 * (x.flatten(1) - x_recon.flatten(1)) ** 2).mean(dim=1).mean()


def kl_standard(mu: torch.Tensor, logvar: torch.Tensor, input_size: int) -> torch.Tensor:
    """Analytic KL(N(mu, diag exp(logvar)) ‖ N(0, I)), batch mean, divided by ``input_size``.

    ``KL = −½ Σ_j (1 + logvar_j − mu_j² − exp(logvar_j))`` (Kingma & Welling 2014, App. B;
    spec §3.2).

    Args:
        mu: Posterior means, shape (B, Z).
        logvar: Posterior log-variances, shape (B, Z).
        input_size: ``C·H·W`` of the input images (the §3.2 normalisation; 1 gives nats).

    Returns:
        Scalar loss.
    """
    per_sample = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)
    return per_sample.mean() / input_size


def log_normal_diag(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``Σ_j −½ (logvar_j + (z_j − mean_j)² / exp(logvar_j))`` over the last dim (no −½log2π).

    Arguments broadcast against each other; the result drops the last dimension.
    """
    return torch.sum(-0.5 * (logvar + (z - mean).pow(2) / logvar.exp()), dim=-1)


def kl_gmm_mc(
    z: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    prior_means: torch.Tensor,
    prior_logvars: torch.Tensor,
    weights: torch.Tensor,
    input_size: int,
) -> torch.Tensor:
    """Single-sample Monte-Carlo KL to a Gaussian-mixture prior (spec §3.2).

    ``KL ≈ log q(z|x) − log p(z)`` at the re-parameterised ``z``, with
    ``log p(z) = log Σ_c π_c N(z; m_c, diag exp(v_c))`` computed as a log-sum-exp with max
    subtraction. A one-hot ``π`` (hard label ``y``) gives the class Gaussian ``N(m_y, v_y)``;
    soft targets give the mixture weighted by them. Components with ``π_c = 0`` are excluded
    exactly (the reference clamps the sum at 1e-40 instead, which only differs when every
    weighted component is ~e^-92 below an unweighted one). The batch mean is divided by
    ``input_size`` (the §3.2 quirk). Each row of ``weights`` needs a positive entry.

    Args:
        z: Re-parameterised samples, shape (B, Z).
        mu: Posterior means, shape (B, Z).
        logvar: Posterior log-variances, shape (B, Z).
        prior_means: Mixture means, shape (K, Z).
        prior_logvars: Mixture log-variances, shape (K, Z).
        weights: Mixture weights π per sample, shape (B, K), rows summing to 1.
        input_size: ``C·H·W`` of the input images (1 gives nats).

    Returns:
        Scalar loss.
    """
    log_q = log_normal_diag(z, mu, logvar)
    log_components = log_normal_diag(z[:, None, :], prior_means[None], prior_logvars[None])
    log_w = torch.where(
        weights > 0, weights.clamp_min(1e-30).log(), torch.full_like(weights, -torch.inf)
    )
    a = log_components + log_w
    a_max = a.max(dim=1, keepdim=True).values.detach()
    log_p = a_max.squeeze(1) + torch.log(torch.exp(a - a_max).sum(dim=1))
    return (log_q - log_p).mean() / input_size


def distillation_soft_targets(
    logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Knowledge distillation with soft targets (Hinton et al. 2015; spec §3.3).

    ``L = T² · mean_b Σ_c −p_c log q_c`` with ``p = softmax(teacher_logits / T)`` and
    ``log q = log_softmax(logits / T)``. A class the teacher does not know gets target 0: give
    it a ``-inf`` teacher logit, or pass fewer teacher columns and the missing trailing ones are
    zero-padded (the reference's Class-IL convention).

    Args:
        logits: Student logits, shape (B, K).
        teacher_logits: Teacher logits, shape (B, K') with K' <= K.
        temperature: T.

    Returns:
        Scalar loss.
    """
    missing = logits.shape[1] - teacher_logits.shape[1]
    if missing < 0:
        raise ValueError("teacher_logits has more classes than logits")
    if missing:
        teacher_logits = F.pad(teacher_logits, (0, missing), value=-torch.inf)
    targets = torch.softmax(teacher_logits / temperature, dim=1)
    log_q = F.log_softmax(logits / temperature, dim=1)
    per_sample = -(targets * log_q).sum(dim=1)
    return temperature**2 * per_sample.mean()


def weigh_current_and_replay(
    current: torch.Tensor, replay: torch.Tensor, experience: int
) -> torch.Tensor:
    """``(1/t) L_cur + (1 − 1/t) L_rep`` for the 1-based experience index ``t`` (spec §3.4).

    The current experience counts as one of ``t`` equally weighted ones (the reference's
    ``rnt = 1/task``); at ``t = 1`` the replay loss gets weight 0.
    """
    if experience < 1:
        raise ValueError(f"experience index t is 1-based, got {experience}")
    return current / experience + (1.0 - 1.0 / experience) * replay
