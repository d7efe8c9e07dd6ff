"""Apply a network to several batches in one forward pass when that changes nothing.

DER and DER++ take a forward pass on the current batch and one or two on buffer samples. With
the DER paper's MNIST settings each batch has 10 examples, and three small passes cost about
1.5× one pass over the 30 examples together (per-call overhead dominates; ``benchmarks/``
measures it). One pass over the concatenation gives the same outputs only when no module
couples the examples of a batch: batch normalisation in training mode (batch statistics and
running averages) and random modules such as dropout (the random numbers would be drawn in a
different order). :func:`forward_each` uses one pass only when none is present.

A module of ours that couples examples says so with a class attribute
``couples_examples = True`` (batch renormalisation); torch's batch-norm and dropout layers are
known by type. Forward hooks (SCoMMER's semantic dropout and activation counts, feature
captures) may do anything per call, so a network with any hook also gets one pass per batch.
"""

from __future__ import annotations

import torch
from torch import nn

TORCH_COUPLING: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.dropout._DropoutNd,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)
"""torch modules whose training-mode output for one example depends on the rest of the batch
or on the random stream."""


def examples_independent(net: nn.Module) -> bool:
    """Whether ``net``'s output (and state) for each example is the same in any batch."""
    if nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks:
        return False
    for module in net.modules():
        if module._forward_hooks or module._forward_pre_hooks:
            return False
        coupling = isinstance(module, TORCH_COUPLING) or getattr(module, "couples_examples", False)
        if module.training and coupling:
            return False
    return True


def forward_each(net: nn.Module, *inputs: torch.Tensor) -> list[torch.Tensor]:
    """``[net(x) for x in inputs]``, computed in one pass over their concatenation when equal.

    Args:
        net: The network.
        *inputs: Batches with the same per-example shape, (B_i, ...) each.

    Returns:
        One output per input, (B_i, ...) each, in order.
    """
    if len(inputs) == 1 or not examples_independent(net):
        return [net(x) for x in inputs]
    joint: torch.Tensor = net(torch.cat(inputs))
    return list(joint.split([len(x) for x in inputs]))
