"""SCoMMER's dropout (Sarfraz, Arani & Zonooz, AAAI 2023): heterogeneous and semantic.

Activation counts per unit (overall and per class) turn into keep probabilities: units that
fired most are dropped most (heterogeneous dropout), and each class keeps the units it used most
(semantic dropout). Masks are applied before chosen activation modules by forward hooks.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from lifelong.nn.k_winners import KWinners


def heterogeneous_keep(counts: torch.Tensor, alpha: float) -> torch.Tensor:
    """SCoMMER's heterogeneous dropout: ``keep_j = exp(−alpha · c_j / max_j c_j)``, (C,) → (C,).

    Units that fired most so far are kept least (all ones while nothing has been counted).
    """
    peak = counts.max()
    if peak <= 0:
        return torch.ones_like(counts)
    return torch.exp(-alpha * counts / peak)


def classwise_keep(class_counts: torch.Tensor, alpha: float) -> torch.Tensor:
    """SCoMMER's semantic dropout: ``keep_kj = 1 − exp(−alpha · c_kj / (max_j c_kj + 1e-16))``.

    The units a class has used most are kept most for that class; a class with no counts gets
    an all-zero row (it falls back to heterogeneous dropout). Shapes: (K, C) → (K, C).
    """
    peak = class_counts.max(dim=1, keepdim=True).values
    return 1 - torch.exp(-alpha * class_counts / (peak + 1e-16))


def dropout_mask(
    labels: torch.Tensor,
    keep: torch.Tensor,
    class_keep: torch.Tensor,
    kept: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Per-example unit masks (B, C): semantic where the label has class-wise probabilities.

    An example whose class has a non-zero row of ``class_keep`` (K, C) keeps unit ``j`` with
    probability ``class_keep[y, j]``, drawn per example and unit; the others share one
    heterogeneous mask of ``kept`` units drawn without replacement with weights ``keep`` (C,).
    """
    device = generator.device
    chosen = torch.multinomial(keep.to(device), kept, replacement=False, generator=generator)
    heterogeneous = torch.zeros(keep.shape[0], device=device).index_fill_(0, chosen, 1.0)
    rows = class_keep[labels].to(device)
    classwise = (torch.rand(rows.shape, generator=generator, device=device) < rows).float()
    has_class = rows.sum(1, keepdim=True) > 0
    return torch.where(has_class, classwise, heterogeneous.expand_as(rows)).to(labels.device)


class SemanticDropout(nn.Module):
    """One layer's activation counts (overall and per class) and dropout keep probabilities.

    The heterogeneous probabilities start at 1 for the first ``kept`` units and 0 for the rest
    (the authors' ``init_dropout``), the class-wise ones at 0 (no class has counts yet).
    """

    counts: torch.Tensor
    class_counts: torch.Tensor
    keep: torch.Tensor
    class_keep: torch.Tensor

    def __init__(self, units: int, num_classes: int, kept: int, device: torch.device) -> None:
        super().__init__()
        self.kept = kept
        self.register_buffer("counts", torch.zeros(units, device=device))
        self.register_buffer("class_counts", torch.zeros(num_classes, units, device=device))
        self.register_buffer("keep", (torch.arange(units, device=device) < kept).float())
        self.register_buffer("class_keep", torch.zeros(num_classes, units, device=device))

    def attach(
        self, layer: nn.Module, labels: torch.Tensor, generator: torch.Generator
    ) -> list[RemovableHandle]:
        """Hooks on ``layer``: mask its input by :func:`dropout_mask`, count its firing units."""
        mask = dropout_mask(labels, self.keep, self.class_keep, self.kept, generator)

        def masked(_m: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor]:
            return (args[0] * mask.view(*mask.shape, *[1] * (args[0].dim() - 2)),)

        def counted(_m: nn.Module, _args: Any, out: torch.Tensor) -> None:
            fired = out.detach().flatten(2).sum(-1) if out.dim() > 2 else out.detach()
            active = (fired > 0).float()  # a conv filter fires if any location does
            self.counts += active.sum(0)
            self.class_counts.index_add_(0, labels, active)

        return [layer.register_forward_pre_hook(masked), layer.register_forward_hook(counted)]

    def refresh(self, alpha: float, class_alpha: float, heterogeneous: bool) -> None:
        """Keep probabilities from the counts: the class-wise ones, and the others if asked."""
        if heterogeneous:
            self.keep.copy_(heterogeneous_keep(self.counts, alpha))
        self.class_keep.copy_(classwise_keep(self.class_counts, class_alpha))


def activation_layers(net: nn.Module) -> list[nn.Module]:
    """The network's k-WTA modules in registration order, or its ReLU modules if it has none."""
    kwta: list[nn.Module] = [m for m in net.modules() if isinstance(m, KWinners)]
    return kwta or [m for m in net.modules() if isinstance(m, nn.ReLU)]
