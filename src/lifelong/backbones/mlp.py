"""Fully connected network for MNIST-like inputs (the DER paper's 2 x 100 MLP)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from lifelong.backbones import BACKBONES, Backbone, BackboneSpec
from lifelong.backbones.split import cut
from lifelong.errors import ConfigError


@dataclass(frozen=True)
class MLPConfig:
    """Configuration of :class:`MLP`."""

    hidden: tuple[int, ...] = (100, 100)
    """Widths of the hidden layers."""

    def __post_init__(self) -> None:
        if not self.hidden or any(h <= 0 for h in self.hidden):
            raise ConfigError(f"backbone.hidden must be positive widths, got {self.hidden}")


class MLP(Backbone):
    """Flatten → (Linear → ReLU) per hidden width → Linear head.

    Weights use Xavier-uniform initialisation and zero biases, as in mammoth's ``MNISTMLP``.
    Split points for latent replay (:class:`~lifelong.backbones.split.SplitBackbone`): ``fc1``,
    ``fc2``, … — the output of each hidden layer after its activation; the default is ``fc1``.
    """

    default_split = "fc1"

    def __init__(
        self,
        cfg: MLPConfig,
        image_shape: tuple[int, int, int],
        num_classes: int,
        activation: Callable[[int, int], nn.Module] | None = None,
    ) -> None:
        """Build the layers; ``activation(layer, width)`` replaces ReLU when given."""
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = image_shape[0] * image_shape[1] * image_shape[2]
        for i, hidden in enumerate(cfg.hidden):
            act = nn.ReLU() if activation is None else activation(i, hidden)
            layers += [nn.Linear(width, hidden), act]
            width = hidden
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)
        self.feature_dim = width
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the last hidden layer, shape (B, hidden[-1])."""
        out: torch.Tensor = self.body(x)
        return out

    @property
    def split_points(self) -> tuple[str, ...]:
        """``fc1`` … ``fcN``, one per hidden layer."""
        return tuple(f"fc{i + 1}" for i in range(len(self.body) // 2))

    def _layers(self) -> list[tuple[str, nn.Module]]:
        """One (Linear, activation) pair per split point; the first also flattens."""
        modules = list(self.body)
        pairs = [nn.Sequential(*modules[1 + 2 * i : 3 + 2 * i]) for i in range(len(modules) // 2)]
        pairs[0] = nn.Sequential(modules[0], *pairs[0])
        return list(zip(self.split_points, pairs, strict=True))

    def lower_part(self, split: str) -> nn.Sequential:
        """Inputs → the output of hidden layer ``split``."""
        return cut(self._layers(), self.split_points, split, ())[0]

    def upper_part(self, split: str) -> nn.Sequential:
        """The output of hidden layer ``split`` → the last hidden layer's output."""
        return cut(self._layers(), self.split_points, split, ())[1]


BACKBONES.add(
    "mlp",
    BackboneSpec(
        MLPConfig, MLP, "fully connected, 2 x 100 hidden units by default (MNIST-like data)"
    ),
)
