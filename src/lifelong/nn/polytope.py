"""A fixed classifier on the vertices of a regular simplex (Regular Polytope Classifier).

Pernici et al., *Class-incremental learning with pre-allocated fixed classifiers* (ICPR 2021),
after *Fix your features* (Pernici et al., 2019): the ``K`` class weight vectors are the vertices
of a regular ``d``-simplex in ``R^d``, ``d = K − 1``, fixed before training and never updated, so
classes that arrive later already own their place in feature space. The vertices are centred
(their mean is 0) and unit-norm, so every pair has the inner product ``−1/d``, the most
separated configuration of ``K`` unit vectors.

The network keeps a trainable projection of its features to ``d`` dimensions (the backbone's
last ``Linear``, with its bias, narrowed to ``d`` outputs) and the classifier is
``logits = z · V`` with ``V`` the (d, K) matrix of vertices, no bias.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


def simplex_vertices(num_classes: int) -> torch.Tensor:
    """The ``K = num_classes`` vertices of a centred regular simplex with unit norm, as columns.

    The classic construction (Burkardt's ``simplex_coordinates2``, which mammoth's ``dsimplex``
    uses): with ``d = K − 1``, take the ``d`` unit vectors ``e_j`` and the point ``a·1`` with
    ``a = (1 − √(d + 1)) / d`` (every pair of these ``K`` points is √2 apart), subtract their
    centroid, and divide by the common norm.

    Args:
        num_classes: K >= 2.

    Returns:
        Float32 tensor (K − 1, K): column ``k`` is the vertex of class ``k``.

    Raises:
        ValueError: For fewer than two classes.
    """
    if num_classes < 2:
        raise ValueError(f"a simplex classifier needs at least 2 classes, got {num_classes}")
    d = num_classes - 1
    points = torch.zeros(d, num_classes, dtype=torch.float64)
    points[:, :d] = torch.eye(d, dtype=torch.float64)
    points[:, d] = (1.0 - math.sqrt(d + 1.0)) / d
    points -= points.mean(dim=1, keepdim=True)
    points /= points[:, 0].norm()
    return points.float()


class PolytopeHead(nn.Linear):
    """A trainable ``Linear(D → K − 1)`` followed by the fixed simplex classifier (no bias).

    It is an ``nn.Linear`` (its ``weight`` and ``bias`` are the trainable projection) so that
    it takes the place of a backbone's head; ``forward`` returns the ``K`` logits
    ``(W f + b) · V``. The vertices ``V`` are a registered buffer: saved with the model and
    never given to an optimiser.

    Args:
        in_features: Feature width D.
        num_classes: Number of classes K (the simplex has K vertices).
    """

    vertices: torch.Tensor

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__(in_features, num_classes - 1)
        self.register_buffer("vertices", simplex_vertices(num_classes))

    @property
    def num_classes(self) -> int:
        """K, the number of logits."""
        return int(self.vertices.shape[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, K) of features ``x`` (B, D)."""
        return F.linear(x, self.weight, self.bias) @ self.vertices
