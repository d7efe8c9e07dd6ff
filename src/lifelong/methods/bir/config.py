"""BI-R's settings and the network it builds from them (the algorithm is in :mod:`.method`)."""

from __future__ import annotations

from dataclasses import dataclass

from lifelong.errors import ConfigError
from lifelong.generative.exaggeration import ExaggerationConfig
from lifelong.generative.internal_replay import InternalReplayNet, frozen_conv
from lifelong.generative.vae_classifier import VAEClassifier, VAEClassifierConfig
from lifelong.methods.base import MethodContext
from lifelong.methods.gr import GRConfig


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
    task_il: bool = False
    """Train for task-IL (reference: --scenario=task): own classes, one replay per earlier task."""
    xdg_prop: float = 0.0
    """XdG with task_il: share of encoder hidden units switched off per task (0: off)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.si_c < 0 or not self.si_epsilon > 0:
            raise ConfigError("method.si_c must be >= 0 and method.si_epsilon positive")
        if not 0.0 <= self.xdg_prop < 1.0:
            raise ConfigError(f"method.xdg_prop must be in [0, 1), got {self.xdg_prop}")
        if self.xdg_prop and not self.task_il:
            raise ConfigError("method.xdg_prop needs method.task_il=true (XdG needs task ids)")
        if self.task_il and (self.contrastive or self.not_hidden):
            raise ConfigError("the contrastive replay extension is class-IL only (task_il=false)")
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
            xdg_prop=self.xdg_prop,
            linear_output=self.conv_depth > 0,
        )


def build_net(
    cfg: BIRConfig, ctx: MethodContext
) -> VAEClassifier | InternalReplayNet[VAEClassifier]:
    """The VAE-classifier on the inputs, or behind frozen conv layers (internal replay)."""
    if cfg.xdg_prop and ctx.num_experiences < 1:
        raise ConfigError("method.xdg_prop needs the stream's number of experiences")
    if cfg.task_il and ctx.setting != "class-il":
        raise ConfigError(f"method.task_il needs a class-IL stream, not a {ctx.setting} one")
    tasks = ctx.num_experiences
    if cfg.conv_depth == 0:
        vae_cfg, shape = cfg.vae_config(), ctx.image_shape
        return VAEClassifier(vae_cfg, shape, ctx.num_classes, ctx.generator, tasks)
    conv = frozen_conv(
        cfg.conv_depth, cfg.conv_channels, cfg.pretrained_conv, ctx.image_shape[0], "bir"
    )
    shape = (conv.out_features(ctx.image_shape), 1, 1)
    vae = VAEClassifier(cfg.vae_config(), shape, ctx.num_classes, ctx.generator, tasks)
    return InternalReplayNet(conv, vae)
