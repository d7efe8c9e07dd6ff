"""The continual-SSL strategy interface, config, registry and shared parts (``cssl.md`` §2).

A strategy decides what each training pass sees and what is added to the SSL loss; the method
(:class:`~lifelong.methods.cssl.CSSL`) runs the passes. Hooks, in call order per stream
minibatch S (uint8 images):

1. :meth:`Strategy.before_passes` once (MinRed inserts S into its buffer);
2. per pass: :meth:`Strategy.before_forward` builds the pass's images from S and replay
   (replayed rows first), the method augments them into views, :meth:`Strategy.after_transforms`
   may change the views (LUMP mixes), the model runs, :meth:`Strategy.after_forward` adds the
   alignment terms to the loss, the optimiser steps, then :meth:`Strategy.after_step` (EMA
   targets, refresh of the replayed items' stored features);
3. :meth:`Strategy.after_passes` once (S joins the buffer with the mean projection over the views
   of the last pass).

:meth:`Strategy.before_experience` runs at experience boundaries (CaSSLe). The SSL model is
passed to the hooks that need it rather than held, so it is not a submodule of the strategy.
The aligner g (Linear(D→h, no bias) → BN → ReLU → Linear(h→D), D = d_p) is trainable; the method
adds :meth:`Strategy.trainable_parameters` to its optimiser.

Differences from the reference (``giacomo-cgn/ocl-self-supervised``): random draws come from the
run's generator (the reference's numpy/python generators are unseeded, §9.8); alignment is always
after the projector (``--align-after-proj False`` is not built).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from lifelong.backbones import Backbone
from lifelong.buffers.stream_buffers import (
    STREAM_BUFFERS,
    Replay,
    StreamBuffer,
    StreamBufferConfig,
    build_stream_buffer,
)
from lifelong.errors import ConfigError
from lifelong.registry import Registry
from lifelong.ssl.losses import negative_cosine_per_sample
from lifelong.ssl.model import AlignmentFn, SSLModel, SSLOutput

Criterion = Literal["cosine", "mse", "ssl"]
Normalize = Callable[[torch.Tensor], torch.Tensor]
"""uint8 images → the normalised, un-augmented view (the dataset's evaluation transform)."""


@dataclass(frozen=True)
class StrategyConfig:
    """Settings shared by the strategies (defaults: the reference's command line, §5)."""

    buffer: str = "default"
    """Replay buffer kind, or ``default``: the strategy's own (reservoir; minred for minred)."""
    buffer_size: int = 2000
    """Items the replay buffer holds (``--mem-size``)."""
    replay_batch_size: int = 32
    """Replayed items per pass (``--repl-mb-size``; LUMP replays as many as the stream batch)."""
    feature_ema: float = 0.5
    """α of the stored-feature refresh f ← α f + (1 − α) z̄ (``--features-buffer-ema``)."""
    omega: float = 0.1
    """Weight ω of the alignment term (CaSSLe's paper uses 1 with the SSL loss, §9.14)."""
    align_criterion: Criterion = "cosine"
    """Alignment loss: cosine (−cos per sample), mse (mean over elements) or ssl (the model's)."""
    use_aligner: bool = True
    """Pass the current projection through the trainable aligner g (else g is the identity)."""
    aligner_dim: int = 512
    """Hidden width of the aligner g."""
    ema_momentum: float = 0.999
    """Momentum m of the EMA targets of AEP and APRE."""
    lump_alpha: float = 0.4
    """α of LUMP's mixing coefficient λ ~ Beta(α, α)."""

    def check_strategy(self) -> None:
        """Validate the fields (call from the owning config's ``__post_init__``)."""
        if self.buffer != "default":
            STREAM_BUFFERS.get(self.buffer)  # names the choices when unknown
        if self.buffer_size <= 0 or self.aligner_dim <= 0:
            raise ConfigError("method.buffer_size and method.aligner_dim must be positive")
        if self.replay_batch_size < 2:
            raise ConfigError(
                f"method.replay_batch_size must be >= 2 (BatchNorm), got {self.replay_batch_size}"
            )
        for name in ("feature_ema", "ema_momentum"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"method.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.omega < 0 or not self.lump_alpha > 0:
            raise ConfigError("method.omega must be >= 0 and method.lump_alpha positive")
        if self.align_criterion not in ("cosine", "mse", "ssl"):
            raise ConfigError(
                f"method.align_criterion must be cosine, mse or ssl, got {self.align_criterion!r}"
            )


@dataclass(frozen=True)
class PassBatch:
    """The images of one training pass and where the replayed ones came from.

    Attributes:
        x: uint8 images (n, C, H, W) to augment; the replayed items come first.
        replay: The replayed items (their images are ``x[:num_replay]``), or None.
    """

    x: torch.Tensor
    replay: Replay | None = None

    @property
    def num_replay(self) -> int:
        """Number of replayed rows at the start of ``x``."""
        return 0 if self.replay is None else len(self.replay.slots)


def mean_projection(out: SSLOutput) -> torch.Tensor:
    """z̄: the projections averaged over the views, detached, (n, d_p)."""
    return torch.stack(out.z).mean(dim=0).detach()


def projector_of(model: SSLModel) -> nn.Module:
    """The model's projector (identity for a model without one, e.g. MAE)."""
    projector = getattr(model, "projector", None)
    return projector if isinstance(projector, nn.Module) else nn.Identity()


class Projection(nn.Module):
    """``x → projector(encoder.features(x))``: the part of an SSL model whose output is z."""

    def __init__(self, encoder: Backbone, projector: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = projector

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The projections z of normalised images (B, C, H, W)."""
        out: torch.Tensor = self.projector(self.encoder.features(x))
        return out

    @classmethod
    def of(cls, model: SSLModel) -> Projection:
        """The model's own encoder and projector (shared, not copied)."""
        return cls(model.encoder, projector_of(model))

    @classmethod
    def frozen_copy(cls, model: SSLModel) -> Projection:
        """A deep copy of the model's encoder and projector without gradients."""
        return copy.deepcopy(cls.of(model)).requires_grad_(False)


@contextmanager
def statistics_kept(module: nn.Module) -> Iterator[None]:
    """Run with batch statistics but leave the BatchNorm running statistics as they were."""
    saved = [b.detach().clone() for b in module.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in zip(module.buffers(), saved, strict=True):
                buffer.copy_(value)


def aligner_mlp(dim: int, hidden: int) -> nn.Sequential:
    """The aligner g: Linear(D→h, no bias) → BN → ReLU → Linear(h→D)."""
    return nn.Sequential(
        nn.Linear(dim, hidden, bias=False),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, dim),
    )


def mse_criterion(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all elements (``nn.MSELoss``), a scalar."""
    return F.mse_loss(a, b)


def criterion_for(name: Criterion, model: SSLModel) -> AlignmentFn:
    """The alignment criterion ``name``; ``ssl`` is the model's own two-argument criterion."""
    if name == "cosine":
        return negative_cosine_per_sample
    if name == "mse":
        return mse_criterion
    if model.alignment is None:
        raise ConfigError(
            f"method.align_criterion 'ssl' needs an SSL model with a two-argument criterion; "
            f"{model.name} has none: use cosine or mse"
        )
    return model.alignment


class Alignment(nn.Module):
    """ω-free alignment term ``mean crit(g(z), sg(target))`` with the trainable aligner g."""

    def __init__(self, cfg: StrategyConfig, model: SSLModel) -> None:
        super().__init__()
        dim = model.projector_dim
        self.g: nn.Module = aligner_mlp(dim, cfg.aligner_dim) if cfg.use_aligner else nn.Identity()
        self.criterion = criterion_for(cfg.align_criterion, model)

    def forward(self, z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The criterion between g(z) and the detached target, averaged to a scalar."""
        return self.criterion(self.g(z), target.detach()).mean()


class Strategy(nn.Module):
    """Base class: plain training on the stream minibatch; subclasses override hooks.

    Class attributes:
        name: Registry key.
        default_buffer: Buffer kind of ``buffer: default``; None for buffer-free strategies.

    Args:
        cfg: Strategy settings.
        model: The SSL model being trained (read for dimensions, copied by some strategies).
        buffer: The replay buffer (None for buffer-free strategies).
        normalize: The un-augmented view of uint8 images.
        generator: The run's CPU generator.
    """

    name: ClassVar[str]
    default_buffer: ClassVar[str | None] = None

    def __init__(
        self,
        cfg: StrategyConfig,
        model: SSLModel,
        buffer: StreamBuffer | None,
        normalize: Normalize,
        generator: torch.Generator,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.buffer = buffer
        self.normalize = normalize
        self.generator = generator
        self.build_modules(model)

    def build_modules(self, model: SSLModel) -> None:
        """Build the strategy's own networks (targets, aligners) for ``model``; none by default."""

    @property
    def replay_buffer(self) -> StreamBuffer:
        """The buffer, for strategies that need one."""
        if self.buffer is None:
            raise RuntimeError(f"strategy {self.name} was built without its buffer")
        return self.buffer

    def before_experience(self, model: SSLModel) -> None:
        """Called at the start of every experience."""

    def before_passes(self, model: SSLModel, x: torch.Tensor) -> None:
        """Called once per stream minibatch ``x`` (uint8), before its passes."""

    def before_forward(self, x: torch.Tensor) -> PassBatch:
        """The images of one pass over the stream minibatch ``x``: here ``x`` itself."""
        return PassBatch(x)

    def after_transforms(self, views: list[torch.Tensor], batch: PassBatch) -> list[torch.Tensor]:
        """The views the model sees (unchanged here)."""
        return views

    def after_forward(
        self, model: SSLModel, views: list[torch.Tensor], out: SSLOutput, batch: PassBatch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss to minimise and its extra named terms: here the SSL loss alone."""
        return out.loss, {}

    def after_step(self, model: SSLModel, out: SSLOutput, batch: PassBatch) -> None:
        """Called after every optimiser step."""

    def after_passes(self, x: torch.Tensor, out: SSLOutput, batch: PassBatch) -> None:
        """Called once per stream minibatch after its passes, with the last pass's output."""

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters the method's optimiser updates (the aligner's)."""
        return [p for p in self.parameters() if p.requires_grad]


SSL_STRATEGIES: Registry[type[Strategy]] = Registry("strategy")
"""Continual-SSL strategies by name (filled by the modules of this package)."""


def buffer_kind(cfg: StrategyConfig, strategy: str) -> str | None:
    """The buffer the strategy gets: the configured kind, its default, or None (buffer-free)."""
    default = SSL_STRATEGIES.get(strategy).default_buffer
    if default is None:
        if cfg.buffer != "default":
            raise ConfigError(
                f"strategy {strategy!r} uses no buffer; remove method.buffer={cfg.buffer!r} "
                "or choose a replay strategy (er, lump, minred, arp, apre)"
            )
        return None
    return default if cfg.buffer == "default" else cfg.buffer


def build_strategy(
    name: str,
    cfg: StrategyConfig,
    model: SSLModel,
    image_shape: tuple[int, int, int],
    normalize: Normalize,
    generator: torch.Generator,
) -> Strategy:
    """The strategy ``name`` with its buffer (features of width d_p), on the model's device."""
    kind = buffer_kind(cfg, name)
    buffer = None
    if kind is not None:
        buffer_cfg = StreamBufferConfig(kind, cfg.buffer_size, cfg.feature_ema)
        buffer = build_stream_buffer(buffer_cfg, image_shape, model.projector_dim, generator)
    strategy = SSL_STRATEGIES.get(name)(cfg, model, buffer, normalize, generator)
    device = next(model.parameters()).device
    return strategy.to(device)
