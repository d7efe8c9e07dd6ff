"""GELU backbones of the SARL_Optim ``sarl_enhanced_gelu`` variants (spec §2.2).

``gelu_resnet18``: the reduced ResNet-18 with both block activations replaced by GELU (tanh
approximation, ``0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))``) in the stages where
``apply_gelu`` is set and ReLU elsewhere; the stem keeps its ReLU; no sparsity.
``gelu_mlp``: the MLP with GELU hidden activations. Unlike k-WTA/ReLU features, GELU features can be
negative, so cosine similarities between prototypes span [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from lifelong.backbones import BACKBONES, BackboneSpec
from lifelong.backbones.mlp import MLP, MLPConfig
from lifelong.backbones.resnet import ResNet18, ResNetConfig
from lifelong.errors import ConfigError


@dataclass(frozen=True)
class GeluResNetConfig(ResNetConfig):
    """Configuration of the GELU reduced ResNet-18."""

    apply_gelu: tuple[bool, ...] = (True, True, True, True)
    """Per stage: GELU (True) or ReLU (False) in the blocks."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.apply_gelu) != 4:
            raise ConfigError(f"backbone.apply_gelu needs 4 values, got {len(self.apply_gelu)}")


def gelu_resnet18(
    cfg: GeluResNetConfig, image_shape: tuple[int, int, int], num_classes: int
) -> ResNet18:
    """The reduced ResNet-18 with tanh-approximated GELU in the stages where ``apply_gelu``."""

    def activation(stage: int, channels: int) -> nn.Module:
        return nn.GELU(approximate="tanh") if cfg.apply_gelu[stage] else nn.ReLU()

    return ResNet18(cfg, image_shape, num_classes, activation)


def gelu_mlp(cfg: MLPConfig, image_shape: tuple[int, int, int], num_classes: int) -> MLP:
    """The MLP with tanh-approximated GELU after every hidden layer."""
    return MLP(cfg, image_shape, num_classes, lambda layer, width: nn.GELU(approximate="tanh"))


BACKBONES.add(
    "gelu_resnet18",
    BackboneSpec(
        GeluResNetConfig, gelu_resnet18, "reduced ResNet-18 with GELU blocks (SARL_Optim)"
    ),
)
BACKBONES.add(
    "gelu_mlp", BackboneSpec(MLPConfig, gelu_mlp, "MLP with GELU hidden layers (SARL_Optim)")
)
