"""A small Vision Transformer (Dosovitskiy et al., *An Image is Worth 16x16 Words*, ICLR 2021).

The ``vit_tiny`` encoder of spec ``cssl.md`` §4: a convolutional patch embedding, learned position
embeddings for the patch tokens (no entry for the cls token), a cls token, pre-norm transformer
blocks (multi-head self-attention and an MLP of ratio 4) and a final LayerNorm. ViT-Tiny has
width 192, 12 blocks and 3 heads. Features are the cls token, or the mean of the patch tokens
with ``avg_pool``.

The pieces are public so MAE (:mod:`lifelong.ssl.mae`) can run the encoder on a subset of tokens:
:meth:`VisionTransformer.tokens` (patch embedding plus position embedding),
:meth:`VisionTransformer.encode` (cls token, blocks, norm) and :meth:`VisionTransformer.pool`;
:func:`patchify` and :func:`unpatchify` convert between images and per-patch pixel vectors in the
patch order of the tokens. :class:`Block` is reused by the MAE decoder.

Differences from the reference: the reference wraps timm's ``Block``; this is our own (same
layout, attention through ``F.scaled_dot_product_attention``). The reference ignores its depth and
heads options (spec §9.4); here ``depth`` and ``heads`` are honoured. The reference shuffles the
tokens even for non-MAE models (ratio 0, harmless); this encoder does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from lifelong.backbones import BACKBONES, Backbone, BackboneSpec
from lifelong.errors import ConfigError


@dataclass(frozen=True)
class ViTConfig:
    """Configuration of :class:`VisionTransformer` (defaults: ViT-Tiny)."""

    emb_dim: int = 192
    """Token width (the feature dimension)."""
    depth: int = 12
    """Number of transformer blocks."""
    heads: int = 3
    """Attention heads per block; must divide ``emb_dim``."""
    patch_size: int | None = None
    """Side of the square patches; None picks it from the image size (:func:`patch_size_for`)."""
    avg_pool: bool = False
    """Features are the mean of the patch tokens instead of the cls token."""
    mlp_ratio: float = 4.0
    """Hidden width of each block's MLP, as a multiple of ``emb_dim``."""

    def __post_init__(self) -> None:
        for name in ("emb_dim", "depth", "heads"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"backbone.{name} must be positive, got {getattr(self, name)}")
        if self.emb_dim % self.heads:
            raise ConfigError(
                f"backbone.heads ({self.heads}) must divide backbone.emb_dim ({self.emb_dim})"
            )
        if self.patch_size is not None and self.patch_size <= 0:
            raise ConfigError(
                f"backbone.patch_size must be positive or null, got {self.patch_size}"
            )
        if not self.mlp_ratio > 0:
            raise ConfigError(f"backbone.mlp_ratio must be positive, got {self.mlp_ratio}")


def patch_size_for(height: int, width: int) -> int:
    """The reference's patch size for an image size: 2 for 32 px, 4 for 64 px, 16 for 224/256 px.

    Sizes between those points use the rule of the next smaller one: below 64 px → 2,
    64–223 px → 4, from 224 px → 16 (on the shorter side).
    """
    side = min(height, width)
    if side >= 224:
        return 16
    if side >= 64:
        return 4
    return 2


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut images into flattened patches, in the row-major order of the tokens.

    Args:
        images: (B, C, H, W), with H and W multiples of ``patch_size``.
        patch_size: Side p of the square patches.

    Returns:
        (B, T, p·p·C) with T = (H/p)(W/p); each patch is flattened in (p, p, C) order.
    """
    b, c, h, w = images.shape
    p = patch_size
    x = images.reshape(b, c, h // p, p, w // p, p)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // p) * (w // p), p * p * c)


def unpatchify(
    patches: torch.Tensor, patch_size: int, image_shape: tuple[int, int, int]
) -> torch.Tensor:
    """Inverse of :func:`patchify`: (B, T, p·p·C) → (B, C, H, W) for ``image_shape`` (C, H, W)."""
    c, h, w = image_shape
    p = patch_size
    b = patches.shape[0]
    x = patches.reshape(b, h // p, w // p, p, p, c)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(b, c, h, w)


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, D) → (B, N, D)."""
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        merged: torch.Tensor = self.proj(out.transpose(1, 2).reshape(b, n, d))
        return merged


class Block(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x)), then x + MLP(LN(x)) with a GELU MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, D) → (B, N, D)."""
        x = x + self.attn(self.norm1(x))
        out: torch.Tensor = x + self.mlp(self.norm2(x))
        return out


def init_transformer_weights(module: nn.Module) -> None:
    """Initialise like timm's ViT: truncated normal (std 0.02) linear weights, zero biases."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class VisionTransformer(Backbone):
    """ViT encoder with a linear classification head on the pooled features.

    Attributes:
        patch_size: Side of the square patches.
        image_shape: (C, H, W) the position embedding was built for.
        num_patches: T, the number of patch tokens.
        feature_dim: ``emb_dim``.
    """

    def __init__(self, cfg: ViTConfig, image_shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__()
        c, h, w = image_shape
        p = cfg.patch_size if cfg.patch_size is not None else patch_size_for(h, w)
        if h % p or w % p:
            raise ConfigError(
                f"backbone.patch_size {p} does not divide the image size {h}x{w}; "
                "set backbone.patch_size to a divisor"
            )
        self.cfg = cfg
        self.patch_size = p
        self.image_shape = image_shape
        self.num_patches = (h // p) * (w // p)
        self.feature_dim = cfg.emb_dim
        self.patch_embed = nn.Conv2d(c, cfg.emb_dim, kernel_size=p, stride=p)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.emb_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_patches, cfg.emb_dim))
        self.blocks = nn.Sequential(
            *(Block(cfg.emb_dim, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        )
        self.norm = nn.LayerNorm(cfg.emb_dim)
        self.head = nn.Linear(cfg.emb_dim, num_classes)
        self.apply(init_transformer_weights)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens with their position embedding: (B, C, H, W) → (B, T, D)."""
        out: torch.Tensor = self.patch_embed(x).flatten(2).transpose(1, 2)
        return out + self.pos_embed

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Prepend the cls token and run the blocks and final norm: (B, N, D) → (B, 1+N, D).

        ``tokens`` may be any subset of the patch tokens (MAE passes the visible ones).
        """
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        out: torch.Tensor = self.norm(self.blocks(torch.cat([cls, tokens], dim=1)))
        return out

    def pool(self, encoded: torch.Tensor) -> torch.Tensor:
        """(B, 1+N, D) → (B, D): the cls token, or the mean of the N patch tokens (``avg_pool``)."""
        if self.cfg.avg_pool:
            return encoded[:, 1:].mean(dim=1)
        return encoded[:, 0]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features of all patches (nothing masked), shape (B, emb_dim)."""
        return self.pool(self.encode(self.tokens(x)))


BACKBONES.add(
    "vit_tiny",
    BackboneSpec(
        ViTConfig,
        VisionTransformer,
        "ViT-Tiny (width 192, 12 blocks, 3 heads; patch 2/4/16 for 32/64/224 px); MAE's encoder",
    ),
)
