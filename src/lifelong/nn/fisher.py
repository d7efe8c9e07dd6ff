"""The empirical Fisher information diagonal of a classifier, from per-example gradients.

EWC (Kirkpatrick et al., PNAS 2017) weighs each parameter by the diagonal of the Fisher
information at the end of an experience. The *empirical* Fisher uses the observed label ``y`` of
each training example instead of labels sampled from the model:

    F_i = (1 / N) Σ_n w_n (∂ log p(y_n | x_n; θ) / ∂θ_i)²

with ``w_n = 1`` (the textbook estimate) or ``w_n = p(y_n | x_n; θ)`` (the DER paper's mammoth
code, ``models/ewc_on.py``, weighs each example's squared gradient by the model's probability of
its true label). The gradients are per example, not of a batch mean: they are computed with
``torch.func`` (``vmap`` of ``grad`` over the examples of a chunk), which gives the same numbers
as one backward pass per example (batch of 1), many times faster.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn
from torch.func import functional_call, grad, vmap


def empirical_fisher_diagonal(
    net: nn.Module,
    parameters: Sequence[tuple[str, nn.Parameter]],
    chunks: Iterable[tuple[torch.Tensor, torch.Tensor]],
    weight_by_probability: bool = False,
) -> list[torch.Tensor]:
    """The empirical Fisher diagonal of ``parameters`` over the examples in ``chunks``.

    The network is evaluated in eval mode (batch norm uses its running statistics, dropout is
    off, so each example's gradient does not depend on the others of its chunk); its mode is
    restored afterwards. Parameters not listed are held fixed.

    Args:
        net: A classifier returning logits (B, K).
        parameters: ``(name, parameter)`` pairs of ``net`` (names as ``named_parameters``).
        chunks: ``(x, y)`` pairs: inputs as the network takes them (B, ...) and labels (B,).
        weight_by_probability: Weigh each example's squared gradient by p(y | x) (mammoth).

    Returns:
        One tensor per parameter, of its shape: the mean over all examples of the (weighted)
        squared gradient of log p(y | x). Zeros when ``chunks`` holds no example.
    """
    names = [name for name, _ in parameters]
    fixed = {name: p.detach() for name, p in parameters}

    def log_likelihood(
        values: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = functional_call(net, values, (x.unsqueeze(0),))
        log_p = F.log_softmax(logits, dim=1)[0].gather(0, y.unsqueeze(0)).squeeze(0)
        return log_p, log_p.detach()

    per_example = vmap(grad(log_likelihood, has_aux=True), in_dims=(None, 0, 0))
    sums = [torch.zeros_like(p) for _, p in parameters]
    count = 0
    was_training = net.training
    net.train(False)
    try:
        for x, y in chunks:
            grads, log_p = per_example(fixed, x, y)
            weights = log_p.exp() if weight_by_probability else torch.ones_like(log_p)
            for total, name in zip(sums, names, strict=True):
                squared = grads[name].square()
                total.add_((weights.view(-1, *[1] * (squared.dim() - 1)) * squared).sum(0))
            count += int(y.shape[0])
    finally:
        net.train(was_training)
    return [total / max(count, 1) for total in sums]
