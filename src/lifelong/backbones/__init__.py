"""Backbones: networks that map images to features and logits, registered by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from lifelong.registry import Registry


class Backbone(nn.Module):
    """A classifier split into a feature extractor and a linear head.

    Subclasses set ``self.head`` (an ``nn.Linear``) and implement :meth:`features`.
    """

    head: nn.Linear

    def features(self, x: Any) -> Any:
        """Penultimate features, shape (B, feature_dim)."""
        raise NotImplementedError

    def forward(self, x: Any) -> Any:
        """Logits, shape (B, num_classes)."""
        return self.head(self.features(x))


@dataclass(frozen=True)
class BackboneSpec:
    """A registered backbone: its config dataclass and a builder.

    ``build(cfg, image_shape, num_classes)`` returns the network.
    """

    config_cls: type[Any]
    build: Callable[[Any, tuple[int, int, int], int], Backbone]
    description: str


BACKBONES: Registry[BackboneSpec] = Registry("backbone")
