"""Gradient projections of GEM and A-GEM, and flat views of a network's gradient.

The projections are pure functions of flat gradient vectors, testable without a network.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import quadprog
import torch
from torch import nn

GEM_EPS = 1e-3
"""Ridge added to the dual's Gram matrix G Gᵀ (the GEM code's ``eps``), so it is positive
definite even when two memories' gradients are parallel."""


def project_gem(
    g: torch.Tensor, memories: torch.Tensor, margin: float, eps: float = GEM_EPS
) -> torch.Tensor:
    """GEM's projected gradient (Lopez-Paz & Ranzato, NeurIPS 2017, Eq. 10-11).

    When ``⟨g, g_k⟩ ≥ 0`` for every past experience k the gradient is returned unchanged.
    Otherwise the dual QP

        min_v ½ vᵀ (G Gᵀ + eps I) v + gᵀ Gᵀ v   subject to   v ≥ margin

    is solved and ``g̃ = Gᵀ v + g`` is returned. With ``margin = 0`` (and ``eps = 0``) ``g̃`` is
    the closest vector to ``g`` in Euclidean norm with ``⟨g̃, g_k⟩ ≥ 0`` for all k; the paper's
    ``gamma`` (§3, "adding a small constant γ ≥ 0 to v*") raises the dual variables' lower bound,
    biasing the update towards backward transfer, as in the authors' code.

    The QP is solved by ``quadprog`` (Goldfarb-Idnani dual active set, exact for small dense
    problems: one variable per past experience), in float64 on the CPU.

    Args:
        g: Current gradient, shape (P,).
        memories: Gradients of the past experiences' memories G, shape (K, P).
        margin: The lower bound gamma >= 0 of the dual variables.
        eps: Ridge on G Gᵀ.

    Returns:
        The gradient to apply, shape (P,), dtype and device of ``g``.
    """
    if bool((memories @ g >= 0).all()):
        return g
    gram_rows = memories.detach().double().cpu().numpy()
    gradient = g.detach().double().cpu().numpy()
    gram = gram_rows @ gram_rows.T
    gram = 0.5 * (gram + gram.T) + eps * np.eye(len(gram))
    # quadprog minimises ½ vᵀ P v − aᵀ v subject to Cᵀ v ≥ b
    v = quadprog.solve_qp(
        gram, -(gram_rows @ gradient), np.eye(len(gram)), np.full(len(gram), margin)
    )[0]
    projected = v @ gram_rows + gradient
    return torch.from_numpy(projected).to(dtype=g.dtype, device=g.device)


def project_agem(g: torch.Tensor, g_ref: torch.Tensor) -> torch.Tensor:
    """A-GEM's projected gradient (Chaudhry et al., ICLR 2019, Eq. 11).

    ``g̃ = g − (gᵀ g_ref / g_refᵀ g_ref) g_ref`` when ``gᵀ g_ref < 0``, else ``g``: the update may
    not increase the loss on the reference (memory) minibatch, to first order.

    Args:
        g: Current gradient, shape (P,).
        g_ref: Gradient on a minibatch of the episodic memory, shape (P,).

    Returns:
        The gradient to apply, shape (P,).
    """
    dot = torch.dot(g, g_ref)
    if dot >= 0:
        return g
    return g - (dot / torch.dot(g_ref, g_ref)) * g_ref


def trainable(net: nn.Module) -> list[nn.Parameter]:
    """The parameters of ``net`` that require a gradient, in a fixed order."""
    return [p for p in net.parameters() if p.requires_grad]


def flat_grad(params: Sequence[nn.Parameter]) -> torch.Tensor:
    """The gradients of ``params`` as one vector (zeros where a parameter has none)."""
    return torch.cat(
        [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
    )


def set_flat_grad(params: Sequence[nn.Parameter], vector: torch.Tensor) -> None:
    """Write ``vector`` (from :func:`flat_grad`) back into the gradients that exist."""
    offset = 0
    for p in params:
        n = p.numel()
        if p.grad is not None:
            p.grad.copy_(vector[offset : offset + n].view_as(p))
        offset += n
