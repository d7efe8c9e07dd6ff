"""k-winners-take-all and the sparse backbones built on it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lifelong.components  # noqa: F401
from lifelong.backbones import BACKBONES
from lifelong.backbones.sparse import SparseMLPConfig, SparseResNetConfig
from lifelong.errors import ConfigError
from lifelong.nn.k_winners import KWinners, k_winners, winners_count


def test_keeps_the_k_largest_units() -> None:
    x = torch.tensor([[3.0, -1.0, 2.0, 5.0]])
    assert torch.equal(k_winners(x, 2), torch.tensor([[3.0, 0.0, 0.0, 5.0]]))


def test_competition_is_per_spatial_location() -> None:
    # (B=1, C=3, H=1, W=2): location 0 has channels [1, 2, 3], location 1 has [3, 1, 2]
    x = torch.tensor([[[[1.0, 3.0]], [[2.0, 1.0]], [[3.0, 2.0]]]])
    out = k_winners(x, 1)
    expected = torch.tensor([[[[0.0, 3.0]], [[0.0, 0.0]], [[3.0, 0.0]]]])
    assert torch.equal(out, expected)


def test_threshold_is_clamped_at_zero_like_a_relu() -> None:
    x = torch.tensor([[-3.0, -1.0, -2.0, 4.0]])
    assert torch.equal(k_winners(x, 3), torch.tensor([[0.0, 0.0, 0.0, 4.0]]))


def test_ties_with_the_kth_value_stay_on_as_in_the_reference() -> None:
    x = torch.tensor([[2.0, 2.0, 1.0]])
    assert torch.equal(k_winners(x, 1), torch.tensor([[2.0, 2.0, 0.0]]))


def test_exactly_k_winners_per_location_for_continuous_inputs() -> None:
    x = torch.rand(4, 16, 5, 5, generator=torch.Generator().manual_seed(0)) + 0.1
    out = k_winners(x, 6)
    assert torch.all((out != 0).sum(dim=1) == 6)


def test_gradient_reaches_winners_only() -> None:
    x = torch.tensor([[3.0, -1.0, 2.0, 5.0]], requires_grad=True)
    k_winners(x, 2).sum().backward()
    assert x.grad is not None
    assert torch.equal(x.grad, torch.tensor([[1.0, 0.0, 0.0, 1.0]]))


def test_module_rounds_the_fraction_kept_on() -> None:
    assert KWinners(64, 0.8).k == 51 == winners_count(64, 0.8)
    with pytest.raises(ConfigError):
        KWinners(64, 0.0)


def _stage_sparsity(net: nn.Module, x: torch.Tensor) -> dict[int, float]:
    """Largest fraction of channels on at any location, per stage, over k-WTA outputs."""
    seen: dict[int, float] = {}
    hooks = []
    for stage_index, stage in enumerate(net.stages):  # type: ignore[union-attr]
        for module in stage.modules():
            if isinstance(module, KWinners):

                def hook(
                    _m: nn.Module, _i: object, out: torch.Tensor, s: int = stage_index
                ) -> None:
                    fraction = float((out != 0).float().mean(dim=1).max())
                    seen[s] = max(seen.get(s, 0.0), fraction)

                hooks.append(module.register_forward_hook(hook))
    net(x)
    for h in hooks:
        h.remove()
    return seen


def test_sparse_resnet_honours_kw_of_every_stage() -> None:
    cfg = SparseResNetConfig(nf=8, kw=(0.5, 0.75, 0.25, 1.0))
    net = BACKBONES.get("sparse_resnet18").build(cfg, (3, 16, 16), 10)
    net.eval()
    seen = _stage_sparsity(net, torch.randn(2, 3, 16, 16))
    assert set(seen) == {0, 1, 2, 3}
    for stage, fraction in seen.items():
        assert fraction <= cfg.kw[stage] + 1e-6
    assert seen[2] < seen[1]


def test_apply_kw_switches_each_stage_not_only_the_first() -> None:
    cfg = SparseResNetConfig(nf=8, apply_kw=(False, True, False, True))
    net = BACKBONES.get("sparse_resnet18").build(cfg, (3, 16, 16), 10)
    kinds = [
        {type(m) for m in stage.modules() if isinstance(m, KWinners | nn.ReLU)}
        for stage in net.stages  # type: ignore[union-attr]
    ]
    assert kinds == [{nn.ReLU}, {KWinners}, {nn.ReLU}, {KWinners}]


def test_sparse_mlp_hidden_layers_keep_k_units() -> None:
    cfg = SparseMLPConfig(hidden=(20, 10), kw=(0.5, 0.3))
    net = BACKBONES.get("sparse_mlp").build(cfg, (1, 8, 8), 10)
    features = net.features(torch.rand(5, 1, 8, 8) + 0.5)
    assert torch.all((features != 0).sum(dim=1) <= 3)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (SparseMLPConfig, {"hidden": (10, 10), "kw": (0.5,)}),
        (SparseMLPConfig, {"kw": (0.5, 1.5)}),
        (SparseResNetConfig, {"kw": (0.9, 0.9)}),
        (SparseResNetConfig, {"apply_kw": (True,)}),
    ],
)
def test_invalid_sparsity_settings_name_the_field(cls: type, kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="backbone"):
        cls(**kwargs)
