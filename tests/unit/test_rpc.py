"""RPC: the regular simplex, the fixed head after a step, logits on a hand-made case."""

from __future__ import annotations

import math

import pytest
import torch

import lifelong.components  # noqa: F401  (fills the registries)
from lifelong.backbones import BACKBONES
from lifelong.backbones.mlp import MLPConfig
from lifelong.data.transforms import ImageTransform
from lifelong.errors import ConfigError
from lifelong.methods.base import METHODS, MethodContext
from lifelong.nn.polytope import PolytopeHead, simplex_vertices
from lifelong.types import Batch


@pytest.mark.parametrize("num_classes", [2, 3, 10, 100])
def test_simplex_vertices_are_unit_equiangular_and_centred(num_classes: int) -> None:
    v = simplex_vertices(num_classes).double()
    d = num_classes - 1
    assert v.shape == (d, num_classes)
    gram = v.T @ v
    expected = torch.full((num_classes, num_classes), -1.0 / d, dtype=torch.float64)
    expected.fill_diagonal_(1.0)
    assert torch.allclose(gram, expected, atol=1e-6)
    assert torch.allclose(v.sum(dim=1), torch.zeros(d, dtype=torch.float64), atol=1e-6)


def test_three_class_simplex_is_an_equilateral_triangle() -> None:
    v = simplex_vertices(3)
    sides = [float((v[:, i] - v[:, j]).norm()) for i, j in ((0, 1), (1, 2), (0, 2))]
    assert all(math.isclose(s, math.sqrt(3), rel_tol=1e-6) for s in sides)  # unit circumradius


def test_polytope_head_logits_are_projection_times_vertices_by_hand() -> None:
    head = PolytopeHead(2, 3)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        head.bias.copy_(torch.tensor([0.5, -1.0]))
    features = torch.tensor([[1.0, 1.0]])
    z = [1.0 * 1 + 0.0 * 1 + 0.5, 0.0 * 1 + 2.0 * 1 - 1.0]  # W f + b = (1.5, 1.0)
    v = simplex_vertices(3).tolist()
    by_hand = [z[0] * v[0][k] + z[1] * v[1][k] for k in range(3)]
    assert torch.allclose(head(features), torch.tensor([by_hand]), atol=1e-6)
    assert [name for name, _ in head.named_parameters()] == ["weight", "bias"]


def build_rpc(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    backbone = BACKBONES.get("mlp").build(MLPConfig(hidden=(8,)), (1, 2, 2), 4)
    ctx = MethodContext(
        backbone, 4, (1, 2, 2), ImageTransform((0.0,), (1.0,)), torch.device("cpu"), generator
    )
    entry = METHODS.get("rpc")
    return entry.build(entry.make_config({"lr": 0.5, "buffer_size": 8, "minibatch_size": 4}), ctx)


def test_rpc_head_is_fixed_after_training_steps_and_logits_use_it() -> None:
    method = build_rpc()
    head = method.net.head
    assert isinstance(head, PolytopeHead)
    vertices = head.vertices.clone()
    projection = head.weight.detach().clone()
    assert all(p is not head.vertices for g in method.optimizer.param_groups for p in g["params"])
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        x = torch.rand(6, 1, 2, 2, generator=g)
        method.observe(Batch(x, torch.tensor([0, 1, 0, 1, 0, 1]), x, 0))
    assert torch.equal(head.vertices, vertices)
    assert torch.equal(head.vertices, simplex_vertices(4))
    assert not torch.equal(head.weight, projection)  # the projection is trained
    x = torch.rand(5, 1, 2, 2, generator=g)
    with torch.no_grad():
        z = head.weight @ method.net.features(x).T + head.bias[:, None]
        assert torch.allclose(method.predict(x), z.T @ vertices, atol=1e-6)


def test_rpc_checkpoint_holds_the_vertices() -> None:
    method = build_rpc()
    assert "net.head.vertices" in method.state_dict()


def test_rpc_bad_config_is_refused() -> None:
    with pytest.raises(ConfigError, match="buffer_size"):
        METHODS.get("rpc").make_config({"buffer_size": 0})
