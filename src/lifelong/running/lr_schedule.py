"""The learning rate the loop sets and logs: a step decay over each experience's epochs."""

from __future__ import annotations

import torch

from lifelong.methods.base import Method


def set_epoch_learning_rate(
    method: Method, epoch: int, milestones: tuple[int, ...], gamma: float
) -> None:
    """Step decay within an experience: ``lr = lr₀ · gamma^|{m ∈ milestones : m ≤ epoch}|``.

    ``epoch`` counts from 0, so epoch ``m`` is the first at the lower rate, as mammoth's
    ``MultiStepLR`` stepped after each epoch and rebuilt for each task. ``lr₀`` is each
    parameter group's rate when first seen (kept as ``initial_lr``, PyTorch's schedulers' key,
    so it survives in checkpoints); the method's main optimiser (``method.optimizer``) only.
    """
    optimizer = getattr(method, "optimizer", None)
    if not isinstance(optimizer, torch.optim.Optimizer):
        return
    factor = gamma ** sum(m <= epoch for m in milestones)
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
        group["lr"] = group["initial_lr"] * factor


def learning_rate(method: Method) -> float | None:
    """The learning rate of the method's (first) optimiser parameter group, for the step log."""
    optimizer = getattr(method, "optimizer", None)
    if not isinstance(optimizer, torch.optim.Optimizer) or not optimizer.param_groups:
        return None
    return float(optimizer.param_groups[0]["lr"])
