"""Sparse backbones with k-winners-take-all activations (SARL, Sarfraz et al., ICLR 2025).

``sparse_resnet18``: the reduced ResNet-18 whose two block activations are local k-WTA
(per spatial location, top ``kw[stage]`` fraction of channels kept on); the stem keeps its ReLU.
``sparse_mlp``: the MLP with k-WTA over each hidden layer's units, so SARL also runs on MNIST-like
scenarios (the reference code cannot: its MNIST MLP never builds).

Differences from the reference code: the reference reads its per-stage on/off switch
``apply_kw`` at index 0 for all four stages; here ``apply_kw[stage]`` is honoured per stage, and
``apply_kw_compat: true`` reproduces the reference behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from lifelong.backbones import BACKBONES, BackboneSpec
from lifelong.backbones.mlp import MLP, MLPConfig
from lifelong.backbones.resnet import ResNet18, ResNetConfig
from lifelong.errors import ConfigError
from lifelong.nn.k_winners import KWinners


def _check_fractions(name: str, values: tuple[float, ...], count: int) -> None:
    if len(values) != count:
        raise ConfigError(f"backbone.{name} needs {count} values, got {len(values)}")
    if any(not 0 < v <= 1 for v in values):
        raise ConfigError(f"backbone.{name} values must be in (0, 1], got {values}")


@dataclass(frozen=True)
class SparseResNetConfig(ResNetConfig):
    """Configuration of the sparse reduced ResNet-18."""

    kw: tuple[float, ...] = (0.9, 0.9, 0.9, 0.9)
    """Fraction of channels kept on by k-WTA in each of the four stages (SARL's ``kw``)."""
    apply_kw: tuple[bool, ...] = (True, True, True, True)
    """Per stage: k-WTA (True) or plain ReLU (False)."""
    apply_kw_compat: bool = False
    """Reproduce the reference code, where ``apply_kw[0]`` switches all four stages."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_fractions("kw", self.kw, 4)
        if len(self.apply_kw) != 4:
            raise ConfigError(f"backbone.apply_kw needs 4 values, got {len(self.apply_kw)}")


@dataclass(frozen=True)
class SparseMLPConfig(MLPConfig):
    """Configuration of the sparse MLP."""

    kw: tuple[float, ...] = (0.9, 0.9)
    """Fraction of units kept on by k-WTA in each hidden layer."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_fractions("kw", self.kw, len(self.hidden))


def sparse_resnet18(
    cfg: SparseResNetConfig, image_shape: tuple[int, int, int], num_classes: int
) -> ResNet18:
    """The reduced ResNet-18 with local k-WTA in the stages where ``apply_kw`` is set."""

    def activation(stage: int, channels: int) -> nn.Module:
        switch = cfg.apply_kw[0] if cfg.apply_kw_compat else cfg.apply_kw[stage]
        return KWinners(channels, cfg.kw[stage]) if switch else nn.ReLU()

    return ResNet18(cfg, image_shape, num_classes, activation)


def sparse_mlp(cfg: SparseMLPConfig, image_shape: tuple[int, int, int], num_classes: int) -> MLP:
    """The MLP with k-WTA after every hidden layer."""

    def activation(layer: int, width: int) -> nn.Module:
        return KWinners(width, cfg.kw[layer])

    return MLP(cfg, image_shape, num_classes, activation)


BACKBONES.add(
    "sparse_resnet18",
    BackboneSpec(
        SparseResNetConfig, sparse_resnet18, "reduced ResNet-18 with local k-WTA per stage (SARL)"
    ),
)
BACKBONES.add(
    "sparse_mlp",
    BackboneSpec(SparseMLPConfig, sparse_mlp, "MLP with k-WTA hidden layers (SARL on MNIST-like)"),
)
