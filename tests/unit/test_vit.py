"""The small ViT backbone (``vit_tiny``) and its patch helpers."""

from __future__ import annotations

import pytest
import torch

from lifelong.backbones import BACKBONES
from lifelong.backbones.vit import (
    VisionTransformer,
    ViTConfig,
    patch_size_for,
    patchify,
    unpatchify,
)
from lifelong.errors import ConfigError

TINY = ViTConfig(emb_dim=16, depth=2, heads=2)


def build(cfg: ViTConfig = TINY, shape: tuple[int, int, int] = (3, 8, 8)) -> VisionTransformer:
    torch.manual_seed(0)
    return VisionTransformer(cfg, shape, num_classes=5)


def images(batch: int = 4, shape: tuple[int, int, int] = (3, 8, 8), seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, *shape, generator=torch.Generator().manual_seed(seed))


def test_registered_with_vit_tiny_defaults() -> None:
    spec = BACKBONES.get("vit_tiny")
    assert spec.config_cls is ViTConfig
    cfg = spec.config_cls()
    assert (cfg.emb_dim, cfg.depth, cfg.heads, cfg.patch_size, cfg.avg_pool) == (
        192,
        12,
        3,
        None,
        False,
    )


@pytest.mark.parametrize(
    ("side", "patch"), [(8, 2), (28, 2), (32, 2), (63, 2), (64, 4), (128, 4), (224, 16), (256, 16)]
)
def test_patch_size_rule(side: int, patch: int) -> None:
    assert patch_size_for(side, side) == patch


def test_default_patch_size_follows_the_image_size() -> None:
    assert build(shape=(3, 32, 32)).patch_size == 2
    assert build(shape=(3, 64, 64)).patch_size == 4
    assert build(shape=(3, 64, 64)).num_patches == 16 * 16
    assert build(ViTConfig(emb_dim=16, depth=1, heads=2, patch_size=4)).num_patches == 4


def test_shapes_of_tokens_encoding_features_and_logits() -> None:
    net = build()
    x = images()
    tokens = net.tokens(x)
    assert tokens.shape == (4, 16, 16)  # 8x8 image, patch 2 → 4x4 = 16 tokens of width 16
    assert net.pos_embed.shape == (1, 16, 16)
    assert net.encode(tokens).shape == (4, 17, 16)
    assert net.features(x).shape == (4, 16)
    assert net(x).shape == (4, 5)
    assert net.feature_dim == net.head.in_features == 16


def test_features_are_the_cls_token_or_the_patch_mean() -> None:
    x = images()
    cls_net = build()
    avg_net = build(ViTConfig(emb_dim=16, depth=2, heads=2, avg_pool=True))
    avg_net.load_state_dict(cls_net.state_dict())
    with torch.no_grad():
        encoded = cls_net.encode(cls_net.tokens(x))
        torch.testing.assert_close(cls_net.features(x), encoded[:, 0])
        torch.testing.assert_close(avg_net.features(x), encoded[:, 1:].mean(dim=1))
        assert not torch.allclose(cls_net.features(x), avg_net.features(x))


def test_features_depend_on_the_input_and_on_token_positions() -> None:
    net = build()
    x = images()
    with torch.no_grad():
        base = net.features(x)
        assert not torch.allclose(net.features(images(seed=2)), base)
        # swapping two patches changes the features: position embeddings break permutation
        # invariance of the attention
        swapped = x.clone()
        swapped[:, :, 0:2, 0:2], swapped[:, :, 6:8, 6:8] = x[:, :, 6:8, 6:8], x[:, :, 0:2, 0:2]
        assert not torch.allclose(net.features(swapped), base, atol=1e-5)


def test_forward_backward_reaches_every_parameter() -> None:
    net = build()
    loss = torch.nn.functional.cross_entropy(net(images()), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    for name, param in net.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_patchify_matches_the_token_order_and_inverts() -> None:
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    patches = patchify(x, 2)
    assert patches.shape == (2, 6, 12)
    # token 1 is the patch in the first patch-row, second patch-column: rows 0-1, cols 2-3
    torch.testing.assert_close(patches[0, 1], x[0, :, 0:2, 2:4].permute(1, 2, 0).reshape(-1))
    # token 3 starts the second patch-row
    torch.testing.assert_close(patches[1, 3], x[1, :, 2:4, 0:2].permute(1, 2, 0).reshape(-1))
    torch.testing.assert_close(unpatchify(patches, 2, (3, 4, 6)), x)


def test_patch_embedding_sees_exactly_its_patch() -> None:
    net = build()
    x = images(batch=1)
    y = x.clone()
    y[:, :, 0:2, 2:4] += 1.0  # change only patch 1
    with torch.no_grad():
        diff = (net.tokens(y) - net.tokens(x)).abs().sum(dim=2)[0]
    assert diff[1] > 0
    assert torch.count_nonzero(diff) == 1


def test_bad_configs_fail_naming_the_field() -> None:
    with pytest.raises(ConfigError, match="heads"):
        ViTConfig(emb_dim=10, heads=3)
    with pytest.raises(ConfigError, match="depth"):
        ViTConfig(depth=0)
    with pytest.raises(ConfigError, match="patch_size"):
        VisionTransformer(ViTConfig(emb_dim=16, depth=1, heads=2, patch_size=3), (3, 8, 8), 2)
