"""SARL with learned similarity on GELU backbones (SARL_Optim ``sarl_enhanced_gelu``, §2.2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from lifelong.methods.base import register
from lifelong.methods.sarl_enhanced import SARLEnhanced


@register
class SARLEnhancedGELU(SARLEnhanced):
    """``sarl_enhanced`` on dense GELU backbones instead of sparse k-WTA ones.

    The algorithm is :class:`SARLEnhanced` unchanged. On the command line the scenario's
    default backbone becomes its GELU form (``mlp`` → ``gelu_mlp``, ``resnet18`` →
    ``gelu_resnet18``: tanh-approximated GELU in every block, ReLU stem, no sparsity). GELU
    features can be negative, so prototype cosines span [-1, 1] and the similarity targets get
    both labels more easily than on k-WTA features. The reference's unused ``AdaptiveThreshold``
    module is not built here; the balanced variant gives thresholding a role.
    """

    name = "sarl_enhanced_gelu"
    backbone_variants: ClassVar[Mapping[str, str]] = {
        "mlp": "gelu_mlp",
        "resnet18": "gelu_resnet18",
    }
