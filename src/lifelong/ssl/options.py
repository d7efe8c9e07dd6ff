"""The SSL models' settings as flat, optional config fields (like the reference's command line).

Method configs are flat dataclasses (``--set method.FIELD=VALUE``), so a method that lets the user
choose the SSL model by name carries every model's settings as ``ssl_<field>`` fields.
``None`` keeps the chosen model's own default (its config dataclass is the single source of
defaults); a value set for a field the chosen model does not have is ignored with a warning, so
one sweep can vary the model while fixing, say, ``ssl_dim_proj``.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import torch

from lifelong.backbones import Backbone
from lifelong.ssl.model import SSL_MODELS, SSLModel

log = logging.getLogger(__name__)

PREFIX = "ssl_"


@dataclass(frozen=True)
class SSLModelOptions:
    """Settings of the SSL models; None keeps the chosen model's default (see each model)."""

    ssl_dim_proj: int | None = None
    """Projector output width d_p (simsiam, byol, barlow_twins, emp_ssl; default 2048)."""
    ssl_dim_pred: int | None = None
    """Predictor bottleneck width (simsiam, byol; default 512)."""
    ssl_momentum: float | None = None
    """BYOL target EMA momentum (default 0.99)."""
    ssl_eval_momentum_encoder: bool | None = None
    """BYOL: probe the momentum encoder (default True)."""
    ssl_lambd: float | None = None
    """Barlow Twins off-diagonal weight λ (default 5e-3)."""
    ssl_num_views: int | None = None
    """EMP-SSL number of views (default 20)."""
    ssl_lambda_inv: float | None = None
    """EMP-SSL invariance weight (default 200)."""
    ssl_lambda_tcr: float | None = None
    """EMP-SSL total-coding-rate weight (default 1)."""
    ssl_eps: float | None = None
    """EMP-SSL coding-rate distortion ε (default 0.2)."""
    ssl_normalize: bool | None = None
    """EMP-SSL: L2-normalise z before the loss (default True)."""
    ssl_mask_ratio: float | None = None
    """MAE mask ratio (default 0.75)."""
    ssl_decoder_depth: int | None = None
    """MAE decoder blocks (default 4)."""
    ssl_decoder_heads: int | None = None
    """MAE decoder attention heads (default 3)."""
    ssl_decoder_dim: int | None = None
    """MAE decoder width (default 192)."""

    def ssl_config(self, name: str) -> Any:
        """The config dataclass of SSL model ``name`` with the options set here that it has.

        Raises:
            ConfigError: for an unknown model or an invalid value (from the model's config).
        """
        spec = SSL_MODELS.get(name)
        accepted = {f.name for f in dataclasses.fields(spec.config_cls)}
        chosen = {
            key: value
            for key, value in self.options_set().items()
            if key.removeprefix(PREFIX) in accepted
        }
        return spec.config_cls(**{k.removeprefix(PREFIX): v for k, v in chosen.items()})

    def options_set(self) -> dict[str, Any]:
        """The options that are not None, by field name."""
        fields = dataclasses.fields(SSLModelOptions)
        values = {f.name: getattr(self, f.name) for f in fields}
        return {k: v for k, v in values.items() if v is not None}

    def ignored_options(self, name: str) -> list[str]:
        """Options set here that SSL model ``name`` does not have."""
        accepted = {f.name for f in dataclasses.fields(SSL_MODELS.get(name).config_cls)}
        return [k for k in self.options_set() if k.removeprefix(PREFIX) not in accepted]


def build_ssl_model(
    name: str, options: SSLModelOptions, encoder: Backbone, generator: torch.Generator
) -> SSLModel:
    """SSL model ``name`` around ``encoder`` with ``options`` (warns about ignored options)."""
    ignored = options.ignored_options(name)
    if ignored:
        log.warning(
            "ssl model %s has no %s; ignored", name, ", ".join(f"method.{k}" for k in ignored)
        )
    return SSL_MODELS.get(name).build(options.ssl_config(name), encoder, generator)
