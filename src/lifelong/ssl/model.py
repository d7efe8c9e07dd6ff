"""The common interface of the SSL models and their registry (spec ``cssl.md`` §0).

An :class:`SSLModel` wraps a library :class:`~lifelong.backbones.Backbone` (the encoder, whose
``features(x)`` gives (B, d_e)) with the model's own parts (projector, predictor, target
network, decoder) and its loss. Strategies and the continual-SSL method only see this interface:
``forward(views)`` returns the loss with the projections and encodings of every view, and
``alignment`` is the model's own two-argument criterion for aligning representations.

Mapping from the reference's ``AbstractSSLModel``: ``get_encoder`` → :attr:`SSLModel.encoder`,
``get_encoder_for_eval`` → :meth:`SSLModel.eval_encoder`, ``get_embedding_dim`` /
``get_projector_dim`` → :attr:`SSLModel.embedding_dim` / :attr:`SSLModel.projector_dim`,
``get_criterion`` → :attr:`SSLModel.alignment` (None where the reference says "not binary"),
``after_backward`` → :meth:`SSLModel.after_step`, ``get_params`` →
:meth:`SSLModel.trainable_parameters`, ``get_name`` → :attr:`SSLModel.name`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from lifelong.backbones import Backbone
from lifelong.errors import ConfigError
from lifelong.registry import Registry
from lifelong.ssl.heads import predictor_mlp, projector_mlp

AlignmentFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``criterion(a, b)``: per-sample losses (B,) or a batch-level scalar; callers take ``.mean()``."""


@dataclass(frozen=True)
class SSLOutput:
    """What one forward pass of an SSL model returns."""

    loss: torch.Tensor
    """The model's SSL loss, a scalar."""
    z: list[torch.Tensor]
    """Projector outputs, one (B, d_p) tensor per view."""
    e: list[torch.Tensor]
    """Encoder outputs (the probed features), one (B, d_e) tensor per view."""


def check_positive(field: str, value: float) -> None:
    """Raise a :class:`ConfigError` naming ``ssl.<field>`` unless ``value`` > 0."""
    if not value > 0:
        raise ConfigError(f"ssl.{field} must be positive, got {value}")


@dataclass(frozen=True)
class ProjectorConfig:
    """Settings of the models with the common projector (every model but MAE)."""

    dim_proj: int = 2048
    """Projector output width d_p."""

    def __post_init__(self) -> None:
        check_positive("dim_proj", self.dim_proj)


@dataclass(frozen=True)
class PredictorConfig(ProjectorConfig):
    """Settings of the models with a projector and a predictor (SimSiam, BYOL)."""

    dim_pred: int = 512
    """Predictor bottleneck width d_pred."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("dim_pred", self.dim_pred)


class SSLModel(nn.Module):
    """Base class: an encoder plus the model-specific parts and loss.

    Class attributes:
        name: Registry key.

    Attributes:
        encoder: The trained (online) encoder.
        num_views: Number of augmented views ``forward`` expects.
    """

    name: ClassVar[str]

    def __init__(self, encoder: Backbone, num_views: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.num_views = num_views

    @property
    def embedding_dim(self) -> int:
        """d_e, the width of the encoder features."""
        return self.encoder.head.in_features

    @property
    def projector_dim(self) -> int:
        """d_p, the width of the z tensors."""
        raise NotImplementedError

    @property
    def alignment(self) -> AlignmentFn | None:
        """The model's criterion for aligning two representations, or None if it has none.

        ``alignment(a, b)`` does not detach either argument. It returns per-sample losses (B,)
        for SimSiam and BYOL and a batch-level scalar for Barlow Twins; strategies reduce it with
        ``.mean()``.
        """
        return None

    def forward(self, views: list[torch.Tensor]) -> SSLOutput:
        """Loss, projections and encodings of ``num_views`` augmented views (B, C, H, W) each."""
        raise NotImplementedError

    def eval_encoder(self) -> nn.Module:
        """The encoder whose ``features(x)`` is probed (the online encoder by default)."""
        return self.encoder

    def after_step(self) -> None:
        """Called after every optimiser step (the EMA hook); does nothing by default."""

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters the optimiser updates.

        Everything that requires grad except the encoder's classification head, which SSL never
        uses; frozen parts (BYOL's target, the projector's frozen bias) have
        ``requires_grad=False``.
        """
        head = {id(p) for p in self.encoder.head.parameters()}
        return [p for p in self.parameters() if p.requires_grad and id(p) not in head]

    def check_views(self, views: list[torch.Tensor]) -> None:
        """Raise ``ValueError`` unless exactly ``num_views`` views are given."""
        if len(views) != self.num_views:
            raise ValueError(f"{self.name} expects {self.num_views} views, got {len(views)}")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder features of a batch, (B, C, H, W) → (B, d_e)."""
        out: torch.Tensor = self.encoder.features(x)
        return out


class PredictorModel(SSLModel):
    """Two views through the encoder, the common projector and a predictor (SimSiam, BYOL).

    Args:
        cfg: Projector and predictor widths.
        encoder: The trained encoder.
    """

    def __init__(self, cfg: PredictorConfig, encoder: Backbone) -> None:
        super().__init__(encoder, num_views=2)
        self.projector = projector_mlp(self.embedding_dim, cfg.dim_proj)
        self.predictor = predictor_mlp(cfg.dim_proj, cfg.dim_pred)
        self.dim_proj = cfg.dim_proj

    @property
    def projector_dim(self) -> int:
        """d_p."""
        return self.dim_proj

    def online(
        self, views: list[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """Per view: encoder outputs e, projections z and predictions p."""
        self.check_views(views)
        e = [self.encode(v) for v in views]
        z = [self.projector(x) for x in e]
        return e, z, [self.predictor(x) for x in z]


class SSLBuilder(Protocol):
    """Builds an SSL model: ``build(cfg, encoder, generator)``.

    ``generator`` is the CPU generator of the run, for models that draw random numbers (MAE's
    masks); None draws from torch's global generator.
    """

    def __call__(
        self, cfg: Any, encoder: Backbone, generator: torch.Generator | None = None
    ) -> SSLModel:
        """Return the model around ``encoder``."""
        ...


@dataclass(frozen=True)
class SSLModelSpec:
    """A registered SSL model: its config dataclass, a builder and a one-line description."""

    config_cls: type[Any]
    build: SSLBuilder
    description: str


SSL_MODELS: Registry[SSLModelSpec] = Registry("ssl_model")
