"""Generative replay (GR): a classifier plus a separate VAE generator, both replayed."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Self

import torch
import torch.nn.functional as F  # noqa: N812

from lifelong.data.stream import Experience
from lifelong.errors import ConfigError
from lifelong.generative.internal_replay import (
    InternalReplayNet,
    frozen_conv,
    inner_of,
    replay_inputs,
)
from lifelong.generative.replay import (
    active_targets,
    from_pixels,
    previous_logits,
    vae_terms,
)
from lifelong.generative.vae_classifier import FCClassifier, VAEClassifier, VAEClassifierConfig
from lifelong.losses.repulsion import ReconstructionLoss
from lifelong.losses.vae import distillation_soft_targets, weigh_current_and_replay
from lifelong.methods.base import Method, MethodConfig, MethodContext, register
from lifelong.types import Batch, StepOutput

ADAM_BETAS = (0.9, 0.999)
"""Adam's betas in the BI-R code (PyTorch's defaults)."""


@dataclass(frozen=True)
class GRConfig(MethodConfig):
    """Settings of generative replay (defaults: the BI-R code on split MNIST, spec §1.2)."""

    lr: float = 0.001
    """Adam learning rate (betas 0.9/0.999), for the classifier and the generator."""
    momentum: float = 0.0
    """Unused: the optimisers are Adam."""
    batch_replay: int | None = None
    """Replayed samples per step (None: the size of the current batch)."""
    distill: bool = False
    """Label replay with the previous classifier's soft targets (else its argmax)."""
    temperature: float = 2.0
    """Distillation temperature T (used with distill)."""
    fc_units: int = 400
    """Units of the VAE encoder's first hidden layer."""
    h_dim: int = 400
    """Units of the VAE encoder's last hidden layer."""
    z_dim: int = 100
    """Latent dimension of the VAE."""
    fc_layers: int = 3
    """Fully connected layers of the VAE encoder counting the input (3: two hidden)."""
    conv_depth: int = 0
    """Frozen conv layers in front (BI-R's convE: 5 for colour images; 0 on MNIST-like data)."""
    conv_channels: int = 16
    """Channels of the first conv layer, doubled in each later one."""
    pretrained_conv: str | None = None
    """File of pre-trained conv layers from ``lifelong pretrain`` (None: random, frozen)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.conv_depth < 0:
            raise ConfigError(f"method.conv_depth must be >= 0, got {self.conv_depth}")
        if self.batch_replay is not None and self.batch_replay <= 0:
            raise ConfigError(f"method.batch_replay must be positive, got {self.batch_replay}")
        if not self.temperature > 0:
            raise ConfigError(f"method.temperature must be positive, got {self.temperature}")
        try:
            self.vae_config()
        except ConfigError as err:
            raise ConfigError(f"method.{err}") from err

    def vae_config(self) -> VAEClassifierConfig:
        """The generator: a plain VAE (standard normal prior, no gates; linear behind convs)."""
        return VAEClassifierConfig(
            self.fc_units,
            self.h_dim,
            self.z_dim,
            self.fc_layers,
            linear_output=self.conv_depth > 0,
        )


def adam(params: Iterable[torch.nn.Parameter], cfg: MethodConfig) -> torch.optim.Adam:
    """Adam with the reference's betas, ``cfg.lr`` and ``cfg.weight_decay``."""
    return torch.optim.Adam(params, lr=cfg.lr, betas=ADAM_BETAS, weight_decay=cfg.weight_decay)


@register
class GR(Method):
    """Generative replay (Shin et al., NeurIPS 2017) as the BI-R code's ``--replay=generative``.

    The classifier is an MLP ``[C·H·W, fc_units, …, h_dim] → classes`` (:class:`FCClassifier`,
    2 x 400 on split MNIST, as the reference); a separate VAE (:class:`VAEClassifier` of the same
    sizes, standard normal prior, no gates; its classifier head is unused) is the generator. The
    method builds both from the input shape and class count: it ignores ``--backbone``.

    From the second experience on, each step replays ``batch_replay`` inputs sampled from a
    frozen copy of the previous generator, labelled by a frozen copy of the previous classifier
    over the previous classes (argmax, or soft targets with ``distill``). Both networks minimise
    ``(1/t) L_cur + (1 − 1/t) L_rep`` (spec §3.4) with their own Adam optimiser; the
    cross-entropy covers the classes seen so far (the active classes).

    Differences from the reference code: initial weights (PyTorch's default scheme) and all
    other randomness come from the run's generator, not the global RNG. The VAE works on
    [0, 1] pixels (sigmoid output, BCE); normalised inputs are converted both ways. Not done:
    the Task-IL variant (replay per previous task), EWC/SI on top.

    With ``conv_depth`` (colour images) classifier and generator both sit behind the same
    frozen, pre-trained conv layers (``pretrained_conv``), as every method in the BI-R paper's
    CIFAR-100 comparison, and the generator makes conv features (linear output, half MSE, KL
    per image unit), replayed straight into the classifier's fully connected layers: BI-R's
    internal replay without its other components. The reference's GR on CIFAR instead decodes
    to pixels through transposed convolutions and replays images through the conv layers.
    """

    name = "gr"
    config_cls = GRConfig
    supported_settings = frozenset({"class-il", "domain-il"})
    uses_backbone = False

    seen: torch.Tensor
    current: torch.Tensor
    experiences_done: torch.Tensor

    def __init__(self, cfg: GRConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg: GRConfig = cfg
        shape, classes, g = ctx.image_shape, ctx.num_classes, ctx.generator
        conv = None
        if cfg.conv_depth:  # classifier and generator behind the same frozen conv layers
            conv = frozen_conv(
                cfg.conv_depth, cfg.conv_channels, cfg.pretrained_conv, shape[0], "gr"
            )
            shape = (conv.out_features(shape), 1, 1)
        classifier = FCClassifier(cfg.vae_config(), shape, classes, g)
        self.net = (classifier if conv is None else InternalReplayNet(conv, classifier)).to(
            ctx.device
        )
        self.optimizer = self.make_optimizer()  # over the classifier that replaced the backbone
        self.vae = VAEClassifier(cfg.vae_config(), shape, classes, g).to(ctx.device)
        self.vae_optimizer = adam(self.vae.parameters(), cfg)
        self.previous_net = copy.deepcopy(self.net).requires_grad_(False).train(False)
        self.previous_vae = copy.deepcopy(self.vae).requires_grad_(False).train(False)
        mask = torch.zeros(classes, dtype=torch.bool, device=ctx.device)
        self.register_buffer("seen", mask)
        self.register_buffer("current", mask.clone())
        self.register_buffer("experiences_done", torch.zeros((), dtype=torch.int64))
        self.kl_size = math.prod(ctx.image_shape)  # the KL is per image unit, also for features
        self.loss_kind: ReconstructionLoss = "bce" if conv is None else "mse"

    def make_optimizer(self) -> torch.optim.Optimizer:
        """Adam over the classifier (the reference's optimiser); frozen conv layers excluded."""
        return adam((p for p in self.net.parameters() if p.requires_grad), self.cfg)

    def observe(self, batch: Batch) -> StepOutput:
        """Classifier and generator steps on the current batch plus generated replay."""
        t = int(self.experiences_done) + 1  # 1-based index of the current experience
        active = self.active_classes(batch.y)
        g, kind, kl_size = self.ctx.generator, self.loss_kind, self.kl_size
        classifier, previous_classifier = inner_of(self.net), inner_of(self.previous_net)
        self.optimizer.zero_grad(set_to_none=True)
        self.vae_optimizer.zero_grad(set_to_none=True)
        # current batch: CE over the active classes; the generator's reconstruction + KL
        x, target = replay_inputs(self.net, batch.x, self.ctx.transform)
        ce = F.cross_entropy(classifier(x)[:, active], active_targets(active, batch.y))
        current = vae_terms(self.vae, x, target, None, g, kind, kl_size)
        classifier_loss, generator_loss = ce, current.recon + current.kl
        terms = {"ce": ce, "recon": current.recon, "kl": current.kl}
        if t > 1:
            # replay: inputs from the previous generator, labels from the previous classifier
            with torch.no_grad():
                n = self.cfg.batch_replay or len(batch)
                target_r, _ = self.previous_vae.sample(n, self.seen.nonzero().squeeze(1), g)
                x_r = target_r if kind == "mse" else from_pixels(target_r, self.ctx.transform)
                teacher = previous_logits(previous_classifier(x_r), self.seen)[:, active]
            logits_r = classifier(x_r)[:, active]
            if self.cfg.distill:
                pred_r = distillation_soft_targets(logits_r, teacher, self.cfg.temperature)
            else:
                pred_r = F.cross_entropy(logits_r, teacher.argmax(dim=1))
            replay = vae_terms(self.vae, x_r, target_r, None, g, kind, kl_size)
            classifier_loss = weigh_current_and_replay(ce, pred_r, t)
            generator_loss = weigh_current_and_replay(generator_loss, replay.recon + replay.kl, t)
            terms["distill" if self.cfg.distill else "replay_ce"] = pred_r
            terms.update(replay_recon=replay.recon, replay_kl=replay.kl)
        # disjoint parameters: one backward pass gives both networks their gradients
        loss = classifier_loss + generator_loss
        loss.backward()
        self.optimizer.step()
        self.vae_optimizer.step()
        return StepOutput(loss.detach(), {k: v.detach() for k, v in terms.items()})

    def active_classes(self, y: torch.Tensor) -> torch.Tensor:
        """Sorted indices of the classes seen so far, the current ones and those of ``y``."""
        active = (self.seen | self.current).index_fill(0, y, True)
        return active.nonzero().squeeze(1)

    def before_experience(self, experience: Experience) -> None:
        """Mark the experience's classes as current (active in the cross-entropy)."""
        self.current.zero_()
        self.current[list(experience.classes)] = True

    def after_experience(self, experience: Experience) -> None:
        """Freeze copies of classifier and generator: the next experience's replay source."""
        self.seen[list(experience.classes)] = True
        self.previous_net.load_state_dict(self.net.state_dict())
        self.previous_vae.load_state_dict(self.vae.state_dict())
        self.experiences_done += 1

    def train(self, mode: bool = True) -> Self:
        """Set the training mode; the frozen copies always stay in evaluation mode."""
        super().train(mode)
        self.previous_net.train(False)
        self.previous_vae.train(False)
        return self

    def generate(
        self, per_class: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``per_class`` x (learned classes) samples in [0, 1], labelled by the classifier.

        None behind conv layers: the generator makes conv features, not images.
        """
        if isinstance(self.net, InternalReplayNet):
            return None
        learned = self.seen if bool(self.seen.any()) else torch.ones_like(self.seen)
        classes = learned.nonzero().squeeze(1)
        pixels, _ = self.vae.sample(per_class * len(classes), classes, generator)
        logits = previous_logits(self.net(from_pixels(pixels, self.ctx.transform)), learned)
        return pixels, logits.argmax(dim=1)

    def get_extra_state(self) -> dict[str, Any]:
        """Both optimiser states, saved with the module's ``state_dict``."""
        return {**super().get_extra_state(), "vae_optimizer": self.vae_optimizer.state_dict()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore both optimiser states."""
        super().set_extra_state(state)
        self.vae_optimizer.load_state_dict(state["vae_optimizer"])
