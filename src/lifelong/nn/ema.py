"""Stochastically updated exponential moving averages of a network (CLS-ER, SCoMMER).

The semantic memories of CLS-ER (Arani et al., ICLR 2022) and SCoMMER (Sarfraz et al., AAAI 2023)
are copies of the working model whose parameters follow ``θ_ema ← d θ_ema + (1 − d) θ`` after an
optimiser step, taken only with probability ``r`` at each step. Their code ramps the decay with
the global step: ``d = min(1 − 1/(step + 1), α)`` (``update_*_variables`` in ``models/clser.py``,
``update_ema_weights`` in ``models/scommer.py``), so the early averages weigh all steps alike
(``d`` = 1/2, 2/3, 3/4, …) until ``d`` reaches ``α`` at step ``1/(1 − α) − 1``.
"""

from __future__ import annotations

import torch
from torch import nn


def ema_decay(step: int, alpha: float) -> float:
    """The EMA decay after optimiser step ``step`` (1-based): ``min(1 − 1/(step + 1), α)``.

    Args:
        step: Optimiser steps taken so far, counting the one just taken (>= 1).
        alpha: The decay's ceiling, in [0, 1).
    """
    return min(1.0 - 1.0 / (step + 1), alpha)


def ema_update_(target: nn.Module, online: nn.Module, decay: float) -> None:
    """``θ_target ← decay θ_target + (1 − decay) θ_online`` for every parameter pair, in place.

    Buffers (batch-norm statistics) are left alone, as in the CLS-ER and SCoMMER code.
    """
    with torch.no_grad():
        for t, o in zip(target.parameters(), online.parameters(), strict=True):
            t.mul_(decay).add_(o.detach(), alpha=1.0 - decay)


def update_gate(probability: float, generator: torch.Generator) -> bool:
    """Whether a stochastic update happens: one ``U[0, 1)`` draw < ``probability``.

    The number is drawn from ``generator``; ``probability`` 1 always updates, 0 never, and
    exactly one number is drawn either way.
    """
    return bool(torch.rand(1, generator=generator, device=generator.device).item() < probability)
