"""The SSL models behind one interface: losses, gradients, EMA target, MAE masking."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

import lifelong.backbones.mlp
import lifelong.backbones.resnet
import lifelong.backbones.vit
import lifelong.ssl.barlow_twins
import lifelong.ssl.byol
import lifelong.ssl.emp_ssl
import lifelong.ssl.mae
import lifelong.ssl.simsiam  # noqa: F401
from lifelong.backbones import BACKBONES, Backbone
from lifelong.backbones.mlp import MLPConfig
from lifelong.backbones.resnet import ResNetConfig
from lifelong.backbones.vit import ViTConfig
from lifelong.errors import ConfigError
from lifelong.ssl.byol import BYOL, BYOLConfig
from lifelong.ssl.emp_ssl import EMPSSLConfig
from lifelong.ssl.heads import predictor_mlp, projector_mlp
from lifelong.ssl.mae import MAE, MAEConfig, visible_count
from lifelong.ssl.model import SSL_MODELS, SSLModel
from lifelong.ssl.simsiam import SimSiamConfig

SHAPE = (3, 8, 8)
BATCH = 6
TINY_CONFIGS: dict[str, dict[str, Any]] = {
    "simsiam": {"dim_proj": 8, "dim_pred": 4},
    "byol": {"dim_proj": 8, "dim_pred": 4},
    "barlow_twins": {"dim_proj": 8},
    "emp_ssl": {"dim_proj": 8, "num_views": 3},
    "mae": {"decoder_depth": 1, "decoder_heads": 2, "decoder_dim": 8},
}


def encoder_for(name: str, seed: int = 0) -> Backbone:
    torch.manual_seed(seed)
    if name == "mae":
        return BACKBONES.get("vit_tiny").build(ViTConfig(emb_dim=16, depth=2, heads=2), SHAPE, 5)
    return BACKBONES.get("mlp").build(MLPConfig(hidden=(16,)), SHAPE, 5)


def build(name: str, generator: torch.Generator | None = None, **overrides: Any) -> SSLModel:
    spec = SSL_MODELS.get(name)
    cfg = spec.config_cls(**{**TINY_CONFIGS[name], **overrides})
    encoder = encoder_for(name)
    torch.manual_seed(1)
    return spec.build(cfg, encoder, generator)


def views(model: SSLModel, seed: int = 2, shape: tuple[int, ...] = SHAPE) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(BATCH, *shape, generator=g) for _ in range(model.num_views)]


def test_registry_holds_the_five_models() -> None:
    assert SSL_MODELS.names() == ["barlow_twins", "byol", "emp_ssl", "mae", "simsiam"]
    with pytest.raises(ConfigError, match="simsiam"):
        SSL_MODELS.get("simsam")


def test_reference_defaults() -> None:
    assert (SimSiamConfig().dim_proj, SimSiamConfig().dim_pred) == (2048, 512)
    assert BYOLConfig().momentum == 0.99 and BYOLConfig().eval_momentum_encoder
    assert SSL_MODELS.get("barlow_twins").config_cls().lambd == 5e-3
    emp = EMPSSLConfig()
    assert (emp.num_views, emp.lambda_inv, emp.lambda_tcr, emp.eps) == (20, 200.0, 1.0, 0.2)
    mae = MAEConfig()
    assert (mae.mask_ratio, mae.decoder_depth, mae.decoder_heads, mae.decoder_dim) == (
        0.75,
        4,
        3,
        192,
    )


@pytest.mark.parametrize("name", sorted(TINY_CONFIGS))
def test_forward_gives_a_finite_loss_and_per_view_outputs(name: str) -> None:
    model = build(name)
    out = model(views(model))
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    expected_views = model.num_views
    assert len(out.z) == len(out.e) == expected_views
    for z, e in zip(out.z, out.e, strict=True):
        assert z.shape == (BATCH, model.projector_dim)
        assert e.shape == (BATCH, model.embedding_dim)
    assert model.embedding_dim == 16


@pytest.mark.parametrize("name", sorted(TINY_CONFIGS))
def test_one_sgd_step_moves_the_encoder(name: str) -> None:
    model = build(name)
    params = model.trainable_parameters()
    before = {k: v.detach().clone() for k, v in model.encoder.named_parameters()}
    loss = model(views(model)).loss
    loss.backward()
    for p in params:
        assert p.grad is not None and torch.isfinite(p.grad).all()
    assert sum(float(p.grad.abs().sum()) for p in params if p.grad is not None) > 0
    torch.optim.SGD(params, lr=0.1).step()
    moved = [k for k, v in model.encoder.named_parameters() if not torch.equal(v, before[k])]
    assert moved and all(not k.startswith("head.") for k in moved)
    assert {k for k in before if not k.startswith("head.")} == set(moved)


@pytest.mark.parametrize("name", sorted(TINY_CONFIGS))
def test_trainable_parameters_skip_the_head_and_frozen_tensors(name: str) -> None:
    model = build(name)
    trainable = {id(p) for p in model.trainable_parameters()}
    assert all(id(p) not in trainable for p in model.encoder.head.parameters())
    assert all(p.requires_grad for p in model.trainable_parameters())
    frozen = [p for p in model.parameters() if not p.requires_grad]
    assert all(id(p) not in trainable for p in frozen)
    others = [p for p in model.parameters() if p.requires_grad]
    assert len(trainable) == len(others) - len(list(model.encoder.head.parameters()))


def test_the_number_of_views_is_checked() -> None:
    model = build("simsiam")
    with pytest.raises(ValueError, match="2 views"):
        model(views(model)[:1])


def test_alignment_criteria() -> None:
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    simsiam_align = build("simsiam").alignment
    byol_align = build("byol").alignment
    bt_align = build("barlow_twins").alignment
    assert simsiam_align is not None and byol_align is not None and bt_align is not None
    torch.testing.assert_close(simsiam_align(a, b), torch.tensor([-1 / math.sqrt(2), 0.0]))
    torch.testing.assert_close(byol_align(a, b), torch.tensor([2 - math.sqrt(2), 2.0]))
    assert bt_align(torch.randn(5, 3), torch.randn(5, 3)).dim() == 0
    assert build("emp_ssl").alignment is None
    assert build("mae").alignment is None


def test_works_with_a_reduced_resnet_encoder() -> None:
    torch.manual_seed(0)
    encoder = BACKBONES.get("resnet18").build(ResNetConfig(nf=4), (3, 16, 16), 10)
    model = SSL_MODELS.get("simsiam").build(SimSiamConfig(dim_proj=8, dim_pred=4), encoder)
    assert model.embedding_dim == 32
    out = model(views(model, shape=(3, 16, 16)))
    assert torch.isfinite(out.loss) and out.e[0].shape == (BATCH, 32)


def test_heads_follow_the_reference_layout() -> None:
    proj = projector_mlp(16, 8)
    linears = [m for m in proj if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(16, 16), (16, 16), (16, 8)]
    assert linears[0].bias is None and linears[1].bias is None
    assert linears[2].bias is not None and not linears[2].bias.requires_grad
    last = proj[-1]
    assert isinstance(last, nn.BatchNorm1d) and not last.affine
    no_bn = projector_mlp(16, 8, final_bn=False)
    assert isinstance(no_bn[-1], nn.Linear) and no_bn[-1].bias is None
    pred = predictor_mlp(8, 4)
    dims = [(m.in_features, m.out_features) for m in pred if isinstance(m, nn.Linear)]
    assert dims == [(8, 4), (4, 8)]


# --- BYOL -------------------------------------------------------------------------------------


def test_byol_target_gets_no_gradient_and_follows_the_ema_formula() -> None:
    model = build("byol", momentum=0.9)
    assert isinstance(model, BYOL)
    online = [model.encoder, model.projector]
    target = [model.target_encoder, model.target_projector]
    for o, t in zip(online, target, strict=True):  # deep copies at construction
        for po, pt in zip(o.parameters(), t.parameters(), strict=True):
            assert torch.equal(po, pt) and po is not pt
    optimizer = torch.optim.SGD(model.trainable_parameters(), lr=0.5)
    model(views(model)).loss.backward()
    assert all(p.grad is None for t in target for p in t.parameters())
    old_target = [p.detach().clone() for t in target for p in t.parameters()]
    target_buffers = [b.clone() for t in target for b in t.buffers()]
    optimizer.step()
    now_target = [p.detach() for t in target for p in t.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(old_target, now_target, strict=True))
    model.after_step()
    new_online = [p.detach() for o in online for p in o.parameters()]
    changed = 0
    for old, new, on in zip(old_target, now_target, new_online, strict=True):
        torch.testing.assert_close(new, 0.9 * old + 0.1 * on, rtol=1e-6, atol=1e-6)
        changed += int(not torch.equal(old, new))
    assert changed > 0
    # only parameters are averaged: the BN running statistics are untouched by the update
    for before, after in zip(target_buffers, [b for t in target for b in t.buffers()], strict=True):
        assert torch.equal(before, after)


def test_byol_probes_the_momentum_encoder_by_default() -> None:
    model = build("byol")
    assert isinstance(model, BYOL)
    assert model.eval_encoder() is model.target_encoder
    online = build("byol", eval_momentum_encoder=False)
    assert online.eval_encoder() is online.encoder


# --- EMP-SSL ----------------------------------------------------------------------------------


def test_emp_ssl_splits_the_joint_pass_per_view_and_normalises() -> None:
    model = build("emp_ssl")
    v = views(model)
    out = model([v[0], v[1], v[0]])
    torch.testing.assert_close(out.z[0], out.z[2])
    assert not torch.allclose(out.z[0], out.z[1])
    torch.testing.assert_close(out.z[1].norm(dim=1), torch.ones(BATCH))
    raw = build("emp_ssl", normalize=False)(v)
    assert not torch.allclose(raw.z[0].norm(dim=1), torch.ones(BATCH))


# --- MAE --------------------------------------------------------------------------------------


def test_mae_needs_the_vit_encoder() -> None:
    cfg = MAEConfig(decoder_dim=8, decoder_heads=2, decoder_depth=1)
    with pytest.raises(ConfigError, match="vit_tiny"):
        SSL_MODELS.get("mae").build(cfg, encoder_for("simsiam"))


def test_visible_count_floors_robustly() -> None:
    assert visible_count(16, 0.75) == 4
    assert visible_count(10, 0.9) == 1
    assert visible_count(256, 0.75) == 64
    assert visible_count(10, 0.75) == 2


def test_mae_encoder_sees_only_the_visible_tokens_in_training() -> None:
    model = build("mae", torch.Generator().manual_seed(0))
    assert isinstance(model, MAE)
    lengths: list[int] = []
    hook = model.vit.blocks.register_forward_hook(lambda m, i, o: lengths.append(i[0].shape[1]))
    model(views(model))
    model.eval_encoder().features(views(model)[0])
    hook.remove()
    tokens = model.vit.num_patches
    assert tokens == 16 and model.num_visible == 4
    assert lengths == [1 + 4, 1 + tokens]


def test_mae_decoder_puts_mask_tokens_at_the_masked_positions() -> None:
    g = torch.Generator().manual_seed(3)
    model = build("mae", g)
    assert isinstance(model, MAE)
    replay = torch.Generator()
    replay.set_state(g.get_state())
    order = torch.rand((BATCH, model.vit.num_patches), generator=replay).argsort(dim=1)
    seen: list[torch.Tensor] = []
    hook = model.decoder_blocks.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    model(views(model))
    hook.remove()
    x = seen[0]  # (B, 1 + T, D): cls, then tokens in image order, position embedding added
    expected_mask = (model.mask_token + model.decoder_pos_embed)[0]
    for b in range(BATCH):
        masked = order[b, model.num_visible :]
        visible = order[b, : model.num_visible]
        torch.testing.assert_close(x[b, 1 + masked], expected_mask[1 + masked])
        assert not torch.allclose(x[b, 1 + visible], expected_mask[1 + visible])


def test_mae_training_loss_depends_on_the_mask_rng_but_eval_features_do_not() -> None:
    g = torch.Generator()
    model = build("mae", g)
    v = views(model)
    g.manual_seed(0)
    first = model(v).loss
    g.manual_seed(0)
    again = model(v).loss
    g.manual_seed(1)
    other = model(v).loss
    torch.testing.assert_close(first, again)
    assert not torch.allclose(first, other)
    encoder = model.eval_encoder()
    assert encoder is model.encoder
    model.train(False)
    with torch.no_grad():
        g.manual_seed(0)
        torch.manual_seed(0)
        f0 = encoder.features(v[0])
        g.manual_seed(1)
        torch.manual_seed(1)
        f1 = encoder.features(v[0])
        torch.testing.assert_close(f0, f1, rtol=0, atol=0)
        tokens = model.vit.tokens(v[0])
        torch.testing.assert_close(f0, model.vit.pool(model.vit.encode(tokens)))


def test_mae_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="mask_ratio"):
        MAEConfig(mask_ratio=1.0)
    with pytest.raises(ConfigError, match="decoder_heads"):
        MAEConfig(decoder_dim=10, decoder_heads=3)
    with pytest.raises(ConfigError, match="dim_proj"):
        SimSiamConfig(dim_proj=0)
    with pytest.raises(ConfigError, match="momentum"):
        BYOLConfig(momentum=1.5)
    with pytest.raises(ConfigError, match="num_views"):
        EMPSSLConfig(num_views=1)
