"""GDumb: a greedy class-balanced memory and a network trained from scratch on it alone."""

from __future__ import annotations

import copy
import logging
import math
import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812

from lifelong.buffers.class_balanced import ClassBalancedBuffer
from lifelong.data.stream import Experience
from lifelong.errors import ConfigError, NonFiniteLossError
from lifelong.methods.base import Method, MethodContext, register
from lifelong.methods.rehearsal import RehearsalConfig, replay_fields
from lifelong.types import Batch, StepOutput

logger = logging.getLogger(__name__)

Box = tuple[int, int, int, int]
"""A CutMix box: (top, left, bottom, right) pixel bounds, bottom and right exclusive."""


@dataclass(frozen=True)
class GDumbConfig(RehearsalConfig):
    """Settings of GDumb; the defaults are the authors' (``src/opts.py``)."""

    lr: float = 0.05
    """Highest learning rate of the memory schedule (GDumb's ``--maxlr``)."""
    momentum: float = 0.9
    """SGD momentum of the memory training."""
    weight_decay: float = 1e-6
    """L2 weight decay of the memory training."""
    minibatch_size: int = 16
    """Memory examples per training step (GDumb's ``--batch_size``)."""
    min_lr: float = 0.0005
    """Lowest learning rate of the cosine schedule (GDumb's ``--minlr``)."""
    epochs_on_memory: int = 128
    """Passes over the memory after each experience (GDumb's ``--num_passes``)."""
    clip_grad_norm: float = 10.0
    """Gradient norm clipped at each memory step (GDumb's ``--clip``; 0 disables)."""
    cutmix_prob: float = 0.0
    """Probability that a memory batch is CutMix-ed (GDumb: 0.5 with cutmix on; 0 is off)."""
    cutmix_beta: float = 1.0
    """CutMix's Beta(beta, beta) parameter of the pasted area (GDumb's ``--cutmix_alpha``)."""

    def own_lr_schedule(self) -> str | None:
        """GDumb anneals its rate from ``lr`` to ``min_lr`` with warm restarts (SGDR)."""
        return "method.min_lr (GDumb's SGDR)"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.min_lr <= self.lr:
            raise ConfigError(f"method.min_lr must be in (0, lr={self.lr}], got {self.min_lr}")
        if self.epochs_on_memory <= 0:
            raise ConfigError(
                f"method.epochs_on_memory must be positive, got {self.epochs_on_memory}"
            )
        if not self.clip_grad_norm >= 0:
            raise ConfigError(f"method.clip_grad_norm must be >= 0, got {self.clip_grad_norm}")
        if not 0 <= self.cutmix_prob <= 1:
            raise ConfigError(f"method.cutmix_prob must be in [0, 1], got {self.cutmix_prob}")
        if not self.cutmix_beta > 0:
            raise ConfigError(f"method.cutmix_beta must be positive, got {self.cutmix_beta}")


def sgdr_learning_rate(epoch: int, max_lr: float, min_lr: float) -> float:
    """GDumb's learning rate for memory epoch ``epoch`` (0-based).

    Epoch 0 warms up at ``max_lr / 10``; from epoch 1 on, cosine annealing with warm restarts
    (SGDR, Loshchilov & Hutter, ICLR 2017) with ``T_0 = 1``, ``T_mult = 2``, stepped once per
    epoch: with ``s = epoch - 1`` in cycle ``n`` (``2^n - 1 <= s < 2^(n+1) - 1``),
    ``lr = min_lr + (max_lr - min_lr) (1 + cos(pi (s + 1 - 2^n) / 2^n)) / 2``. Restarts at
    ``max_lr`` fall on epochs 1, 2, 4, 8, ...; 128 epochs end near ``min_lr``.
    """
    if epoch == 0:
        return max_lr * 0.1
    step = epoch - 1
    cycle = (step + 1).bit_length() - 1
    position = (step + 1 - 2**cycle) / 2**cycle
    return min_lr + (max_lr - min_lr) * (1 + math.cos(math.pi * position)) / 2


def cutmix_box(height: int, width: int, lam: float, rng: random.Random) -> Box:
    """CutMix's box (Yun et al., ICCV 2019) for a target ratio ``lam`` of original pixels.

    Sides ``int(side * sqrt(1 - lam))``, centre uniform over the image, clipped to it (so the
    box may be smaller than asked).
    """
    cut = math.sqrt(1.0 - lam)
    half_h, half_w = int(height * cut) // 2, int(width * cut) // 2
    cy, cx = rng.randrange(height), rng.randrange(width)
    return (
        min(max(cy - half_h, 0), height),
        min(max(cx - half_w, 0), width),
        min(max(cy + half_h, 0), height),
        min(max(cx + half_w, 0), width),
    )


def cutmix(x: torch.Tensor, box: Box, permutation: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Paste ``box`` of image ``permutation[i]`` into image ``i``.

    Args:
        x: Images, shape (B, C, H, W).
        box: (top, left, bottom, right) of the pasted region.
        permutation: Source image of each image's box, shape (B,).

    Returns:
        The mixed images (a new tensor) and ``lam = 1 - box area / image area``: the weight of
        each image's own label.
    """
    top, left, bottom, right = box
    mixed = x.clone()
    mixed[:, :, top:bottom, left:right] = x[permutation, :, top:bottom, left:right]
    area = (bottom - top) * (right - left)
    return mixed, 1.0 - area / (x.shape[-2] * x.shape[-1])


def mixed_cross_entropy(
    logits: torch.Tensor, y: torch.Tensor, y_pasted: torch.Tensor, lam: float
) -> torch.Tensor:
    """CutMix's loss: ``lam CE(logits, y) + (1 - lam) CE(logits, y_pasted)``, means over (B,)."""
    return lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y_pasted)


@register
class GDumb(Method):
    """GDumb (Prabhu et al., ECCV 2020): greedy class-balanced memory, training from scratch.

    ``observe`` trains nothing (loss 0): it offers each example to the memory, filled by
    :func:`~lifelong.buffers.class_balanced.greedy_class_balanced`. After each experience,
    before it is evaluated, the network is re-initialised and trained on the memory alone for
    ``epochs_on_memory`` epochs of ``minibatch_size`` examples in a fresh random order: SGD
    (``lr``, ``momentum``, ``weight_decay``) with :func:`sgdr_learning_rate` from ``lr`` down to
    ``min_lr``, gradient norm clipped at ``clip_grad_norm`` and, with probability
    ``cutmix_prob`` per batch, CutMix (:func:`cutmix_box`, :func:`cutmix`).

    Differences from the authors' code (drimpossible/GDumb): it builds the memory from the
    first ``k / num_classes`` images of each class, trains once at the end of the stream and
    reports the best test accuracy over the passes; here the greedy sampler runs online, every
    experience ends with a training from scratch and the last network is evaluated. The
    authors' MNIST MLP has BatchNorm and no biases and trains in half precision on randomly
    cropped images (padding 4); here the run's backbone and stream transform are used, in
    float32. Re-initialisation restores the weights the network was built with (kept as the
    frozen sub-module ``initial_net``, as Avalanche's GDumb plugin does) instead of a new
    random draw. Tie-break of the largest class: the lowest label. Mammoth's ``gdumb`` fills a
    reservoir buffer instead (not class-balanced), trains only after the last experience and
    uses momentum 0 and 256 epochs by default.
    """

    name = "gdumb"
    config_cls = GDumbConfig

    def __init__(self, cfg: GDumbConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg: GDumbConfig = cfg
        memory = ClassBalancedBuffer(cfg.buffer_size, replay_fields(ctx), ctx.generator)
        self.buffer = memory.to(ctx.device)
        self.initial_net = copy.deepcopy(self.net).requires_grad_(False)

    def observe(self, batch: Batch) -> StepOutput:
        """Offer the un-augmented batch to the class-balanced memory; no training."""
        self.buffer.add({"x": batch.x_clean, "y": batch.y, "experience": batch.experience_id})
        return StepOutput(torch.zeros((), device=batch.y.device))

    def after_experience(self, experience: Experience) -> None:
        """Re-initialise the network, then train it on the memory alone."""
        self.reinitialise()
        self.train_on_memory()

    def reinitialise(self) -> None:
        """The network's initial weights and buffers, and a fresh optimiser (no momentum yet)."""
        self.net.load_state_dict(self.initial_net.state_dict())
        self.optimizer = self.make_optimizer()

    def train_on_memory(self) -> None:
        """``epochs_on_memory`` shuffled passes over the memory (see the class docstring)."""
        memory = self.buffer.contents()
        x_all, y_all = memory["x"], memory["y"]
        if len(y_all) == 0:
            return
        generator = self.ctx.generator
        rng = random.Random(int(torch.randint(0, 2**62, (1,), generator=generator)))
        was_training = self.net.training
        self.net.train(True)
        for epoch in range(self.cfg.epochs_on_memory):
            for group in self.optimizer.param_groups:
                group["lr"] = sgdr_learning_rate(epoch, self.cfg.lr, self.cfg.min_lr)
            order = torch.randperm(len(y_all), generator=generator).to(y_all.device)
            for index in order.split(self.cfg.minibatch_size):
                loss = self.memory_step(self.augment(x_all[index]), y_all[index], rng)
            if not math.isfinite(float(loss)):
                raise NonFiniteLossError(
                    f"gdumb's memory training loss became {float(loss)} in epoch {epoch}: "
                    "lower the learning rate (--lr) or method.clip_grad_norm"
                )
        logger.debug("gdumb: %d memory examples, last loss %.4f", len(y_all), float(loss))
        self.net.train(was_training)

    def memory_step(self, x: torch.Tensor, y: torch.Tensor, rng: random.Random) -> torch.Tensor:
        """One SGD step on a memory batch (CutMix-ed with probability ``cutmix_prob``)."""
        self.optimizer.zero_grad(set_to_none=True)
        if rng.random() < self.cfg.cutmix_prob:
            lam = rng.betavariate(self.cfg.cutmix_beta, self.cfg.cutmix_beta)
            box = cutmix_box(x.shape[-2], x.shape[-1], lam, rng)
            permutation = torch.randperm(len(y), generator=self.ctx.generator).to(y.device)
            x, lam = cutmix(x, box, permutation)
            loss = mixed_cross_entropy(self.net(x), y, y[permutation], lam)
        else:
            loss = F.cross_entropy(self.net(x), y)
        loss.backward()
        if self.cfg.clip_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.clip_grad_norm)
        self.optimizer.step()
        return loss.detach()
