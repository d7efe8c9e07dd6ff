"""BI-R's classifier: its conv layers (optionally pre-trained and frozen), then an MLP.

van de Ven et al., *Brain-inspired replay for continual learning with artificial neural
networks* (Nature Communications 2020; spec ``bir.md`` §2.1, §2.6-2.7): on CIFAR-100 every
compared method, not only BI-R, classifies through the same five conv layers (``C3-5x16-bn``),
pre-trained on other classes (``lifelong pretrain``) and frozen, followed by two fully connected
layers of 2,000 units. This backbone is that classifier, so finetuning, SI or any replay method
run on the same front end as ``bir`` with ``method.pretrained_conv``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import torch
from torch import nn

from lifelong.backbones import BACKBONES, Backbone, BackboneSpec
from lifelong.backbones.conv_encoder import ConvEncoder, ConvEncoderConfig
from lifelong.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConvMLPConfig:
    """Configuration of :class:`ConvMLP` (defaults: the BI-R paper's CIFAR classifier)."""

    depth: int = 5
    """Conv layers (3×3, batch norm, ReLU); all but the first halve the resolution."""
    channels: int = 16
    """Channels of the first conv layer, doubled in each later one."""
    hidden: tuple[int, ...] = (2000, 2000)
    """Widths of the fully connected layers after the conv layers."""
    pretrained: str | None = None
    """File of conv layers written by ``lifelong pretrain`` (None: random initialisation)."""
    freeze_conv: bool = False
    """Keep the conv layers fixed (no gradients, batch-norm statistics frozen); needs pretrained."""

    def __post_init__(self) -> None:
        if self.depth <= 0 or self.channels <= 0:
            raise ConfigError("backbone.depth and backbone.channels must be positive")
        if not self.hidden or any(width <= 0 for width in self.hidden):
            raise ConfigError(f"backbone.hidden must be positive widths, got {self.hidden}")
        if self.freeze_conv and self.pretrained is None:
            raise ConfigError(
                "backbone.freeze_conv needs backbone.pretrained=FILE (from `lifelong pretrain`): "
                "frozen random conv layers would not learn"
            )


class ConvMLP(Backbone):
    """Conv layers → flatten → (Linear → ReLU) per hidden width → Linear head.

    With ``freeze_conv`` the conv layers have no gradients and stay in evaluation mode, as the
    BI-R code's ``--freeze-convE``; every optimiser built over the backbone's parameters then
    skips them (they never get a gradient).
    """

    def __init__(
        self, cfg: ConvMLPConfig, image_shape: tuple[int, int, int], num_classes: int
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.conv = ConvEncoder(ConvEncoderConfig(cfg.depth, cfg.channels), image_shape[0])
        if cfg.pretrained is not None:
            self.conv.load_pretrained(Path(cfg.pretrained))
            logger.info("conv layers loaded from %s", cfg.pretrained)
        if cfg.freeze_conv:
            self.conv.requires_grad_(False).train(False)
        layers: list[nn.Module] = []
        width = self.conv.out_features(image_shape)
        for hidden in cfg.hidden:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)
        self.feature_dim = width

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the last fully connected layer, shape (B, hidden[-1])."""
        if self.cfg.freeze_conv:
            with torch.no_grad():
                conv = self.conv(x)
        else:
            conv = self.conv(x)
        out: torch.Tensor = self.body(conv)
        return out

    def train(self, mode: bool = True) -> Self:
        """Set the training mode; frozen conv layers stay in evaluation mode."""
        super().train(mode)
        if self.cfg.freeze_conv:
            self.conv.train(False)
        return self


BACKBONES.add(
    "conv_mlp",
    BackboneSpec(
        ConvMLPConfig,
        ConvMLP,
        "BI-R's C3-5x16 conv layers (pre-trained and frozen with backbone.pretrained / "
        "freeze_conv) then 2 x 2000 fully connected units (colour images)",
    ),
)
