"""k-winners-take-all activations (Ahmad & Scheinkman, 2019), as used by SARL's sparse backbones."""

from __future__ import annotations

import torch
from torch import nn

from lifelong.errors import ConfigError


def winners_count(channels: int, percent_on: float) -> int:
    """Number of units kept on: ``round(channels * percent_on)``, at least 1."""
    return max(1, round(channels * percent_on))


def k_winners(x: torch.Tensor, k: int, dim: int = 1) -> torch.Tensor:
    """Keep the ``k`` largest non-negative values along ``dim`` and zero the rest.

    ``threshold = max(kth_largest(x, dim), 0)``; ``out = x * (x >= threshold)``. With ``dim=1`` on a
    (B, C, H, W) map this is SARL's local k-WTA: at every spatial location, the top-``k`` channels
    stay on (ties with the k-th value also stay on, as in the reference). Clamping the threshold at
    0 makes it a ReLU followed by the top-``k`` selection. Gradients flow through the winners only.

    Args:
        x: Activations, e.g. (B, C) or (B, C, H, W).
        k: Units kept per position, ``1 <= k <= x.shape[dim]``.
        dim: The dimension competed over (channels).

    Returns:
        A tensor shaped like ``x``.
    """
    threshold = torch.topk(x.detach(), k, dim=dim).values.narrow(dim, k - 1, 1).clamp_(min=0)
    return x * (x >= threshold)


class KWinners(nn.Module):
    """Module form of :func:`k_winners` over dimension 1 with a fixed fraction of winners.

    Args:
        channels: Size of dimension 1.
        percent_on: Fraction of units kept on (``kw`` in SARL; 0.9 keeps 90 %).
    """

    def __init__(self, channels: int, percent_on: float) -> None:
        super().__init__()
        if not 0 < percent_on <= 1:
            raise ConfigError(f"k-WTA fraction kept on must be in (0, 1], got {percent_on}")
        self.percent_on = percent_on
        self.k = winners_count(channels, percent_on)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply k-WTA over dimension 1."""
        return k_winners(x, self.k, dim=1)

    def extra_repr(self) -> str:
        """Shown by ``print(module)``."""
        return f"k={self.k}, percent_on={self.percent_on}"
