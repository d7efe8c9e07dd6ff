"""Backbones cut in two at a named layer, for latent replay.

Pellegrini et al., *Latent Replay for Real-Time Continual Learning* (IROS 2020; spec ``ar1.md``
§2.1, §5): the layers below the latent layer are frozen, their output is stored and replayed, and
only the layers above it train. A :class:`SplitBackbone` names its split points and returns the
two parts as ``nn.Sequential`` views of its own modules.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from torch import nn

from lifelong.errors import ConfigError


@runtime_checkable
class SplitBackbone(Protocol):
    """A backbone that can be cut at any of its named layers.

    ``head(upper_part(s)(lower_part(s)(x)))`` equals ``backbone(x)`` exactly for every split
    point ``s``: both parts hold the backbone's own modules (no copies), so training or freezing
    a part trains or freezes the backbone. The two names may be class attributes or properties.
    """

    @property
    def split_points(self) -> tuple[str, ...]:
        """Names of the layers where the network can be cut, in forward order."""
        ...

    @property
    def default_split(self) -> str:
        """The split point used when none is configured."""
        ...

    def lower_part(self, split: str) -> nn.Sequential:
        """Input → activations at the output of layer ``split``."""
        ...

    def upper_part(self, split: str) -> nn.Sequential:
        """Activations at ``split`` → flattened penultimate features (the head's input)."""
        ...


def split_index(split: str, split_points: Sequence[str]) -> int:
    """Position of ``split`` in ``split_points``.

    Raises:
        ConfigError: if ``split`` is not a split point; the message lists the valid names.
    """
    if split not in split_points:
        raise ConfigError(f"unknown split point {split!r}: choose one of {', '.join(split_points)}")
    return list(split_points).index(split)


def cut(
    layers: Sequence[tuple[str, nn.Module]],
    split_points: Sequence[str],
    split: str,
    tail: Sequence[tuple[str, nn.Module]],
) -> tuple[nn.Sequential, nn.Sequential]:
    """Cut ``layers`` after the one at ``split``.

    Args:
        layers: (module name, module) in forward order, one per split point.
        split_points: The public names of ``layers`` (the same order and length).
        split: Where to cut.
        tail: Stateless modules that follow ``layers`` in the upper part (pooling, flatten).

    Returns:
        (lower, upper): ``layers[: i + 1]`` and ``layers[i + 1 :] + tail`` for ``split`` at
        position ``i``, sharing the given modules.
    """
    index = split_index(split, split_points)
    lower = nn.Sequential(OrderedDict(layers[: index + 1]))
    upper = nn.Sequential(OrderedDict([*layers[index + 1 :], *tail]))
    return lower, upper


def freeze(module: nn.Module) -> None:
    """Stop gradients to every parameter of ``module``.

    Batch-norm and batch-renorm statistics still move in training mode: the caller keeps the
    frozen part in evaluation mode with ``module.train(False)`` after each ``.train()``.
    """
    module.requires_grad_(False)
