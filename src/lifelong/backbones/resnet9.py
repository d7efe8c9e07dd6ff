"""ResNet-9 and the wide / slim encoders of continual self-supervised learning (``cssl.md`` §4).

ResNet-9 is the small residual network of the ``Moddy2024/ResNet-9`` repository that the
continual-SSL reference uses, built from the residual connections of He, Zhang, Ren & Sun,
*Deep Residual Learning for Image Recognition* (CVPR 2016). With base width nf (64):

1. conv(3 → nf); 2. conv(nf → 2nf) + max-pool; 3. residual [conv(2nf → 2nf) ×2];
4. conv(2nf → 4nf) + max-pool; 5. conv(4nf → 8nf) + max-pool; 6. residual [conv(8nf → 8nf) ×2];
7. global max-pool → features of width 8nf (512).

Each conv is 3×3 (padding 1) → BatchNorm → ReLU. There is no stem change for large inputs: three
pools only, so 224-px images are costly. Registered variants: ``resnet9`` (nf 64, d_e 512,
about 6.57M parameters), ``wide_resnet9`` (nf 128, d_e 1024, about 26.3M) and ``slim_resnet9``
(nf 20, d_e 160, about 0.64M; "about a third of the features"). ``wide_resnet18`` (nf 128,
d_e 1024) and ``slim_resnet18`` (nf 20, d_e 160) are presets of the reduced
:class:`~lifelong.backbones.resnet.ResNet18`.

Differences from the reference code (``giacomo-cgn/ocl-self-supervised``):

* The convs have no bias by default: a bias right before a BatchNorm is cancelled by its mean
  subtraction (zero gradient in training, absorbed by the running mean in evaluation).
  ``conv_bias=True`` restores the reference's parameter list.
* ``wide_resnet18`` / ``slim_resnet18`` keep the CIFAR stem (3×3 conv, stride 1, no max-pool) at
  every input size and use ``ResNet18``'s 1×1-conv shortcuts; the reference's torchvision-style
  network uses the 7×7 stride-2 stem with max-pool above 32 px.
* Like every library backbone, the networks carry a linear ``head`` (unused by the SSL models).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from lifelong.backbones import BACKBONES, Backbone, BackboneSpec
from lifelong.backbones.resnet import ResNet18, ResNetConfig
from lifelong.errors import ConfigError


@dataclass(frozen=True)
class ResNet9Config:
    """Configuration of :class:`ResNet9`."""

    nf: int = 64
    """Base width; the blocks have nf, 2nf, 4nf and 8nf channels (8nf features)."""
    conv_bias: bool = False
    """Give the convs a bias, as the reference does (redundant before BatchNorm)."""

    def __post_init__(self) -> None:
        if self.nf <= 0:
            raise ConfigError(f"backbone.nf must be positive, got {self.nf}")


@dataclass(frozen=True)
class WideResNet9Config(ResNet9Config):
    """``wide_resnet9``: twice the width of ResNet-9."""

    nf: int = 128
    """Base width (128: 1024 features)."""


@dataclass(frozen=True)
class SlimResNet9Config(ResNet9Config):
    """``slim_resnet9``: about a third of the width of ResNet-9 (20 / 64)."""

    nf: int = 20
    """Base width (20: 160 features)."""


@dataclass(frozen=True)
class WideResNet18Config(ResNetConfig):
    """``wide_resnet18``: the reduced ResNet-18 at twice the width."""

    nf: int = 128
    """Width of the first stage (stages 128/256/512/1024; 1024 features)."""


@dataclass(frozen=True)
class SlimResNet18Config(ResNetConfig):
    """``slim_resnet18``: the reduced ResNet-18 at about a third of the width."""

    nf: int = 20
    """Width of the first stage (stages 20/40/80/160; 160 features)."""


def conv_block(in_channels: int, out_channels: int, pool: bool, bias: bool) -> nn.Sequential:
    """3×3 conv (padding 1) → BatchNorm → ReLU, then a 2×2 max-pool when ``pool``."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class Residual(nn.Module):
    """x + two conv blocks of x (same width, no pooling)."""

    def __init__(self, channels: int, bias: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_block(channels, channels, False, bias), conv_block(channels, channels, False, bias)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual sum."""
        out: torch.Tensor = x + self.body(x)
        return out


class ResNet9(Backbone):
    """ResNet-9: five conv blocks, two residual units, global max-pool, linear head.

    Args:
        cfg: Width and conv bias.
        image_shape: (C, H, W) of the inputs; H and W of at least 8 (three 2×2 pools).
        num_classes: Outputs of the linear head.
    """

    def __init__(
        self, cfg: ResNet9Config, image_shape: tuple[int, int, int], num_classes: int
    ) -> None:
        super().__init__()
        nf, bias = cfg.nf, cfg.conv_bias
        if min(image_shape[1:]) < 8:
            raise ConfigError(f"ResNet-9 needs images of at least 8x8 pixels, got {image_shape}")
        self.body = nn.Sequential(
            conv_block(image_shape[0], nf, False, bias),
            conv_block(nf, 2 * nf, True, bias),
            Residual(2 * nf, bias),
            conv_block(2 * nf, 4 * nf, True, bias),
            conv_block(4 * nf, 8 * nf, True, bias),
            Residual(8 * nf, bias),
        )
        self.feature_dim = 8 * nf
        self.head = nn.Linear(self.feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally max-pooled output of the last residual unit, shape (B, 8 nf)."""
        return F.adaptive_max_pool2d(self.body(x), 1).flatten(1)


BACKBONES.add(
    "resnet9",
    BackboneSpec(ResNet9Config, ResNet9, "ResNet-9 (continual SSL encoder), nf=64, 512 features"),
)
BACKBONES.add(
    "wide_resnet9",
    BackboneSpec(WideResNet9Config, ResNet9, "ResNet-9 at twice the width, 1024 features"),
)
BACKBONES.add(
    "slim_resnet9",
    BackboneSpec(SlimResNet9Config, ResNet9, "ResNet-9 at 20/64 of the width, 160 features"),
)
BACKBONES.add(
    "wide_resnet18",
    BackboneSpec(WideResNet18Config, ResNet18, "reduced ResNet-18 with nf=128, 1024 features"),
)
BACKBONES.add(
    "slim_resnet18",
    BackboneSpec(SlimResNet18Config, ResNet18, "reduced ResNet-18 with nf=20, 160 features"),
)
