"""Feature-exaggeration losses on replayed data (spec ``bir.md`` §6.2-§6.4).

Millichamp & Chen, *Brain-inspired feature exaggeration in generative replay for continual
learning* (arXiv 2110.15056, 2021), an extension of Brain-Inspired Replay (van de Ven,
Siegelmann & Tolias, Nat. Commun. 2020). Every term acts on one replay batch of size ``B``:

* :func:`competitors` picks, from the teacher's logits, each sample's own class (top-1), its
  competing class (runner-up) and in-batch representatives of the classes (§6.2);
* :func:`distribution_repulsion` pushes a sample's encoder posterior away from its competitor's
  (inverse KL or "JS" divergence, §6.3);
* :func:`reconstruction_repulsion` / :func:`reconstruction_attraction` push the reconstruction of
  a replayed sample away from the competing class's replayed features / towards its own
  class's (§6.4).

Gaussians are diagonal and given by ``mu`` and ``logvar`` of shape (B, Z).
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F  # noqa: N812

Divergence = Literal["kl", "js"]
ReconstructionLoss = Literal["mse", "bce"]


class Competitors(NamedTuple):
    """Result of :func:`competitors`; all tensors live on the scores' device.

    Attributes:
        own: Teacher top-1 class of each sample, int64 (B,).
        rival: Teacher runner-up (competing) class of each sample, int64 (B,).
        active: Bool (B,): the sample is confusable (or the factor is off) AND its competing
            class is present in the batch as some sample's own class.
        own_index: Batch index of the random representative of the sample's own class,
            int64 (B,); always valid (the sample itself is a member of its own class).
        rival_index: Batch index of the random representative of the competing class,
            int64 (B,); ``-1`` where ``active`` is False.
        present: Bool (C,): which classes occur as some sample's own class.
    """

    own: torch.Tensor
    rival: torch.Tensor
    active: torch.Tensor
    own_index: torch.Tensor
    rival_index: torch.Tensor
    present: torch.Tensor


def competitors(
    teacher_scores: torch.Tensor,
    use_rep_factor: bool,
    rep_factor: float,
    generator: torch.Generator,
) -> Competitors:
    """Own class, competing class, confusion mask and in-batch representatives (§6.2).

    With ``top = topk(teacher_scores, 2)``, sample ``i``'s own class is ``top[i, 0]`` (the class
    used to generate the sample is ignored, as in the reference) and its competing class is
    ``top[i, 1]``. With ``use_rep_factor``, ``p = softmax(teacher_scores)`` (T = 1) and only
    confusable samples, ``p_top1 < f · p_top2``, take part. For every own class present in the
    batch one representative sample is drawn uniformly at random with ``generator`` (the same
    representative serves every sample that refers to that class). For the averaged targets of
    ``--recon-rep-aver`` use :func:`class_means` with ``own`` as labels and index it by
    ``rival`` (or ``own``) instead of the representatives; ``active`` applies unchanged.

    Difference from the reference: when the competing class is not anyone's own class in the
    batch, the reference substitutes a random other class's representative in the
    non-averaged mode and drops the sample only in the averaged mode. Here such samples are
    dropped in BOTH modes (``active`` False, ``rival_index`` -1): the paper's intent is to repel
    a sample from the class it is confused with, and a random other class is not that.

    Args:
        teacher_scores: Teacher logits on the replayed samples over the previous classes,
            shape (B, C) with C >= 2.
        use_rep_factor: Apply the confusion criterion (``--use-rep-f``).
        rep_factor: The confusion factor f (``--rep-f``, default 20).
        generator: Random generator for the representative draw (on any device).

    Returns:
        A :class:`Competitors` of plain tensors.

    Raises:
        ValueError: If the scores are not 2-d with at least two classes.
    """
    if teacher_scores.dim() != 2 or teacher_scores.shape[1] < 2:
        raise ValueError(
            f"teacher_scores must have shape (B, C) with C >= 2, got {tuple(teacher_scores.shape)}"
        )
    batch, num_classes = teacher_scores.shape
    device = teacher_scores.device
    scores = teacher_scores.detach()
    top = scores.topk(2, dim=1).indices
    own, rival = top[:, 0], top[:, 1]
    if use_rep_factor:
        p = torch.softmax(scores, dim=1).gather(1, top)
        confusable = p[:, 0] < rep_factor * p[:, 1]
    else:
        confusable = torch.ones(batch, dtype=torch.bool, device=device)
    # The first member of each class in a uniformly random order is a uniform draw.
    order = torch.randperm(batch, generator=generator, device=generator.device).to(device)
    first = torch.full((num_classes,), batch, dtype=torch.long, device=device)
    first = first.scatter_reduce(
        0, own[order], torch.arange(batch, device=device), reduce="amin", include_self=True
    )
    present = first < batch
    representative = torch.where(present, order[first.clamp_max(batch - 1)], -1)
    active = confusable & present[rival]
    rival_index = torch.where(active, representative[rival], -1)
    return Competitors(own, rival, active, representative[own], rival_index, present)


def class_means(
    features: torch.Tensor, labels: torch.Tensor, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean feature vector of every class in the batch (``--recon-rep-aver`` targets, §6.4).

    ``means[c] = mean_{i: labels_i = c} features_i``; a class's mean includes every member, so
    a sample's own-class mean includes the sample itself, as in the reference.

    Args:
        features: Features, shape (B, ...); flattened to (B, D).
        labels: Class of each sample (for §6.4: the teacher's top-1 class), int64 (B,).
        num_classes: Number of classes C (labels must be < C).

    Returns:
        ``(means, present)``: means of shape (C, D), zero for absent classes, and a bool
        mask (C,) of the classes that occur in ``labels``.
    """
    flat = features.flatten(1)
    sums = flat.new_zeros(num_classes, flat.shape[1]).index_add(0, labels, flat)
    counts = torch.bincount(labels, minlength=num_classes)[:num_classes]
    present = counts > 0
    means = sums / counts.clamp_min(1).to(flat.dtype)[:, None]
    return means, present


def gaussian_kl(
    mu_a: torch.Tensor, logvar_a: torch.Tensor, mu_b: torch.Tensor, logvar_b: torch.Tensor
) -> torch.Tensor:
    """KL divergence between diagonal Gaussians, summed over the latent dimensions.

    ``KL(N_a ‖ N_b) = ½ Σ_j [σ_a²/σ_b² + (μ_b − μ_a)²/σ_b² + log σ_b² − log σ_a² − 1]``
    (spec §6.3, ``kl``).

    Args:
        mu_a: Means of the first Gaussians, shape (B, Z).
        logvar_a: Their log-variances, shape (B, Z).
        mu_b: Means of the second Gaussians, shape (B, Z).
        logvar_b: Their log-variances, shape (B, Z).

    Returns:
        Per-sample divergence, shape (B,).
    """
    ratio = torch.exp(logvar_a - logvar_b)
    mahalanobis = (mu_b - mu_a).pow(2) * torch.exp(-logvar_b)
    return 0.5 * torch.sum(ratio + mahalanobis + logvar_b - logvar_a - 1.0, dim=-1)


def gaussian_js(
    mu_a: torch.Tensor, logvar_a: torch.Tensor, mu_b: torch.Tensor, logvar_b: torch.Tensor
) -> torch.Tensor:
    """Closed-form "Jensen-Shannon" divergence of the reference, summed over latent dims.

    ``JS = ½ [KL(N_a ‖ m) + KL(N_b ‖ m)]`` with ``m = N((μ_a + μ_b)/2, (σ_a² + σ_b²)/4)``
    (spec §6.3, ``js``). ``m`` is the law of the average of two independent draws, not the
    mixture ``½(N_a + N_b)`` of the true JS divergence (which has no closed form), so the value
    is symmetric but not zero for identical Gaussians (``½(1 − ln 2)`` per dimension).

    Args:
        mu_a: Means of the first Gaussians, shape (B, Z).
        logvar_a: Their log-variances, shape (B, Z).
        mu_b: Means of the second Gaussians, shape (B, Z).
        logvar_b: Their log-variances, shape (B, Z).

    Returns:
        Per-sample divergence, shape (B,).
    """
    mu_m = 0.5 * (mu_a + mu_b)
    logvar_m = torch.logaddexp(logvar_a, logvar_b) - math.log(4.0)
    return 0.5 * (
        gaussian_kl(mu_a, logvar_a, mu_m, logvar_m) + gaussian_kl(mu_b, logvar_b, mu_m, logvar_m)
    )


def distribution_repulsion(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    competitor_index: torch.Tensor,
    divergence: Divergence,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Inverse-divergence repulsion of encoder posteriors from their competitors (§6.3).

    ``L_rep = mean_{i: c(i) >= 0} 1 / max(D(q_i, q_c(i)), eps)`` with ``q_i = N(mu_i, diag
    exp(logvar_i))``, ``c(i)`` the batch index of sample i's competitor representative and
    ``D`` :func:`gaussian_kl` (``KL(q_i ‖ q_c)``) or :func:`gaussian_js`. Gradients reach both
    posteriors of a pair. The clamp at ``eps`` guards against identical posteriors (D = 0);
    below it the term is constant (no gradient). Samples without a competitor are skipped;
    with none the loss is 0.

    Difference from the reference: at its HEAD ``--repulsion`` calls an "overlap" loss that
    was deleted in the same commit and crashes on the first replay step; this is the
    inverse-KL/JS form of the last working version (competitor = an in-batch representative,
    not a prior mode; no division by the image size).

    Args:
        mu: Posterior means of the replayed samples, shape (B, Z).
        logvar: Their log-variances, shape (B, Z).
        competitor_index: Batch index of each sample's competitor, int64 (B,), -1 for none
            (``Competitors.rival_index``).
        divergence: ``"kl"`` or ``"js"`` (``--kl-js``).
        eps: Lower clamp of the divergence.

    Returns:
        Scalar loss.

    Raises:
        ValueError: On an unknown divergence.
    """
    if divergence not in ("kl", "js"):
        raise ValueError(f"divergence must be 'kl' or 'js', got {divergence!r}")
    keep = competitor_index >= 0
    if not bool(keep.any()):
        return mu.new_zeros(())
    other = competitor_index[keep]
    measure = gaussian_kl if divergence == "kl" else gaussian_js
    d = measure(mu[keep], logvar[keep], mu[other], logvar[other])
    return (1.0 / d.clamp_min(eps)).mean()


def per_sample_reconstruction(
    recon: torch.Tensor, target: torch.Tensor, loss: ReconstructionLoss
) -> torch.Tensor:
    """Per-sample reconstruction loss of spec §3.1, averaged over the input units.

    ``bce``: ``mean_d −[x_d log x̂_d + (1 − x_d) log(1 − x̂_d)]`` (MNIST-like inputs in [0, 1];
    logs clamped at −100 as in PyTorch); ``mse``: ``mean_d ½ (x_d − x̂_d)²`` (CIFAR features).

    Args:
        recon: Reconstructions x̂, shape (B, ...).
        target: Targets x, same shape.
        loss: ``"mse"`` or ``"bce"``.

    Returns:
        Per-sample loss, shape (B,).

    Raises:
        ValueError: On an unknown loss.
    """
    x_hat, x = recon.flatten(1), target.flatten(1)
    if loss == "mse":
        return (0.5 * (x - x_hat).pow(2)).mean(dim=1)
    if loss == "bce":
        return F.binary_cross_entropy(x_hat, x, reduction="none").mean(dim=1)
    raise ValueError(f"loss must be 'mse' or 'bce', got {loss!r}")


def reconstruction_repulsion(
    recon: torch.Tensor,
    targets_competitor: torch.Tensor,
    loss: ReconstructionLoss = "mse",
    mask: torch.Tensor | None = None,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Push reconstructions away from the competing class's replayed features (§6.4).

    ``L_rr = mean_{i in mask} 1 / max(L_rec(x_comp(i), x̂_i), eps)`` with ``L_rec`` from
    :func:`per_sample_reconstruction`. ``x_comp(i)`` is the replayed input of the competitor
    representative (``x_r[rival_index]``) or, with ``--recon-rep-aver``, the batch mean of the
    competing class (``class_means(x_r, own, C)[0][rival]``). The clamp guards against a
    reconstruction equal to its target; below it the term is constant. Samples outside
    ``mask`` (no in-batch competitor or not confusable) are skipped; with none the loss is 0.

    Args:
        recon: Current model's reconstructions of the replayed samples, shape (B, ...).
        targets_competitor: Competitor targets, same shape (rows outside ``mask`` ignored).
        loss: ``"mse"`` (CIFAR features) or ``"bce"`` (inputs in [0, 1]).
        mask: Bool (B,) of samples that take part (``Competitors.active``); None = all.
        eps: Lower clamp of the reconstruction loss.

    Returns:
        Scalar loss.
    """
    if mask is not None:
        if not bool(mask.any()):
            return recon.new_zeros(())
        recon, targets_competitor = recon[mask], targets_competitor[mask]
    per_sample = per_sample_reconstruction(recon, targets_competitor, loss)
    return (1.0 / per_sample.clamp_min(eps)).mean()


def reconstruction_attraction(
    recon: torch.Tensor, targets_own: torch.Tensor, loss: ReconstructionLoss = "mse"
) -> torch.Tensor:
    """Pull reconstructions towards their own class's replayed features (§6.4).

    ``L_ra = mean_i L_rec(x_own(i), x̂_i)`` over the whole replay batch, with ``L_rec`` from
    :func:`per_sample_reconstruction`. ``x_own(i)`` is the replayed input of the random
    representative of sample i's teacher top-1 class (``x_r[own_index]``) or, with
    ``--recon-rep-aver``, that class's batch mean (``class_means(x_r, own, C)[0][own]``,
    which includes sample i itself).

    Args:
        recon: Current model's reconstructions of the replayed samples, shape (B, ...).
        targets_own: Own-class targets, same shape.
        loss: ``"mse"`` (CIFAR features) or ``"bce"`` (inputs in [0, 1]).

    Returns:
        Scalar loss.
    """
    return per_sample_reconstruction(recon, targets_own, loss).mean()
