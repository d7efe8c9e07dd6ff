"""Internal replay: a network behind frozen conv layers, replayed in their feature space.

For colour images BI-R puts pre-trained, frozen conv layers (``C3-5x16-bn``) in front of the
fully connected VAE-classifier (spec §2.6). The VAE encodes and reconstructs the conv features
(MSE, linear output) and the decoder generates features, which are replayed straight into the
fully connected encoder: replay never passes through the conv layers. Test images pass through
both. Generative replay (``gr``) uses the same front end for its classifier and generator.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Generic, Self, TypeVar

import torch

from lifelong.backbones import Backbone
from lifelong.backbones.conv_encoder import ConvEncoder, ConvEncoderConfig
from lifelong.data.transforms import ImageTransform
from lifelong.generative.replay import to_pixels
from lifelong.generative.vae_classifier import VAEClassifier

logger = logging.getLogger(__name__)

InnerT = TypeVar("InnerT", bound=Backbone)


def frozen_conv(
    depth: int, channels: int, pretrained: str | None, in_channels: int, method: str
) -> ConvEncoder:
    """Conv layers loaded from ``pretrained`` (``lifelong pretrain``'s file), or random.

    Random layers stay random (they are frozen): ``method`` is named in the warning.
    """
    conv = ConvEncoder(ConvEncoderConfig(depth, channels), in_channels)
    if pretrained is None:
        logger.warning(
            "%s: the conv layers are random and stay frozen; pre-train them with "
            "`lifelong pretrain` and pass method.pretrained_conv=FILE",
            method,
        )
    else:
        conv.load_pretrained(Path(pretrained))
    return conv


class InternalReplayNet(Backbone, Generic[InnerT]):
    """Frozen conv layers, then a network (``inner``) over their flattened features.

    The conv layers stay in evaluation mode (their batch-norm statistics never change) and
    have no gradients, as the reference's ``--freeze-convE``.

    Args:
        conv: The conv layers (pre-trained ones loaded already).
        inner: A network (BI-R's VAE-classifier, GR's classifier) whose input shape is
            ``(conv features, 1, 1)``.
    """

    def __init__(self, conv: ConvEncoder, inner: InnerT) -> None:
        super().__init__()
        self.conv = conv.requires_grad_(False).train(False)
        self.inner = inner
        self.head = inner.head  # the same module: the classifier on the last hidden layer

    def conv_features(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen conv features of normalised images, shaped (B, F, 1, 1) for the VAE."""
        with torch.no_grad():
            features: torch.Tensor = self.conv(x)
        return features[:, :, None, None]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``hE`` of images (B, C, H, W): conv features, then the fully connected encoder."""
        hidden: torch.Tensor = self.inner.features(self.conv_features(x))
        return hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, classes) of images."""
        logits: torch.Tensor = self.inner(self.conv_features(x))
        return logits

    def train(self, mode: bool = True) -> Self:
        """Set the training mode of ``inner``; the conv layers stay in evaluation mode."""
        super().train(mode)
        self.conv.train(False)
        return self


def inner_of(net: InnerT | InternalReplayNet[InnerT]) -> InnerT:
    """The network behind the conv layers (``net`` itself without conv layers)."""
    if isinstance(net, InternalReplayNet):
        inner: InnerT = net.inner
        return inner
    return net


def vae_of(net: VAEClassifier | InternalReplayNet[VAEClassifier]) -> VAEClassifier:
    """The VAE-classifier inside ``net`` (``net`` itself without conv layers)."""
    return inner_of(net)


def replay_inputs(
    net: Backbone, x: torch.Tensor, transform: ImageTransform
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(network input, generator target)`` of normalised images ``x``.

    Behind conv layers (:class:`InternalReplayNet`) both are the frozen conv features;
    otherwise the images themselves and their [0, 1] pixels (the VAE's BCE target).
    """
    if isinstance(net, InternalReplayNet):
        features = net.conv_features(x)
        return features, features
    return x, to_pixels(x, transform)
