"""ResNet-9 and the wide / slim ResNet-9 and ResNet-18 encoders of continual SSL."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lifelong.backbones.resnet9  # noqa: F401  (registers the encoders)
from lifelong.backbones import BACKBONES, Backbone
from lifelong.backbones.resnet9 import ResNet9, ResNet9Config
from lifelong.errors import ConfigError

FEATURE_DIMS = {
    "resnet9": 512,
    "wide_resnet9": 1024,
    "slim_resnet9": 160,
    "wide_resnet18": 1024,
    "slim_resnet18": 160,
}
NUM_CLASSES = 5


def _build(name: str, shape: tuple[int, int, int]) -> Backbone:
    spec = BACKBONES.get(name)
    torch.manual_seed(0)
    return spec.build(spec.config_cls(), shape, NUM_CLASSES)


def _inputs(shape: tuple[int, int, int], batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, *shape, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("name", sorted(FEATURE_DIMS))
def test_feature_and_logit_shapes(name: str, size: int) -> None:
    net = _build(name, (3, size, size))
    net.train(False)
    x = _inputs((3, size, size))
    with torch.no_grad():
        features = net.features(x)
        logits = net(x)
    assert net.feature_dim == FEATURE_DIMS[name]
    assert features.shape == (2, FEATURE_DIMS[name])
    assert logits.shape == (2, NUM_CLASSES)
    assert torch.isfinite(logits).all()
    assert not torch.allclose(features[0], features[1])  # depends on the input


@pytest.mark.parametrize("name", sorted(FEATURE_DIMS))
def test_gradients_reach_every_parameter(name: str) -> None:
    net = _build(name, (3, 32, 32))
    net.train()
    loss = nn.functional.cross_entropy(net(_inputs((3, 32, 32))), torch.tensor([0, 3]))
    loss.backward()
    for key, param in net.named_parameters():
        assert param.grad is not None, key
        assert param.grad.abs().sum() > 0, f"{key} gets a zero gradient"


def _body_parameters(net: Backbone) -> int:
    return sum(p.numel() for n, p in net.named_parameters() if not n.startswith("head."))


def test_parameter_counts_match_the_layer_sizes() -> None:
    """Convs 3·nf·9 + nf·2nf·9 + 2·(2nf)²·9 + 2nf·4nf·9 + 4nf·8nf·9 + 2·(8nf)²·9, plus the
    BatchNorm scales and shifts 2·(nf + 2nf·3 + 4nf + 8nf·3) = 70 nf, plus 35 nf conv biases.
    nf = 64: 6,563,520 + 4,480 (+ 2,240 biases = 6,570,240, the spec's 6.57M); nf = 20:
    641,340 + 1,400 (0.64M); nf = 128: 26,250,624 + 8,960 (about 26M)."""
    assert _body_parameters(_build("resnet9", (3, 32, 32))) == 6_568_000
    assert _body_parameters(_build("slim_resnet9", (3, 32, 32))) == 642_740
    assert _body_parameters(_build("wide_resnet9", (3, 32, 32))) == 26_259_584
    biased = ResNet9(ResNet9Config(conv_bias=True), (3, 32, 32), NUM_CLASSES)
    assert _body_parameters(biased) == 6_570_240


def test_resnet18_presets_only_change_the_width() -> None:
    slim = _build("slim_resnet18", (3, 32, 32))
    first_conv = next(m for m in slim.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.out_channels == 20
    assert type(slim) is type(_build("resnet18", (3, 32, 32)))


def test_too_small_images_and_bad_width_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="8x8"):
        ResNet9(ResNet9Config(), (3, 4, 4), NUM_CLASSES)
    with pytest.raises(ConfigError, match=r"backbone\.nf"):
        ResNet9Config(nf=0)
