"""The contract every registered backbone keeps, with its default config."""

from __future__ import annotations

import functools

import pytest
import torch

import lifelong.components  # noqa: F401  (fills the registries)
from lifelong.backbones import BACKBONES, Backbone
from lifelong.nn.joint_forward import forward_each

NUM_CLASSES = 7
SHAPES = [(1, 28, 28), (3, 32, 32)]

pytestmark = [
    pytest.mark.parametrize("name", BACKBONES.names()),
    pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s))),
]


def build(name: str, shape: tuple[int, int, int], seed: int = 0) -> Backbone:
    spec = BACKBONES.get(name)
    torch.manual_seed(seed)
    return spec.build(spec.config_cls(), shape, NUM_CLASSES)


@functools.cache
def built(name: str, shape: tuple[int, int, int]) -> Backbone:
    """One network per (backbone, shape) for the read-only checks (ResNet-18 is slow to build)."""
    return build(name, shape)


def _inputs(shape: tuple[int, int, int], batch: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, *shape, generator=torch.Generator().manual_seed(seed))


def test_forward_features_and_head(name: str, shape: tuple[int, int, int]) -> None:
    net = built(name, shape)
    net.eval()
    x = _inputs(shape, 3)
    with torch.no_grad():
        logits = net(x)
        features = net.features(x)
        assert logits.shape == (3, NUM_CLASSES)
        assert features.shape == (3, net.feature_dim)
        assert net.head.in_features == net.feature_dim
        assert net.head.out_features == NUM_CLASSES
        torch.testing.assert_close(net.head(features), logits)
    assert torch.isfinite(logits).all()
    # the output depends on the input (not a constant network)
    with torch.no_grad():
        assert not torch.allclose(net(_inputs(shape, 3, seed=2)), logits)


def test_gradients_reach_every_parameter(name: str, shape: tuple[int, int, int]) -> None:
    net = build(name, shape)
    net.train()
    x = _inputs(shape, 2)
    loss = torch.nn.functional.cross_entropy(net(x), torch.tensor([0, NUM_CLASSES - 1]))
    loss.backward()
    for key, param in net.named_parameters():
        assert param.grad is not None, f"{key} gets no gradient"
        assert torch.isfinite(param.grad).all(), key
        assert param.grad.abs().sum() > 0, f"{key} gets a zero gradient"


def test_same_seed_gives_same_initialisation(name: str, shape: tuple[int, int, int]) -> None:
    first = built(name, shape).state_dict()
    again = build(name, shape, seed=0).state_dict()
    assert first.keys() == again.keys()
    for key in first:
        assert torch.equal(first[key], again[key]), key
    other = build(name, shape, seed=1).state_dict()
    assert any(not torch.equal(first[k], other[k]) for k in first if first[k].is_floating_point())


def test_joint_forward_equals_one_pass_per_batch_in_training_mode(
    name: str, shape: tuple[int, int, int]
) -> None:
    """``forward_each`` merges batches only when every example's output is batch-independent."""
    first, second = build(name, shape), build(name, shape)
    first.train()
    second.train()
    a, b = _inputs(shape, 3, seed=3), _inputs(shape, 2, seed=4)
    torch.manual_seed(5)
    joint = forward_each(first, a, b)
    torch.manual_seed(5)
    separate = [second(a), second(b)]
    for got, expected in zip(joint, separate, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(first.state_dict(), second.state_dict())  # running statistics
