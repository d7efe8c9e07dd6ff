"""Reduced ResNet-18 with a CIFAR stem (3x3 conv, stride 1, no max-pool), as in the DER paper."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from lifelong.backbones import BACKBONES, Backbone, BackboneSpec
from lifelong.errors import ConfigError


@dataclass(frozen=True)
class ResNetConfig:
    """Configuration of :class:`ResNet18`."""

    nf: int = 64
    """Width of the first stage; stages have nf, 2nf, 4nf, 8nf channels."""

    def __post_init__(self) -> None:
        if self.nf <= 0:
            raise ConfigError(f"backbone.nf must be positive, got {self.nf}")


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a residual connection (He et al., 2016)."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block forward."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(Backbone):
    """Reduced ResNet-18: 3x3 stem, four stages of two blocks, global average pool, linear head."""

    def __init__(self, cfg: ResNetConfig, image_shape: tuple[int, int, int], num_classes: int):
        super().__init__()
        nf = cfg.nf
        self.stem = nn.Sequential(
            nn.Conv2d(image_shape[0], nf, 3, 1, 1, bias=False), nn.BatchNorm2d(nf), nn.ReLU()
        )
        stages: list[nn.Module] = []
        in_planes = nf
        for i, stride in enumerate((1, 2, 2, 2)):
            planes = nf * 2**i
            stages.append(
                nn.Sequential(BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes, 1))
            )
            in_planes = planes
        self.stages = nn.Sequential(*stages)
        self.feature_dim = in_planes
        self.head = nn.Linear(in_planes, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally pooled output of the last stage, shape (B, 8 nf)."""
        out = self.stages(self.stem(x))
        return F.adaptive_avg_pool2d(out, 1).flatten(1)


BACKBONES.add(
    "resnet18",
    BackboneSpec(ResNetConfig, ResNet18, "reduced ResNet-18 (CIFAR stem), nf=64 by default"),
)
