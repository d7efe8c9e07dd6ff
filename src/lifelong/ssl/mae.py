"""MAE (He et al., *Masked Autoencoders Are Scalable Vision Learners*, CVPR 2022).

Spec ``cssl.md`` §1: the ``vit_tiny`` encoder sees a random ⌊T(1 − r)⌋ of the T patch tokens of
one view (PatchShuffle, r = 0.75); a light transformer decoder (4 blocks, 3 heads, width 192 by
default) fills the hidden positions with a learned mask token, adds its own position embedding
(T + 1 entries, the first for the cls token) and predicts every patch's pixels with a linear head
to p²·C; the loss is the MSE over the masked pixels of the dataset-normalised image
(:func:`~lifelong.ssl.losses.mae_loss`).

Differences from the reference:

* **Probing features come from the unmasked image** (spec §9.3): :meth:`MAE.eval_encoder` is the
  ViT itself, whose ``features(x)`` encodes all tokens. The reference probes through the masking
  wrapper, so its features see a random 25% of the patches.
* The decoder has an input projection (encoder width → ``decoder_dim``) and a final LayerNorm,
  as in the MAE paper; the reference has neither, so its decoder width must equal the encoder's.
* The mask noise is drawn from the run's CPU generator when one is given.

During training ``z`` and ``e`` are the pooled encoding of the visible tokens (cls token or mean),
as in the reference; MAE has no projector (``projector_dim`` = d_e) and no two-argument
criterion (``alignment`` is None).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from lifelong.backbones import Backbone
from lifelong.backbones.vit import (
    Block,
    VisionTransformer,
    init_transformer_weights,
    unpatchify,
)
from lifelong.errors import ConfigError
from lifelong.ssl.losses import mae_loss
from lifelong.ssl.model import SSL_MODELS, SSLModel, SSLModelSpec, SSLOutput, check_positive


@dataclass(frozen=True)
class MAEConfig:
    """Configuration of :class:`MAE`."""

    mask_ratio: float = 0.75
    """Fraction r of the patch tokens hidden from the encoder (it keeps ⌊T(1 − r)⌋)."""
    decoder_depth: int = 4
    """Number of transformer blocks in the decoder."""
    decoder_heads: int = 3
    """Attention heads per decoder block; must divide ``decoder_dim``."""
    decoder_dim: int = 192
    """Token width of the decoder."""

    def __post_init__(self) -> None:
        if not 0.0 < self.mask_ratio < 1.0:
            raise ConfigError(f"ssl.mask_ratio must be in (0, 1), got {self.mask_ratio}")
        for field in ("decoder_depth", "decoder_heads", "decoder_dim"):
            check_positive(field, getattr(self, field))
        if self.decoder_dim % self.decoder_heads:
            raise ConfigError(
                f"ssl.decoder_heads ({self.decoder_heads}) must divide "
                f"ssl.decoder_dim ({self.decoder_dim})"
            )


def visible_count(num_tokens: int, mask_ratio: float) -> int:
    """⌊T(1 − r)⌋, robust to floating-point error (T = 10, r = 0.9 keeps 1, not 0)."""
    return math.floor(round(num_tokens * (1.0 - mask_ratio), 6))


class MAE(SSLModel):
    """Masked autoencoder on a ViT encoder (single view)."""

    name = "mae"

    def __init__(
        self, cfg: MAEConfig, encoder: Backbone, generator: torch.Generator | None = None
    ) -> None:
        if not isinstance(encoder, VisionTransformer):
            raise ConfigError(
                f"ssl model 'mae' needs the vit_tiny backbone, got {type(encoder).__name__}; "
                "set backbone: vit_tiny"
            )
        super().__init__(encoder, num_views=1)
        self.cfg = cfg
        self.generator = generator
        tokens = encoder.num_patches
        self.num_visible = visible_count(tokens, cfg.mask_ratio)
        if self.num_visible >= tokens:
            raise ConfigError(
                f"ssl.mask_ratio {cfg.mask_ratio} masks no patch of the {tokens} patches; raise it"
            )
        channels = encoder.image_shape[0]
        dim = cfg.decoder_dim
        self.decoder_embed = nn.Linear(encoder.feature_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, tokens + 1, dim))
        self.decoder_blocks = nn.Sequential(
            *(Block(dim, cfg.decoder_heads) for _ in range(cfg.decoder_depth))
        )
        self.decoder_norm = nn.LayerNorm(dim)
        self.decoder_head = nn.Linear(dim, encoder.patch_size**2 * channels)
        for part in (self.decoder_embed, self.decoder_blocks, self.decoder_norm, self.decoder_head):
            part.apply(init_transformer_weights)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.decoder_pos_embed, std=0.02)

    @property
    def vit(self) -> VisionTransformer:
        """The encoder, typed as the ViT it must be."""
        return cast(VisionTransformer, self.encoder)

    @property
    def projector_dim(self) -> int:
        """d_e (MAE has no projector; z is the pooled encoding)."""
        return self.embedding_dim

    def shuffle(self, batch: int, device: torch.device) -> torch.Tensor:
        """A random permutation of the T token indices per sample, (B, T) int64."""
        noise = torch.rand((batch, self.vit.num_patches), generator=self.generator)
        return noise.argsort(dim=1).to(device)

    def forward(self, views: list[torch.Tensor]) -> SSLOutput:
        """Reconstruction loss of one view (B, C, H, W) from a random subset of its patches."""
        self.check_views(views)
        image = views[0]
        tokens = self.vit.tokens(image)
        b, t, d = tokens.shape
        order = self.shuffle(b, image.device)
        keep = order[:, : self.num_visible]
        visible = torch.gather(tokens, 1, keep[..., None].expand(-1, -1, d))
        encoded = self.vit.encode(visible)
        features = self.vit.pool(encoded)
        pred = self.decode(encoded, order)
        mask = torch.ones(b, t, device=image.device).scatter_(1, keep, 0.0)
        p = self.vit.patch_size
        pixel_mask = unpatchify(mask[..., None].expand(-1, -1, p * p), p, (1, *image.shape[2:]))
        loss = mae_loss(unpatchify(pred, p, self.vit.image_shape), image, pixel_mask)
        return SSLOutput(loss, [features], [features])

    def decode(self, encoded: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """Predict every patch from the encoding of the visible ones.

        Args:
            encoded: Encoder output (B, 1 + K, D_enc): cls token, then the K visible tokens in
                the order ``order[:, :K]``.
            order: The per-sample permutation (B, T) whose first K entries were kept.

        Returns:
            Predicted patches (B, T, p²·C) in the original token order.
        """
        x = self.decoder_embed(encoded)
        b, k, dim = x.shape[0], x.shape[1] - 1, x.shape[2]
        t = order.shape[1]
        shuffled = torch.cat([x[:, 1:], self.mask_token.expand(b, t - k, dim)], dim=1)
        restore = order.argsort(dim=1)
        tokens = torch.gather(shuffled, 1, restore[..., None].expand(-1, -1, dim))
        x = torch.cat([x[:, :1], tokens], dim=1) + self.decoder_pos_embed
        x = self.decoder_norm(self.decoder_blocks(x))
        out: torch.Tensor = self.decoder_head(x[:, 1:])
        return out

    def eval_encoder(self) -> nn.Module:
        """The ViT itself: its ``features`` encode every patch (no masking)."""
        return self.vit


SSL_MODELS.add(
    "mae",
    SSLModelSpec(MAEConfig, MAE, "MAE: reconstruct masked patches (needs the vit_tiny backbone)"),
)
