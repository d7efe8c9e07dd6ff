"""Reduced ResNet-18 with a CIFAR stem (3x3 conv, stride 1, no max-pool), as in the DER paper."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from lifelong.backbones import BACKBONES, Backbone, BackboneSpec
from lifelong.backbones.split import cut
from lifelong.errors import ConfigError


@dataclass(frozen=True)
class ResNetConfig:
    """Configuration of :class:`ResNet18`."""

    nf: int = 64
    """Width of the first stage; stages have nf, 2nf, 4nf, 8nf channels."""

    def __post_init__(self) -> None:
        if self.nf <= 0:
            raise ConfigError(f"backbone.nf must be positive, got {self.nf}")


Activation = Callable[[int, int], nn.Module]
"""Builds the activation of stage ``stage`` (0..3) for ``channels`` channels."""


def relu_activation(stage: int, channels: int) -> nn.Module:
    """The plain ResNet activation."""
    return nn.ReLU()


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a residual connection (He et al., 2016).

    ``act1`` follows the first conv-BN, ``act2`` the residual sum (ReLU in the plain ResNet,
    k-WTA in the sparse one).
    """

    def __init__(
        self, in_planes: int, planes: int, stride: int, act1: nn.Module, act2: nn.Module
    ) -> None:
        super().__init__()
        self.act1 = act1
        self.act2 = act2
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
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = cast(torch.Tensor, self.act2(out + self.shortcut(x)))
        return out


class ResNet18(Backbone):
    """Reduced ResNet-18: 3x3 stem, four stages of two blocks, global average pool, linear head.

    Split points for latent replay (:class:`~lifelong.backbones.split.SplitBackbone`): the outputs
    of ``stem`` and of the stages ``layer1`` ... ``layer4``; the default is ``layer3``.
    """

    split_points: tuple[str, ...] = ("stem", "layer1", "layer2", "layer3", "layer4")
    default_split: str = "layer3"

    def __init__(
        self,
        cfg: ResNetConfig,
        image_shape: tuple[int, int, int],
        num_classes: int,
        activation: Activation = relu_activation,
    ) -> None:
        super().__init__()
        nf = cfg.nf
        self.stem = nn.Sequential(
            nn.Conv2d(image_shape[0], nf, 3, 1, 1, bias=False), nn.BatchNorm2d(nf), nn.ReLU()
        )
        stages: list[nn.Module] = []
        in_planes = nf
        for i, stride in enumerate((1, 2, 2, 2)):
            planes = nf * 2**i
            blocks = [
                BasicBlock(in_planes, planes, stride, activation(i, planes), activation(i, planes)),
                BasicBlock(planes, planes, 1, activation(i, planes), activation(i, planes)),
            ]
            stages.append(nn.Sequential(*blocks))
            in_planes = planes
        self.stages = nn.Sequential(*stages)
        self.feature_dim = in_planes
        self.head = nn.Linear(in_planes, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally pooled output of the last stage, shape (B, 8 nf)."""
        out = self.stages(self.stem(x))
        return F.adaptive_avg_pool2d(out, 1).flatten(1)

    def lower_part(self, split: str) -> nn.Sequential:
        """Input → output of ``split`` (``stem`` or a stage ``layer1`` ... ``layer4``)."""
        return self._cut(split)[0]

    def upper_part(self, split: str) -> nn.Sequential:
        """Output of ``split`` → globally pooled, flattened features (the head's input)."""
        return self._cut(split)[1]

    def _cut(self, split: str) -> tuple[nn.Sequential, nn.Sequential]:
        layers: list[tuple[str, nn.Module]] = [("stem", self.stem)]
        layers += [(f"layer{i + 1}", stage) for i, stage in enumerate(self.stages)]
        tail = [("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten())]
        return cut(layers, self.split_points, split, tail)


BACKBONES.add(
    "resnet18",
    BackboneSpec(ResNetConfig, ResNet18, "reduced ResNet-18 (CIFAR stem), nf=64 by default"),
)
