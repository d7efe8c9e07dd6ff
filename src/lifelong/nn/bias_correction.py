"""BiC's bias correction layer (Wu et al., CVPR 2019, Eq. 4) and its fit on held-out data."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


class BiasCorrection(nn.Module):
    """``q_k = alpha_k o_k + beta_k`` per class; ``(alpha_k, beta_k) = (1, 0)`` until corrected.

    BiC fits one pair ``(alpha, beta)`` per incremental step on the logits of that step's new
    classes only; old classes' logits pass unchanged. Keeping the pairs per class lets every
    step's correction apply to its own classes at once. The pairs are buffers (not trained by
    the network's optimiser; they travel with the ``state_dict``).

    Args:
        num_classes: Number of output units.
    """

    alpha: torch.Tensor
    beta: torch.Tensor

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("alpha", torch.ones(num_classes))
        self.register_buffer("beta", torch.zeros(num_classes))

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        """Corrected logits, shape (B, K)."""
        return logits * self.alpha + self.beta

    @torch.no_grad()
    def set(self, classes: torch.Tensor, alpha: float, beta: float) -> None:
        """Give the classes of bool mask ``classes`` (K,) the correction ``(alpha, beta)``."""
        self.alpha[classes] = alpha
        self.beta[classes] = beta


def fit_bias_correction(
    logits: torch.Tensor,
    labels: torch.Tensor,
    new: torch.Tensor,
    seen: torch.Tensor,
    steps: int,
    lr: float,
) -> tuple[float, float]:
    """BiC's stage 2: the ``(alpha, beta)`` of the new classes that minimise CE on held-out data.

    Minimises ``CE(softmax over seen classes of q), y)`` with ``q_k = alpha o_k + beta`` for
    ``k`` in ``new`` and ``q_k = o_k`` otherwise (Wu et al., CVPR 2019, Eq. 5), by ``steps``
    full-batch Adam steps from ``(1, 0)``. The logits are fixed: the network is frozen.

    Args:
        logits: The network's logits on the validation set, shape (N, K) (no gradient).
        labels: Their labels (N,), each in ``seen``.
        new: Bool mask (K,) of the classes the correction applies to.
        seen: Bool mask (K,) of the classes the softmax runs over.
        steps: Number of Adam steps.
        lr: Adam's learning rate.

    Returns:
        ``(alpha, beta)``.
    """
    params = torch.tensor([1.0, 0.0], device=logits.device, requires_grad=True)
    optimizer = torch.optim.Adam([params], lr=lr)
    index = seen.nonzero().flatten()
    position = torch.full_like(seen, -1, dtype=torch.long)
    position[index] = torch.arange(len(index), device=seen.device)
    targets = position[labels]
    logits = logits.detach()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        corrected = torch.where(new, logits * params[0] + params[1], logits)
        F.cross_entropy(corrected[:, index], targets).backward()
        optimizer.step()
    alpha, beta = params.detach().tolist()
    return float(alpha), float(beta)
