"""The small ``Method`` base every method builds on, its config and its context."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from lifelong.backbones import Backbone
from lifelong.data.stream import Experience, Setting
from lifelong.data.transforms import ImageTransform
from lifelong.errors import ConfigError
from lifelong.methods.epoch_need import EpochNeed
from lifelong.registry import Registry
from lifelong.types import Batch, StepOutput

DataScope = Literal["current", "cumulative", "iid"]


@dataclass(frozen=True)
class MethodConfig:
    """Optimiser settings shared by every method (plain SGD, as in the DER paper)."""

    lr: float = 0.1
    """SGD learning rate."""
    momentum: float = 0.0
    """SGD momentum."""
    weight_decay: float = 0.0
    """L2 weight decay."""

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ConfigError(f"method.lr must be positive, got {self.lr}")
        if self.momentum < 0 or self.weight_decay < 0:
            raise ConfigError("method.momentum and method.weight_decay must be >= 0")

    def own_lr_schedule(self) -> str | None:
        """The setting by which the method decays its own learning rate (None: it does not)."""
        return None

    def epochs_needed(self, experience: int) -> EpochNeed | None:
        """The fewest epochs experience ``experience`` (0-based) needs for a schedule to act.

        A method whose settings count epochs (a warm-up, a milestone) returns what it needs; the
        loop checks every experience before training (an epoch is one pass over the data, under
        ``train.epochs`` and ``train.iters`` alike) and refuses a too short ``iters`` run.
        """
        return None


@dataclass(frozen=True)
class MethodContext:
    """What a method is given besides its config: network, data facts, device, randomness."""

    backbone: Backbone
    num_classes: int
    image_shape: tuple[int, int, int]
    transform: ImageTransform
    device: torch.device
    generator: torch.Generator
    num_experiences: int = 0
    """Experiences of the stream (0: unknown, as in unit tests that build a method alone)."""
    setting: Setting = "class-il"
    """The stream's scenario setting (``class-il`` or ``domain-il``)."""


class Method(nn.Module):
    """Base class: owns the network and its optimiser; ``observe`` is the whole per-batch update.

    Class attributes:
        name: Registry key.
        config_cls: The method's config dataclass.
        data_scope: ``current`` trains on the current experience; ``cumulative`` on every
            experience seen so far (the joint upper bound); ``iid`` on the t-th of equal parts
            of the shuffled union of all experiences (the IID upper bound: the same data and
            steps in random order). The loop reads it through :meth:`training_scope`.
        supported_settings: Scenario settings the method is defined for.
        backbone_variants: The method's own kind of the scenario's default backbone (e.g. SARL
            runs ``sparse_mlp`` where the scenario defaults to ``mlp``). The command line applies
            it unless a preset, config file or flag names the backbone.
        memory_field: The config field that ``--buffer-size`` sets (AR1*: ``rm_sz``).
        nonnegative_loss: The step loss is a sum of non-negative terms (not so for SSL losses).
        uses_backbone: False where the method builds its own network (GR, BI-R), not the backbone.
    """

    name: ClassVar[str]
    config_cls: ClassVar[type[MethodConfig]] = MethodConfig
    data_scope: ClassVar[DataScope] = "current"
    supported_settings: ClassVar[frozenset[Setting]] = frozenset(
        {"class-il", "domain-il", "gcil", "general"}
    )
    backbone_variants: ClassVar[Mapping[str, str]] = {}
    memory_field: ClassVar[str] = "buffer_size"
    nonnegative_loss: ClassVar[bool] = True
    uses_backbone: ClassVar[bool] = True

    def __init__(self, cfg: MethodConfig, ctx: MethodContext) -> None:
        super().__init__()
        self.cfg = cfg
        self.ctx = ctx
        self.net = ctx.backbone.to(ctx.device)
        self.optimizer = self.make_optimizer()

    def training_scope(self) -> DataScope:
        """The data the loop trains each experience on (the class's ``data_scope``)."""
        return self.data_scope

    def make_optimizer(self) -> torch.optim.Optimizer:
        """Plain SGD over the network's parameters."""
        return torch.optim.SGD(
            self.net.parameters(),
            lr=self.cfg.lr,
            momentum=self.cfg.momentum,
            weight_decay=self.cfg.weight_decay,
        )

    def observe(self, batch: Batch) -> StepOutput:
        """One step on ``batch``: forward, every loss term, optimiser step, buffer write."""
        raise NotImplementedError

    def before_experience(self, experience: Experience) -> None:
        """Called before training on ``experience``."""

    def batch_size(self, experience_size: int, configured: int) -> int:
        """Examples of the experience per step, asked after :meth:`before_experience`.

        The configured batch size, unless the method composes its steps itself (AR1* takes
        fewer new examples per step and fills the rest with replayed patterns).
        """
        return configured

    def after_epoch(self, experience: Experience, epoch: int) -> None:
        """Called after each epoch of ``experience``: one pass over its data.

        Under ``train.iters`` the iterations are split into passes (the last one partial), so
        ``epoch`` counts passes there too.
        """

    def after_experience(self, experience: Experience) -> None:
        """Called after training on ``experience``, before it is evaluated."""

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for normalised inputs ``x``, shape (B, num_classes)."""
        out: torch.Tensor = self.net(x)
        return out

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features for normalised inputs ``x``."""
        out: torch.Tensor = self.net.features(x)
        return out

    def probe_encoder(self) -> Backbone:
        """The network whose ``features`` the probes read (``train.probes``, ``lifelong probe``)."""
        return self.net

    def augment(self, x_clean: torch.Tensor) -> torch.Tensor:
        """Training inputs from clean ones: augment and normalise uint8 images.

        Float inputs are already normalised clean inputs of a stream that does not augment
        (see :class:`~lifelong.types.Batch`) and are returned as they are.
        """
        if x_clean.is_floating_point():
            return x_clean
        return self.ctx.transform.train(x_clean, self.ctx.generator)

    def get_extra_state(self) -> dict[str, Any]:
        """Optimiser state, saved with the module's ``state_dict``."""
        return {"optimizer": self.optimizer.state_dict()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore the optimiser state."""
        self.optimizer.load_state_dict(state["optimizer"])


@dataclass(frozen=True)
class MethodEntry:
    """A registered method: a class plus its defaults, backbone variants and settings.

    A named variant that only changes settings of another method (``bir_si``, ``cwr_star``, the
    SARL variants) is an entry of that method's class with other ``defaults``; a subclass is for
    a different algorithm.
    """

    name: str
    """Registry key: the name runs, results and presets use."""
    method_class: type[Method]
    """The class that runs the algorithm."""
    description: str
    """One line for ``lifelong list methods``."""
    defaults: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """Config fields set unless a preset, config file or override sets them."""
    fixed: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """Config fields the entry does not let change (CWR* never replays)."""
    backbone_variants: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """The entry's kind of the scenario's default backbone (see ``Method.backbone_variants``)."""
    supported_settings: frozenset[Setting] = frozenset()
    """Scenario settings the entry is defined for."""
    variant_of: str | None = None
    """The entry whose class and defaults this one changes (None: a method of its own)."""

    @property
    def config_cls(self) -> type[MethodConfig]:
        """The method class's config dataclass."""
        return self.method_class.config_cls

    @property
    def memory_field(self) -> str:
        """The config field that ``--buffer-size`` sets."""
        return self.method_class.memory_field

    def make_config(self, fields: Mapping[str, Any]) -> MethodConfig:
        """The entry's config: ``fields`` over its defaults, checked against its fixed fields."""
        config = self.config_cls(**{**self.defaults, **self.fixed, **fields})
        self.check(config)
        return config

    def check(self, config: MethodConfig) -> None:
        """Raise a ConfigError if ``config`` changes a field the entry fixes."""
        for key, value in self.fixed.items():
            if getattr(config, key) != value:
                wanted = getattr(config, key)
                instead = self.variant_of or "another method"
                raise ConfigError(
                    f"method.{key} is always {value!r} in {self.name}: "
                    f"use {instead} to set it to {wanted!r}"
                )

    def build(self, config: MethodConfig, ctx: MethodContext) -> Method:
        """The method, built from a config made by :meth:`make_config` (or resolved)."""
        return self.method_class(config, ctx)


METHODS: Registry[MethodEntry] = Registry("method")


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: register a method under its ``name`` with its class attributes."""
    METHODS.add(
        cls.name,
        MethodEntry(
            name=cls.name,
            method_class=cls,
            description=(inspect.getdoc(cls) or "").split("\n", 1)[0],
            backbone_variants=MappingProxyType(dict(cls.backbone_variants)),
            supported_settings=cls.supported_settings,
        ),
    )
    return cls


def register_variant(
    name: str,
    of: str,
    summary: str,
    defaults: Mapping[str, Any],
    fixed: Mapping[str, Any] | None = None,
    backbone_variants: Mapping[str, str] | None = None,
    supported_settings: frozenset[Setting] | None = None,
) -> MethodEntry:
    """Register ``name`` as a configuration of the registered method ``of``.

    Args:
        name: The variant's registry key.
        of: The registered method (not a variant) whose class runs the variant.
        summary: What the variant changes, in words (``lifelong list`` shows "OF with SUMMARY").
        defaults: Config fields the variant sets over the method's defaults.
        fixed: Config fields the variant does not let change.
        backbone_variants: The variant's backbone kinds (default: the method's).
        supported_settings: Scenario settings of the variant (default: the method's).
    """
    base = METHODS.get(of)
    if base.variant_of is not None:
        raise ValueError(f"variant {name!r} must name a method, not the variant {of!r}")
    entry = MethodEntry(
        name=name,
        method_class=base.method_class,
        description=f"{of} with {summary}",
        defaults=MappingProxyType(dict(defaults)),
        fixed=MappingProxyType(dict(fixed or {})),
        backbone_variants=MappingProxyType(
            dict(base.backbone_variants if backbone_variants is None else backbone_variants)
        ),
        supported_settings=(
            base.supported_settings if supported_settings is None else supported_settings
        ),
        variant_of=of,
    )
    METHODS.add(name, entry)
    return entry
