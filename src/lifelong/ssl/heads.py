"""Projector and predictor MLPs shared by the SSL models (spec ``cssl.md`` §1).

The projector follows SimSiam (Chen & He, *Exploring Simple Siamese Representation Learning*,
CVPR 2021) with the reference's widths: its hidden layers are as wide as the encoder (d_e), not
2048. The predictor is SimSiam's bottleneck MLP, used by SimSiam and BYOL (Grill et al.,
*Bootstrap Your Own Latent*, NeurIPS 2020).
"""

from __future__ import annotations

from torch import nn


def projector_mlp(in_dim: int, out_dim: int, final_bn: bool = True) -> nn.Sequential:
    """The common 3-layer projector d_e → d_e → d_e → d_p.

    ``Linear(d_e, d_e, bias=False) → BN → ReLU`` twice, then ``Linear(d_e, d_p)`` and, when
    ``final_bn``, ``BN(d_p, affine=False)``. With the final BN the last Linear keeps a frozen bias
    (``requires_grad=False``), as in the reference and SimSiam's code: a bias before a BN is
    cancelled by it. Without the final BN (Barlow Twins, whose loss standardises z itself) the
    last Linear has no bias, as in the Barlow Twins code.

    Args:
        in_dim: Encoder width d_e (also the hidden width).
        out_dim: Projection width d_p.
        final_bn: Whether to end with ``BatchNorm1d(d_p, affine=False)``.

    Returns:
        The projector, mapping (B, d_e) to (B, d_p).
    """
    last = nn.Linear(in_dim, out_dim, bias=final_bn)
    layers: list[nn.Module] = [
        nn.Linear(in_dim, in_dim, bias=False),
        nn.BatchNorm1d(in_dim),
        nn.ReLU(inplace=True),
        nn.Linear(in_dim, in_dim, bias=False),
        nn.BatchNorm1d(in_dim),
        nn.ReLU(inplace=True),
        last,
    ]
    if final_bn:
        assert last.bias is not None
        last.bias.requires_grad_(False)
        layers.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*layers)


def predictor_mlp(dim: int, hidden_dim: int) -> nn.Sequential:
    """The predictor d_p → d_pred → d_p: ``Linear(no bias) → BN → ReLU → Linear``.

    Args:
        dim: Projection width d_p (input and output).
        hidden_dim: Bottleneck width d_pred (512 in the reference).

    Returns:
        The predictor, mapping (B, d_p) to (B, d_p).
    """
    return nn.Sequential(
        nn.Linear(dim, hidden_dim, bias=False),
        nn.BatchNorm1d(hidden_dim),
        nn.ReLU(inplace=True),
        nn.Linear(hidden_dim, dim),
    )
