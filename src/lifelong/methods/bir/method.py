"""Brain-Inspired Replay (BI-R): one VAE-classifier that replays its own generated samples."""

from __future__ import annotations

import copy
import math
from typing import NamedTuple, Self

import torch
import torch.nn.functional as F  # noqa: N812

from lifelong.data.stream import Experience
from lifelong.generative.exaggeration import (
    ContrastiveReplay,
    exaggeration_terms,
    weighted_sum,
)
from lifelong.generative.internal_replay import InternalReplayNet, replay_inputs, vae_of
from lifelong.generative.replay import (
    active_targets,
    from_pixels,
    previous_logits,
    vae_terms,
)
from lifelong.generative.vae_classifier import VAEClassifier
from lifelong.losses.repulsion import ReconstructionLoss
from lifelong.losses.vae import distillation_soft_targets, weigh_current_and_replay
from lifelong.methods.base import Method, MethodContext, register, register_variant
from lifelong.methods.bir.config import BIRConfig, build_net
from lifelong.methods.gr import adam
from lifelong.nn.synaptic_intelligence import SynapticIntelligence
from lifelong.types import Batch, StepOutput


class Replay(NamedTuple):
    """The replay loss of one group of generated samples, its logged terms, contrastive grads."""

    loss: torch.Tensor
    terms: dict[str, torch.Tensor]
    contrastive_grads: tuple[torch.Tensor | None, ...] | None


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
    transposed-conv decoder ``convD`` is not built).

    ``task_il`` trains as the reference's task scenario (§1.1, §4 step 3): the current batch's
    cross-entropy spans its own experience's classes only, and each earlier experience ``j``
    gets its own replay of ``ceil(B_r / (t − 1))`` samples of its classes, labelled and
    distilled over those classes alone; the replay loss is the mean over the earlier
    experiences. ``xdg_prop`` adds XdG (:mod:`~lifelong.generative.task_gates`): per task a
    fixed mask on the encoder's hidden units, chosen by the task id for current data, for each
    replay, and in the task-IL evaluation (:meth:`task_logits`). Without ``task_il`` the
    class-IL model's task-IL row masks its logits per experience.
    """

    name = "bir"
    config_cls = BIRConfig
    supported_settings = frozenset({"class-il", "domain-il"})
    uses_backbone = False

    net: VAEClassifier | InternalReplayNet[VAEClassifier]
    seen: torch.Tensor
    current: torch.Tensor
    experiences_done: torch.Tensor
    task_of_class: torch.Tensor

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
        unseen = torch.full((ctx.num_classes,), -1, dtype=torch.int64, device=ctx.device)
        self.register_buffer("task_of_class", unseen)  # the experience that taught each class
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
        internal = isinstance(self.net, InternalReplayNet)
        self.loss_kind: ReconstructionLoss = "mse" if internal else "bce"

    @property
    def vae(self) -> VAEClassifier:
        """The VAE-classifier (the network itself, or the part behind the conv layers)."""
        return vae_of(self.net)

    def make_optimizer(self) -> torch.optim.Optimizer:
        """Adam over the VAE-classifier (encoder, classifier, decoder, prior)."""
        return adam((p for p in self.net.parameters() if p.requires_grad), self.cfg)

    def observe(self, batch: Batch) -> StepOutput:
        """One Adam step on the weighted current and replayed VAE-classifier losses."""
        t = int(self.experiences_done) + 1  # 1-based index of the current experience
        cfg = self.cfg
        self.optimizer.zero_grad(set_to_none=True)
        # current batch: gates and prior mode given by the true labels
        own = self.current.nonzero().squeeze(1)  # task-IL: the experience's own classes only
        active = own if cfg.task_il else self.active_classes(batch.y)
        x, target = replay_inputs(self.net, batch.x, self.ctx.transform)
        task = self.task_ids(batch.experience_id, len(batch), x.device)
        current = vae_terms(
            self.vae, x, target, batch.y, self.ctx.generator, self.loss_kind, self.kl_size, task
        )
        logits = self.vae.head(current.features)[:, active]
        ce = F.cross_entropy(logits, active_targets(active, batch.y))
        loss = current.recon + current.kl + ce
        terms = {"recon": current.recon, "kl": current.kl, "ce": ce}
        contrastive_grads = None
        if t > 1:
            n = cfg.batch_replay or len(batch)
            if cfg.task_il:  # one replay per earlier task, over its own classes (§4 step 3)
                replays = [
                    self.replay(math.ceil(n / (t - 1)), mask, mask.nonzero().squeeze(1), task_id)
                    for task_id, mask in enumerate(self.task_classes(t - 1))
                ]
            else:
                replays = [self.replay(n, self.seen, active, None)]
            replay_loss = torch.stack([r.loss for r in replays]).mean()
            for name in replays[0].terms:
                terms[name] = torch.stack([r.terms[name] for r in replays]).mean()
            contrastive_grads = replays[0].contrastive_grads
            loss = weigh_current_and_replay(loss, replay_loss, t)
            terms["replay"] = replay_loss
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

    def replay(
        self, n: int, previous_classes: torch.Tensor, active: torch.Tensor, task: int | None
    ) -> Replay:
        """The loss on ``n`` samples of the frozen previous model, labelled by it.

        Args:
            n: Samples to generate.
            previous_classes: Boolean mask (classes,) of the classes to sample and to teach.
            active: Sorted class indices the student's logits are sliced to.
            task: The task whose XdG masks gate the samples (None: no XdG).
        """
        cfg, g, temperature = self.cfg, self.ctx.generator, self.cfg.temperature
        with torch.no_grad():
            previous = vae_of(self.previous)
            target_r, _ = previous.sample(n, previous_classes.nonzero().squeeze(1), g)
            internal = isinstance(self.net, InternalReplayNet)
            x_r = target_r if internal else from_pixels(target_r, self.ctx.transform)
            tasks = None if task is None else self.task_ids(task, n, x_r.device)
            teacher = previous_logits(previous.classify(x_r, tasks), previous_classes)
            soft = torch.softmax(teacher / temperature, dim=1)  # 0 outside previous_classes
        context = soft if cfg.distill else teacher.argmax(dim=1)
        replay = vae_terms(self.vae, x_r, target_r, context, g, self.loss_kind, self.kl_size, tasks)
        logits_r = self.vae.head(replay.features)[:, active]
        if cfg.distill:
            pred_r = distillation_soft_targets(logits_r, teacher[:, active], temperature)
        else:
            pred_r = F.cross_entropy(logits_r, active_targets(active, teacher.argmax(dim=1)))
        loss = replay.recon + replay.kl + pred_r
        extra = exaggeration_terms(
            cfg, teacher, replay.mu, replay.logvar, replay.reconstruction, target_r,
            self.loss_kind, g,
        )  # fmt: skip
        weighted = weighted_sum(cfg, extra)
        if weighted is not None:
            loss = loss + weighted
        grads = None
        if self.contrast is not None:
            view = self.vae.features(self.contrast.second_view(x_r, g))
            if cfg.contrastive:
                extra["contrastive"] = self.contrast.loss(replay.features, view, teacher)
                grads = self.contrast.gradients(extra["contrastive"])
        extra["distill" if cfg.distill else "replay_ce"] = pred_r
        return Replay(loss, extra, grads)

    def task_ids(self, task: int, n: int, device: torch.device) -> torch.Tensor | None:
        """``n`` copies of ``task`` for the XdG masks; None without XdG."""
        if self.vae.task_gates is None:
            return None
        return torch.full((n,), task, dtype=torch.int64, device=device)

    def task_classes(self, tasks: int) -> list[torch.Tensor]:
        """Boolean class masks of the first ``tasks`` experiences (from their recorded classes)."""
        return [self.task_of_class == task for task in range(tasks)]

    def task_logits(self, x: torch.Tensor, experience_id: int) -> torch.Tensor | None:
        """Logits of normalised ``x`` with experience ``experience_id``'s XdG masks.

        None without XdG: the task-IL evaluation then masks :meth:`predict`'s logits.
        """
        tasks = self.task_ids(experience_id, len(x), x.device)
        if tasks is None:
            return None
        inputs = self.net.conv_features(x) if isinstance(self.net, InternalReplayNet) else x
        return self.vae.classify(inputs, tasks)

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
        self.task_of_class[list(experience.classes)] = int(self.experiences_done)
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
