"""Function-space distance of FDR (Benjamin, Rolnick & Kording, ICLR 2019)."""

from __future__ import annotations

import torch


def function_distance(probs: torch.Tensor, stored: torch.Tensor) -> torch.Tensor:
    """Mean L2 distance between current and recorded output distributions.

    ``mean_i || p(x_i) - q_i ||_2``, where ``p(x_i)`` is the current softmax output on buffer
    input ``x_i`` and ``q_i`` the softmax output recorded when its experience ended: a Monte
    Carlo estimate of the L2 distance between the two networks in function space, as in the DER
    paper's FDR (the norm, not its square).

    Args:
        probs: Current softmax outputs, shape (B, K).
        stored: Recorded softmax outputs, shape (B, K).

    Returns:
        Scalar loss.
    """
    distances: torch.Tensor = torch.linalg.vector_norm(probs - stored, dim=1)
    return distances.mean()
