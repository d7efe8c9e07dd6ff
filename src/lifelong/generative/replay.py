"""Pieces shared by the generative-replay methods (``gr``, ``bir``).

The VAE works in pixel space, [0, 1] (its decoder ends in a sigmoid and is trained with BCE, as
BI-R on MNIST); the classifier sees normalised inputs like every other method. For MNIST-like
data (mean 0, std 1) both spaces coincide; for normalised data the helpers below convert.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lifelong.data.transforms import ImageTransform
from lifelong.generative.vae_classifier import VAEClassifier, reparameterize
from lifelong.losses.repulsion import ReconstructionLoss
from lifelong.losses.vae import (
    kl_gmm_mc,
    kl_standard,
    reconstruction_bce,
    reconstruction_mse_half,
)


def _channel_stats(
    transform: ImageTransform, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(transform.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(transform.std, device=device).view(1, -1, 1, 1)
    return mean, std


def to_pixels(x: torch.Tensor, transform: ImageTransform) -> torch.Tensor:
    """Normalised inputs (B, C, H, W) back to [0, 1] pixels: ``clamp(x · std + mean, 0, 1)``."""
    mean, std = _channel_stats(transform, x.device)
    return (x * std + mean).clamp(0.0, 1.0)


def from_pixels(pixels: torch.Tensor, transform: ImageTransform) -> torch.Tensor:
    """[0, 1] pixels (B, C, H, W) to normalised inputs: ``(p − mean) / std``."""
    mean, std = _channel_stats(transform, pixels.device)
    return (pixels - mean) / std


@dataclass(frozen=True)
class VAETerms:
    """The VAE part of one forward pass.

    Attributes:
        features: ``hE``, the encoder's last hidden layer (the classifier's input), (B, h_dim).
        recon: Reconstruction loss (BCE or half MSE, mean over units and batch).
        kl: KL loss divided by C·H·W of the images (spec §3.2).
        mu: Posterior means, (B, z_dim).
        logvar: Posterior log-variances, (B, z_dim).
        reconstruction: The decoder's output, shaped as the reconstruction target.
    """

    features: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    reconstruction: torch.Tensor


def vae_terms(
    net: VAEClassifier,
    x: torch.Tensor,
    pixels: torch.Tensor,
    context: torch.Tensor | None,
    generator: torch.Generator,
    loss: ReconstructionLoss = "bce",
    kl_size: int | None = None,
    task: torch.Tensor | None = None,
) -> VAETerms:
    """Encode ``x``, sample ``z``, decode with gates ``context``, and score against ``pixels``.

    ``loss`` is BCE for pixels in [0, 1] and half MSE for conv features (internal replay).
    ``kl_size`` divides the KL: C·H·W of the images (default: of ``pixels``); with internal
    replay it stays the image size (3,072 for CIFAR), as the reference (§3.2).

    ``context`` is the class information of the batch, labels (B,) or probabilities
    (B, classes): it drives the decoder gates and, with the per-class prior, selects the prior
    mode (a label) or mixture weights (probabilities). None is allowed for an ungated VAE with
    the standard prior. ``task`` (B,) picks the encoder's XdG masks (None: no gating).
    """
    h, mu, logvar = net.encode(x, task)
    z = reparameterize(mu, logvar, generator)
    decoded = net.decode(z, context)
    score = reconstruction_bce if loss == "bce" else reconstruction_mse_half
    recon = score(decoded, pixels)
    input_size = kl_size if kl_size is not None else pixels[0].numel()
    if net.prior_means is not None and net.prior_logvars is not None:
        weights = net.gate_vector(context)
        if weights is None:
            raise ValueError("a per-class prior needs class labels or probabilities")
        kl = kl_gmm_mc(z, mu, logvar, net.prior_means, net.prior_logvars, weights, input_size)
    else:
        kl = kl_standard(mu, logvar, input_size)
    return VAETerms(h, recon, kl, mu, logvar, decoded)


def active_targets(active: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Positions of labels ``y`` in the sorted index tensor ``active`` (for sliced logits)."""
    return torch.searchsorted(active, y)


def previous_logits(logits: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """Teacher logits with ``-inf`` outside the boolean class mask ``previous`` (classes,).

    ``softmax(·/T)`` of the result is the teacher's distribution over the previous classes,
    zero-padded to all classes (spec §2.5, §3.3).
    """
    return logits.masked_fill(~previous, -torch.inf)
