"""Brain-Inspired Replay (BI-R): one VAE-classifier that replays its own generated samples."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Self

import torch
import torch.nn.functional as F  # noqa: N812

from lifelong.data.stream import Experience
from lifelong.errors import ConfigError
from lifelong.generative.replay import (
    active_targets,
    from_pixels,
    previous_logits,
    to_pixels,
    vae_terms,
)
from lifelong.generative.vae_classifier import VAEClassifier, VAEClassifierConfig
from lifelong.losses.vae import distillation_soft_targets, weigh_current_and_replay
from lifelong.methods.base import Method, MethodContext, register
from lifelong.methods.gr import GRConfig, adam
from lifelong.nn.synaptic_intelligence import SynapticIntelligence
from lifelong.types import Batch, StepOutput


@dataclass(frozen=True)
class BIRConfig(GRConfig):
    """Settings of BI-R (defaults: the BI-R code's ``--brain-inspired``, split MNIST, §1.2-3)."""

    distill: bool = True
    """Replay with the previous model's soft targets: distillation, soft gates, mixture prior."""
    dg_prop: float = 0.8
    """Gating proportion: probability that a decoder unit is off for a class (0: no gates)."""
    per_class_prior: bool = True
    """Conditional replay: one learnable prior mode per class (else N(0, I))."""
    si_c: float = 0.0
    """Synaptic Intelligence strength ``c`` on encoder and classifier (0: no SI; ``bir_si``)."""
    si_epsilon: float = 0.1
    """SI's damping ε of the importance denominator."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.si_c < 0 or not self.si_epsilon > 0:
            raise ConfigError("method.si_c must be >= 0 and method.si_epsilon positive")

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
        )


@register
class BIR(Method):
    """Brain-Inspired Replay (van de Ven, Siegelmann & Tolias, Nat. Commun. 2020; spec ``bir.md``).

    The components of the reference's ``--brain-inspired`` switch (§1.3):

    - replay-through-feedback: one :class:`VAEClassifier` is classifier and generator;
    - conditional replay: a learnable Gaussian-mixture prior with one mode per class;
    - gating based on internal context: fixed per-class masks (``dg_prop``) on the decoder;
    - distillation: replay is labelled with the previous model's soft targets (T = 2).

    Internal replay (a frozen pre-trained conv encoder, replay of its features) is not yet
    implemented: it only matters for conv inputs (CIFAR-100); on MNIST-like data the reference's
    conv depth is 0, so this is the complete method there. With ``si_c > 0`` (``bir_si``) a
    Synaptic Intelligence penalty ``si_c * Σ ω (θ − θ*)²`` on the encoder and classifier (as in
    the reference, §3.5: decoder and prior stay unregularised) joins the loss.

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
    normalised inputs are converted both ways (identity for MNIST).
    """

    name = "bir"
    config_cls = BIRConfig
    supported_settings = frozenset({"class-il", "domain-il"})

    net: VAEClassifier
    seen: torch.Tensor
    current: torch.Tensor
    experiences_done: torch.Tensor

    def __init__(self, cfg: BIRConfig, ctx: MethodContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg: BIRConfig = cfg
        net = VAEClassifier(cfg.vae_config(), ctx.image_shape, ctx.num_classes, ctx.generator)
        self.net = net.to(ctx.device)  # replaces the backbone the base class took
        self.optimizer = self.make_optimizer()
        self.previous = copy.deepcopy(self.net).requires_grad_(False).train(False)
        classes = torch.zeros(ctx.num_classes, dtype=torch.bool, device=ctx.device)
        self.register_buffer("seen", classes)
        self.register_buffer("current", classes.clone())
        self.register_buffer("experiences_done", torch.zeros((), dtype=torch.int64))
        tracked = [
            (name, param)
            for name, param in self.net.named_parameters()
            if name.startswith(("body.", "head."))
        ]
        self.si = SynapticIntelligence(tracked, cfg.si_epsilon) if cfg.si_c > 0 else None

    def make_optimizer(self) -> torch.optim.Optimizer:
        """Adam over the whole model (encoder, classifier, decoder, prior)."""
        return adam(self.net.parameters(), self.cfg)

    def observe(self, batch: Batch) -> StepOutput:
        """One Adam step on the weighted current and replayed VAE-classifier losses."""
        t = int(self.experiences_done) + 1  # 1-based index of the current experience
        active = self.active_classes(batch.y)
        g, transform, temperature = self.ctx.generator, self.ctx.transform, self.cfg.temperature
        self.optimizer.zero_grad(set_to_none=True)
        # current batch: gates and prior mode given by the true labels
        current = vae_terms(self.net, batch.x, to_pixels(batch.x, transform), batch.y, g)
        logits = self.net.head(current.features)[:, active]
        ce = F.cross_entropy(logits, active_targets(active, batch.y))
        loss = current.recon + current.kl + ce
        terms = {"recon": current.recon, "kl": current.kl, "ce": ce}
        if t > 1:
            # replay: sample the previous model (the generator), label with it (the teacher)
            with torch.no_grad():
                n = self.cfg.batch_replay or len(batch)
                pixels_r, _ = self.previous.sample(n, self.seen.nonzero().squeeze(1), g)
                x_r = from_pixels(pixels_r, transform)
                teacher = previous_logits(self.previous(x_r), self.seen)
                soft = torch.softmax(teacher / temperature, dim=1)  # 0 outside previous classes
            context = soft if self.cfg.distill else teacher.argmax(dim=1)
            replay = vae_terms(self.net, x_r, pixels_r, context, g)
            logits_r = self.net.head(replay.features)[:, active]
            if self.cfg.distill:
                pred_r = distillation_soft_targets(logits_r, teacher[:, active], temperature)
            else:
                pred_r = F.cross_entropy(logits_r, active_targets(active, teacher.argmax(dim=1)))
            replay_loss = replay.recon + replay.kl + pred_r
            loss = weigh_current_and_replay(loss, replay_loss, t)
            terms["distill" if self.cfg.distill else "replay_ce"] = pred_r
            terms["replay"] = replay_loss
        if self.si is not None:
            terms["si"] = self.si.penalty()
            loss = loss + self.cfg.si_c * terms["si"]
        loss.backward()
        self.optimizer.step()
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
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``per_class`` samples in [0, 1] of each learned class, from its prior mode."""
        learned = self.seen if bool(self.seen.any()) else torch.ones_like(self.seen)
        y = learned.nonzero().squeeze(1).repeat_interleave(per_class)
        return self.net.generate(y, generator), y
