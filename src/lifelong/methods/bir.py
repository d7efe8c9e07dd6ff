"""Brain-Inspired Replay (BI-R): one VAE-classifier that replays its own generated samples."""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import torch
import torch.nn.functional as F  # noqa: N812

from lifelong.data.stream import Experience
from lifelong.errors import ConfigError
from lifelong.generative.conv_encoder import ConvEncoder, ConvEncoderConfig
from lifelong.generative.exaggeration import (
    ContrastiveReplay,
    ExaggerationConfig,
    exaggeration_terms,
    weighted_sum,
)
from lifelong.generative.internal_replay import InternalReplayNet, vae_of
from lifelong.generative.replay import (
    active_targets,
    from_pixels,
    previous_logits,
    to_pixels,
    vae_terms,
)
from lifelong.generative.vae_classifier import VAEClassifier, VAEClassifierConfig
from lifelong.losses.repulsion import ReconstructionLoss
from lifelong.losses.vae import distillation_soft_targets, weigh_current_and_replay
from lifelong.methods.base import Method, MethodContext, register, register_variant
from lifelong.methods.gr import GRConfig, adam
from lifelong.nn.synaptic_intelligence import SynapticIntelligence
from lifelong.types import Batch, StepOutput

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BIRConfig(GRConfig, ExaggerationConfig):
    """Settings of BI-R (defaults: the BI-R code's ``--brain-inspired``, split MNIST, §1.2-3)."""

    distill: bool = True
    """Replay with the previous model's soft targets: distillation, soft gates, mixture prior."""
    dg_prop: float = 0.8
    """Gating proportion: probability that a decoder unit is off for a class (0: no gates)."""
    per_class_prior: bool = True
    """Conditional replay: one learnable prior mode per class (else N(0, I))."""
    si_c: float = 0.0
    """Synaptic Intelligence strength ``c`` on encoder and classifier (0: no SI; bir_si: 0.1)."""
    si_epsilon: float = 0.1
    """SI's damping ε of the importance denominator."""
    conv_depth: int = 0
    """Conv layers before the VAE (BI-R's convE: 5 for CIFAR; 0 on MNIST-like data)."""
    conv_channels: int = 16
    """Channels of the first conv layer, doubled in each later one."""
    pretrained_conv: str | None = None
    """File of pre-trained conv layers from ``lifelong pretrain`` (None: random, frozen)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.si_c < 0 or not self.si_epsilon > 0:
            raise ConfigError("method.si_c must be >= 0 and method.si_epsilon positive")
        if self.conv_depth < 0:
            raise ConfigError(f"method.conv_depth must be >= 0, got {self.conv_depth}")
        self.check_exaggeration()

    def vae_config(self) -> VAEClassifierConfig:
        """The model: fcE sizes as GR's generator, plus gates and the per-class prior."""
        return VAEClassifierConfig(
            self.fc_units,
            self.h_dim,
            self.z_dim,
            self.fc_layers,
            dg_prop=self.dg_prop,
            per_class_prior=self.per_class_prior,
            gates=True,
            linear_output=self.conv_depth > 0,
        )


def build_net(cfg: BIRConfig, ctx: MethodContext) -> VAEClassifier | InternalReplayNet:
    """The VAE-classifier on the inputs, or behind frozen conv layers (internal replay)."""
    if cfg.conv_depth == 0:
        return VAEClassifier(cfg.vae_config(), ctx.image_shape, ctx.num_classes, ctx.generator)
    conv = ConvEncoder(ConvEncoderConfig(cfg.conv_depth, cfg.conv_channels), ctx.image_shape[0])
    if cfg.pretrained_conv is None:
        logger.warning(
            "bir: the conv layers are random and stay frozen; pre-train them with "
            "`lifelong pretrain` and pass method.pretrained_conv=FILE"
        )
    else:
        conv.load_pretrained(Path(cfg.pretrained_conv))
    shape = (conv.out_features(ctx.image_shape), 1, 1)
    vae = VAEClassifier(cfg.vae_config(), shape, ctx.num_classes, ctx.generator)
    return InternalReplayNet(conv, vae)


@register
class BIR(Method):
    """Brain-Inspired Replay (van de Ven, Siegelmann & Tolias, Nat. Commun. 2020; spec ``bir.md``).

    The components of the reference's ``--brain-inspired`` switch (§1.3):

    - replay-through-feedback: one :class:`VAEClassifier` is classifier and generator;
    - conditional replay: a learnable Gaussian-mixture prior with one mode per class;
    - gating based on internal context: fixed per-class masks (``dg_prop``) on the decoder;
    - internal replay (``conv_depth > 0``, colour images): frozen, pre-trained conv layers in
      front of the VAE, which reconstructs (half MSE, linear output) and replays their
      features (:class:`InternalReplayNet`); on MNIST-like data the reference has no conv layers;
    - distillation: replay is labelled with the previous model's soft targets (T = 2).

    With ``si_c > 0`` (``bir_si``) a Synaptic Intelligence penalty ``si_c * Σ ω (θ − θ*)²`` on
    the encoder and classifier (as in the reference, §3.5: decoder and prior stay unregularised)
    joins the loss. The feature-exaggeration flags (:class:`ExaggerationConfig`, spec §6) add
    repulsion/attraction terms to the replay loss and a contrastive step on the replay batch.

    Per step: the current batch gives reconstruction + KL (prior mode and gates = the true
    label) + cross-entropy over the active classes. From the second experience on, ``B_r``
    samples are drawn from the frozen model of the end of the previous experience (uniform over
    the previous classes' prior modes, gated with the sampled class); that model, as teacher,
    gives soft targets ``softmax(logits / T)`` over the previous classes; the replay loss is
    reconstruction + KL (mixture prior weighted by the soft targets) + distillation, with the
    soft targets as gates. One Adam step on ``(1/t) L_cur + (1 − 1/t) L_rep`` (§3.4).

    The method builds its own network from the input shape and class count: it ignores
    ``--backbone``. Differences from the reference code: gate masks are saved buffers; the
    network is initialised from the run's generator; the mixture KL excludes zero-weight
    components exactly instead of clamping at 1e-40; the VAE works on [0, 1] pixels and
    normalised inputs are converted both ways (identity for MNIST); without internal replay,
    colour images are reconstructed as pixels by the fully connected decoder (the reference's
    transposed-conv decoder ``convD`` is not built). Class-IL is trained as the reference; a
    task-IL evaluation masks the logits of that class-IL model per experience (the
    reference's task-IL mode, with one replay per previous task, is not built).
    """

    name = "bir"
    config_cls = BIRConfig
    supported_settings = frozenset({"class-il", "domain-il"})

    net: VAEClassifier | InternalReplayNet
    seen: torch.Tensor
    current: torch.Tensor
    experiences_done: torch.Tensor

    def __init__(self, cfg: BIRConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg: BIRConfig = cfg
        self.net = build_net(cfg, ctx).to(ctx.device)  # replaces the backbone the base took
        self.optimizer = self.make_optimizer()
        self.previous = copy.deepcopy(self.net).requires_grad_(False).train(False)
        classes = torch.zeros(ctx.num_classes, dtype=torch.bool, device=ctx.device)
        self.register_buffer("seen", classes)
        self.register_buffer("current", classes.clone())
        self.register_buffer("experiences_done", torch.zeros((), dtype=torch.int64))
        tracked = [
            (name, param)
            for name, param in self.vae.named_parameters()
            if name.startswith(("body.", "head."))
        ]
        self.si = SynapticIntelligence(tracked, cfg.si_epsilon) if cfg.si_c > 0 else None
        self.contrast: ContrastiveReplay | None = None
        if cfg.contrastive or cfg.not_hidden:
            self.contrast = ContrastiveReplay(cfg, cfg.h_dim, self.vae.body, ctx.generator)
            self.contrast.to(ctx.device)
        self.kl_size = math.prod(ctx.image_shape)  # the KL is per image unit, also for features

    @property
    def vae(self) -> VAEClassifier:
        """The VAE-classifier (the network itself, or the part behind the conv layers)."""
        return vae_of(self.net)

    def make_optimizer(self) -> torch.optim.Optimizer:
        """Adam over the VAE-classifier (encoder, classifier, decoder, prior)."""
        return adam((p for p in self.net.parameters() if p.requires_grad), self.cfg)

    def vae_inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(VAE input, reconstruction target)`` of normalised images: pixels or conv features."""
        if isinstance(self.net, InternalReplayNet):
            features = self.net.conv_features(x)
            return features, features
        return x, to_pixels(x, self.ctx.transform)

    def observe(self, batch: Batch) -> StepOutput:
        """One Adam step on the weighted current and replayed VAE-classifier losses."""
        t = int(self.experiences_done) + 1  # 1-based index of the current experience
        active = self.active_classes(batch.y)
        g, temperature, cfg = self.ctx.generator, self.cfg.temperature, self.cfg
        internal = isinstance(self.net, InternalReplayNet)
        loss_kind: ReconstructionLoss = "mse" if internal else "bce"
        self.optimizer.zero_grad(set_to_none=True)
        # current batch: gates and prior mode given by the true labels
        x, target = self.vae_inputs(batch.x)
        current = vae_terms(self.vae, x, target, batch.y, g, loss_kind, self.kl_size)
        logits = self.vae.head(current.features)[:, active]
        ce = F.cross_entropy(logits, active_targets(active, batch.y))
        loss = current.recon + current.kl + ce
        terms = {"recon": current.recon, "kl": current.kl, "ce": ce}
        contrastive_grads = None
        if t > 1:
            # replay: sample the previous model (the generator), label with it (the teacher)
            with torch.no_grad():
                previous = vae_of(self.previous)
                n = cfg.batch_replay or len(batch)
                target_r, _ = previous.sample(n, self.seen.nonzero().squeeze(1), g)
                x_r = target_r if internal else from_pixels(target_r, self.ctx.transform)
                teacher = previous_logits(previous(x_r), self.seen)
                soft = torch.softmax(teacher / temperature, dim=1)  # 0 outside previous classes
            context = soft if cfg.distill else teacher.argmax(dim=1)
            replay = vae_terms(self.vae, x_r, target_r, context, g, loss_kind, self.kl_size)
            logits_r = self.vae.head(replay.features)[:, active]
            if cfg.distill:
                pred_r = distillation_soft_targets(logits_r, teacher[:, active], temperature)
            else:
                pred_r = F.cross_entropy(logits_r, active_targets(active, teacher.argmax(dim=1)))
            replay_loss = replay.recon + replay.kl + pred_r
            extra = exaggeration_terms(
                cfg, teacher, replay.mu, replay.logvar, replay.reconstruction, target_r,
                loss_kind, g,
            )  # fmt: skip
            weighted = weighted_sum(cfg, extra)
            if weighted is not None:
                replay_loss = replay_loss + weighted
            if self.contrast is not None:
                view = self.vae.features(self.contrast.second_view(x_r, g))
                if cfg.contrastive:
                    extra["contrastive"] = self.contrast.loss(replay.features, view, teacher)
                    contrastive_grads = self.contrast.gradients(extra["contrastive"])
            loss = weigh_current_and_replay(loss, replay_loss, t)
            terms["distill" if cfg.distill else "replay_ce"] = pred_r
            terms["replay"] = replay_loss
            terms.update(extra)
        if self.si is not None:
            terms["si"] = self.si.penalty()
            loss = loss + cfg.si_c * terms["si"]
        loss.backward()
        self.optimizer.step()
        if self.contrast is not None and contrastive_grads is not None:
            self.contrast.step(contrastive_grads)
        if self.si is not None:
            self.si.after_step()
        return StepOutput(loss.detach(), {k: v.detach() for k, v in terms.items()})

    def active_classes(self, y: torch.Tensor) -> torch.Tensor:
        """Sorted indices of the classes seen so far, the current ones and those of ``y``."""
        active = (self.seen | self.current).index_fill(0, y, True)
        return active.nonzero().squeeze(1)

    def before_experience(self, experience: Experience) -> None:
        """Mark the experience's classes as current (active in the cross-entropy)."""
        self.current.zero_()
        self.current[list(experience.classes)] = True
        if self.si is not None:
            self.si.begin_experience()

    def after_experience(self, experience: Experience) -> None:
        """Freeze a copy of the model: the next experience's generator and teacher."""
        if self.si is not None:
            self.si.end_experience()
        self.seen[list(experience.classes)] = True
        self.previous.load_state_dict(self.net.state_dict())
        self.experiences_done += 1

    def train(self, mode: bool = True) -> Self:
        """Set the training mode; the frozen copy always stays in evaluation mode."""
        super().train(mode)
        self.previous.train(False)
        return self

    @torch.no_grad()
    def generate(
        self, per_class: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``per_class`` images in [0, 1] of each learned class, from its prior mode.

        None with internal replay: the decoder generates conv features, not images.
        """
        if isinstance(self.net, InternalReplayNet):
            return None
        learned = self.seen if bool(self.seen.any()) else torch.ones_like(self.seen)
        y = learned.nonzero().squeeze(1).repeat_interleave(per_class)
        return self.vae.generate(y, generator), y


register_variant(
    "bir_si",
    of="bir",
    summary="Synaptic Intelligence on (si_c=0.1; BI-R + SI, van de Ven et al. 2020)",
    defaults={"si_c": 0.1},
)
