"""The optimisers the continual-SSL reference offers: SGD, Adam, and LARS for large batches.

LARS (You, Gitman & Ginsburg, "Large Batch Training of Convolutional Networks", arXiv:1708.03888,
2017) scales each weight tensor's step by a trust ratio. The reference wraps SGD with Nesterov
momentum in the clipped form (NVIDIA apex's LARC): for a weight w with gradient g, weight decay
λ, learning rate lr and coefficient η,

    local = η ‖w‖ / (‖g‖ + λ ‖w‖ + ε),   scale = min(local / lr, 1),   g ← scale (g + λ w)

and the inner SGD then steps with lr (its own weight decay off, as λ is already in g). Biases and
normalisation parameters (tensors of one dimension) are excluded: they keep g + λ w unscaled. A
tensor whose weight or gradient norm is zero is not scaled either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

OPTIMIZERS = ("sgd", "adam", "lars")
"""The ``method.optimizer`` choices of ``cssl``."""
EPS = 1e-8


def lars_scales(
    weight: torch.Tensor, grad: torch.Tensor, lr: float, eta: float, weight_decay: float
) -> float:
    """The clipped LARS factor ``min(η‖w‖ / (‖g‖ + λ‖w‖ + ε) / lr, 1)`` of one weight tensor.

    Returns 1 (no scaling) when either norm is zero.
    """
    w_norm, g_norm = float(weight.norm()), float(grad.norm())
    if w_norm == 0 or g_norm == 0:
        return 1.0
    local = eta * w_norm / (g_norm + weight_decay * w_norm + EPS)
    return min(local / lr, 1.0)


class LARS(torch.optim.Optimizer):
    """SGD (Nesterov momentum) whose weight tensors take the clipped LARS step (module doc).

    Args:
        params: Parameters to optimise.
        lr: Learning rate.
        momentum: SGD momentum (Nesterov).
        weight_decay: λ, added to the gradient before scaling.
        eta: Trust coefficient η (the reference's 0.005).
    """

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float,
        momentum: float,
        weight_decay: float,
        eta: float,
    ) -> None:
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "eta": eta}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One step over every parameter with a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, momentum, decay, eta = (group[k] for k in ("lr", "momentum", "weight_decay", "eta"))
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.add(p, alpha=decay) if decay else p.grad.clone()
                if p.dim() > 1:
                    grad.mul_(lars_scales(p, p.grad, lr, eta, decay))
                if momentum:
                    state = self.state[p]
                    buffer = state.get("momentum_buffer")
                    if buffer is None:
                        buffer = state["momentum_buffer"] = grad.clone()
                    else:
                        buffer.mul_(momentum).add_(grad)
                    grad = grad.add(buffer, alpha=momentum)  # Nesterov
                p.add_(grad, alpha=-lr)
        return loss


def build_ssl_optimizer(
    name: str,
    params: list[torch.nn.Parameter],
    lr: float,
    momentum: float,
    weight_decay: float,
    lars_eta: float,
) -> torch.optim.Optimizer:
    """``sgd`` (momentum), ``adam`` (torch's defaults for the betas) or ``lars`` over ``params``."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "lars":
        return LARS(params, lr=lr, momentum=momentum, weight_decay=weight_decay, eta=lars_eta)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
