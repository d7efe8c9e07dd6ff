"""Internal replay: BI-R's VAE-classifier on the features of frozen conv layers (spec §2.6).

For colour images BI-R puts pre-trained, frozen conv layers (``C3-5x16-bn``) in front of the
fully connected VAE-classifier. The VAE encodes and reconstructs the conv features (MSE, linear
output) and the decoder generates features, which are replayed straight into the fully
connected encoder: replay never passes through the conv layers. Test images pass through both.
"""

from __future__ import annotations

from typing import Self

import torch

from lifelong.backbones import Backbone
from lifelong.generative.conv_encoder import ConvEncoder
from lifelong.generative.vae_classifier import VAEClassifier


class InternalReplayNet(Backbone):
    """Frozen conv layers, then a :class:`VAEClassifier` over their flattened features.

    The conv layers stay in evaluation mode (their batch-norm statistics never change) and
    have no gradients, as the reference's ``--freeze-convE``.

    Args:
        conv: The conv layers (pre-trained ones loaded already).
        vae: A VAE-classifier whose input shape is ``(conv features, 1, 1)``.
    """

    def __init__(self, conv: ConvEncoder, vae: VAEClassifier) -> None:
        super().__init__()
        self.conv = conv.requires_grad_(False).train(False)
        self.vae = vae
        self.head = vae.head  # the same module: the classifier on hE

    def conv_features(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen conv features of normalised images, shaped (B, F, 1, 1) for the VAE."""
        with torch.no_grad():
            features: torch.Tensor = self.conv(x)
        return features[:, :, None, None]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``hE`` of images (B, C, H, W): conv features, then the fully connected encoder."""
        return self.vae.features(self.conv_features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, classes) of images."""
        logits: torch.Tensor = self.vae(self.conv_features(x))
        return logits

    def train(self, mode: bool = True) -> Self:
        """Set the training mode of the VAE; the conv layers stay in evaluation mode."""
        super().train(mode)
        self.conv.train(False)
        return self


def vae_of(net: VAEClassifier | InternalReplayNet) -> VAEClassifier:
    """The VAE-classifier inside ``net`` (``net`` itself without conv layers)."""
    return net.vae if isinstance(net, InternalReplayNet) else net
