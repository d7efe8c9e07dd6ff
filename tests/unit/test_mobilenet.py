"""MobileNetV1 (spec ar1.md §2.1), split points (also ResNet-18's), pretrained loading."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import pytest
import torch
from torch import nn

from lifelong.backbones import BACKBONES, Backbone
from lifelong.backbones.mobilenet import SPLIT_POINTS, MobileNetConfig, MobileNetV1
from lifelong.backbones.resnet import ResNet18, ResNetConfig
from lifelong.backbones.split import SplitBackbone, freeze
from lifelong.errors import ConfigError, DataError
from lifelong.nn.batch_renorm import BatchRenorm2d

# spec §2.1 table at width 1 for a 128x128 input: (name, channels, side) per index
TABLE = [
    ("conv1", 32, 64),
    ("conv2_1/dw", 32, 64),
    ("conv2_1/sep", 64, 64),
    ("conv2_2/dw", 64, 32),
    ("conv2_2/sep", 128, 32),
    ("conv3_1/dw", 128, 32),
    ("conv3_1/sep", 128, 32),
    ("conv3_2/dw", 128, 16),
    ("conv3_2/sep", 256, 16),
    ("conv4_1/dw", 256, 16),
    ("conv4_1/sep", 256, 16),
    ("conv4_2/dw", 256, 8),
    ("conv4_2/sep", 512, 8),
    *[(f"conv5_{i}/{p}", 512, 8) for i in range(1, 6) for p in ("dw", "sep")],
    ("conv5_6/dw", 512, 4),
    ("conv5_6/sep", 1024, 4),
    ("conv6/dw", 1024, 4),
    ("conv6/sep", 1024, 4),
    ("pool6", 1024, 1),
]


def _mobilenet(width: float = 0.25, classes: int = 5, seed: int = 0, **kw: object) -> MobileNetV1:
    torch.manual_seed(seed)
    cfg = MobileNetConfig(width=width, **kw)  # type: ignore[arg-type]
    return MobileNetV1(cfg, (3, 128, 128), classes)


@functools.cache
def _split_case(name: str) -> tuple[Backbone, torch.Tensor]:
    """A small network of each split backbone and an input for it."""
    torch.manual_seed(0)
    net: Backbone
    if name == "mobilenet_v1":
        net = MobileNetV1(MobileNetConfig(width=0.25), (3, 64, 64), 5)
        x = torch.randn(2, 3, 64, 64)
    else:
        net = ResNet18(ResNetConfig(nf=8), (3, 32, 32), 5)
        x = torch.randn(2, 3, 32, 32)
    return net, x


def test_split_points_follow_the_caffe_names() -> None:
    net = _mobilenet()
    assert net.split_points == tuple(name for name, _, _ in TABLE)
    assert net.split_points.index("conv5_4/dw") == 19
    assert net.default_split == "conv5_4/dw"
    assert isinstance(net, SplitBackbone)
    assert isinstance(ResNet18(ResNetConfig(nf=4), (3, 8, 8), 2), SplitBackbone)
    assert not isinstance(nn.Linear(2, 2), SplitBackbone)


def test_shapes_at_every_split_point_for_128x128_at_width_0_25() -> None:
    net = _mobilenet().train(False)
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        for name, channels, side in TABLE:
            out = net.lower_part(name)(x)
            assert out.shape == (2, channels // 4, side, side), name
        assert net.features(x).shape == (2, 256)
    assert net.head.in_features == 256 and net.head.bias is None


def test_latent_layer_at_width_1_is_512x8x8() -> None:
    net = _mobilenet(width=1.0).train(False)
    with torch.no_grad():
        latent = net.lower_part("conv5_4/dw")(torch.randn(1, 3, 128, 128))
    assert latent.shape == (1, 512, 8, 8)
    assert net.head.in_features == 1024


@pytest.mark.parametrize(
    ("name", "split"),
    [("resnet18", s) for s in ("stem", "layer1", "layer2", "layer3", "layer4")]
    + [("mobilenet_v1", s) for s in ("conv1", "conv2_2/dw", "conv5_4/dw", "conv6/sep", "pool6")],
)
def test_head_of_upper_of_lower_equals_forward(name: str, split: str) -> None:
    net, x = _split_case(name)
    assert isinstance(net, SplitBackbone)
    net.train(False)
    lower, upper = net.lower_part(split), net.upper_part(split)
    with torch.no_grad():
        assert torch.equal(net.head(upper(lower(x))), net(x))
        assert torch.equal(upper(lower(x)), net.features(x))
    # the parts are views of the network's own modules: together with the head, every
    # parameter exactly once
    ids = [id(p) for part in (lower, upper, net.head) for p in part.parameters()]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in net.parameters()}


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v1"])
def test_unknown_split_lists_the_valid_names(name: str) -> None:
    net, _ = _split_case(name)
    assert isinstance(net, SplitBackbone)
    with pytest.raises(ConfigError, match=f"unknown split point 'nope'.*{net.default_split}"):
        net.lower_part("nope")
    with pytest.raises(ConfigError, match="unknown split point"):
        net.upper_part("conv5_4")


def test_frozen_lower_part_keeps_weights_and_statistics_while_upper_part_trains() -> None:
    net = _mobilenet(width=0.25, classes=4)
    split = "conv5_4/dw"
    lower, upper = net.lower_part(split), net.upper_part(split)
    freeze(lower)
    assert not any(p.requires_grad for p in lower.parameters())
    lower_before = {k: v.clone() for k, v in lower.state_dict().items()}
    upper_before = {k: v.clone() for k, v in upper.state_dict().items()}
    trainable = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.SGD(trainable, lr=0.1, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        net.train()
        lower.train(False)  # the caller's side of freezing: statistics stay put
        x = torch.randn(4, 3, 64, 64, generator=g) * 2 + 1
        loss = nn.functional.cross_entropy(net(x), torch.tensor([0, 1, 2, 3]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    for key, value in lower.state_dict().items():
        assert torch.equal(value, lower_before[key]), key
    after = upper.state_dict()
    for key in ("conv5_4_sep.conv.weight", "conv6_sep.norm.weight", "conv6_sep.norm.running_std"):
        assert not torch.equal(after[key], upper_before[key]), key
    # requires_grad alone does not stop the statistics: training mode would move them
    net.train()
    net(torch.randn(4, 3, 64, 64, generator=g) + 3)
    moved = lower.state_dict()["conv1.norm.running_mean"]
    assert not torch.equal(moved, lower_before["conv1.norm.running_mean"])


def _pytorchcv_state(width: float, classes: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Names and shapes of pytorchcv's mobilenet_w* (stages start at each stride-2 unit)."""
    g = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}

    def block(prefix: str, cin: int, cout: int, kernel: int, groups: int) -> None:
        fan_in = cin // groups * kernel * kernel
        shape = (cout, cin // groups, kernel, kernel)
        state[prefix + "conv.weight"] = torch.randn(shape, generator=g) * (2 / fan_in) ** 0.5
        state[prefix + "bn.weight"] = torch.rand(cout, generator=g) + 0.5
        state[prefix + "bn.bias"] = torch.randn(cout, generator=g) * 0.1
        state[prefix + "bn.running_mean"] = torch.randn(cout, generator=g) * 0.1
        state[prefix + "bn.running_var"] = torch.rand(cout, generator=g) + 1.0
        state[prefix + "bn.num_batches_tracked"] = torch.tensor(123)

    channels = [[64], [128, 128], [256, 256], [512] * 6, [1024, 1024]]
    cin = int(32 * width)
    block("features.init_block.", 3, cin, 3, 1)
    for s, stage in enumerate(channels, 1):
        for u, out in enumerate(stage, 1):
            block(f"features.stage{s}.unit{u}.dw_conv.", cin, cin, 3, cin)
            block(f"features.stage{s}.unit{u}.pw_conv.", cin, int(out * width), 1, 1)
            cin = int(out * width)
    state["output.weight"] = torch.randn(classes, cin, generator=g)
    state["output.bias"] = torch.randn(classes, generator=g)
    return state


def test_pretrained_pytorchcv_file_converts_batch_norm_into_batch_renorm(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = _pytorchcv_state(0.25, classes=1000)
    path = tmp_path / "mobilenet_wd4.pth"
    torch.save(state, path)
    initial_head = _mobilenet(classes=10).head.weight.detach().clone()
    with caplog.at_level(logging.INFO, logger="lifelong.backbones.mobilenet"):
        net = _mobilenet(classes=10, pretrained=str(path))
    assert "classifier skipped" in caplog.text
    torch.testing.assert_close(net.head.weight.detach(), initial_head)  # 1000 ≠ 10 classes
    layers = net.layers
    # stage 2 starts at the stride-2 unit conv2_2; stage 4 unit 4 is conv5_3
    conv = state["features.stage2.unit1.dw_conv.conv.weight"]
    assert torch.equal(layers.get_submodule("conv2_2_dw.conv").weight, conv)
    norm = layers.get_submodule("conv5_3_sep.norm")
    assert isinstance(norm, BatchRenorm2d)
    prefix = "features.stage4.unit4.pw_conv.bn."
    torch.testing.assert_close(norm.running_std, state[prefix + "running_var"].sqrt())
    assert torch.equal(norm.running_mean, state[prefix + "running_mean"])
    assert torch.equal(norm.weight.detach(), state[prefix + "weight"])
    assert torch.equal(norm.bias.detach(), state[prefix + "bias"])
    first = layers.get_submodule("conv1.norm")
    assert isinstance(first, BatchRenorm2d)
    torch.testing.assert_close(
        first.running_std, state["features.init_block.bn.running_var"].sqrt()
    )
    # end to end: the renorm network in evaluation equals a batch-norm one loaded from the file
    # (up to batch norm's ε inside the square root)
    bn_net = _mobilenet(classes=10, batch_renorm=False, pretrained=str(path))
    bn_net.head.load_state_dict(net.head.state_dict())
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        out, expected = net.train(False)(x), bn_net.train(False)(x)
    torch.testing.assert_close(out, expected, rtol=1e-3, atol=1e-4)


def test_pretrained_classifier_is_loaded_when_the_class_count_matches(tmp_path: Path) -> None:
    state = _pytorchcv_state(0.25, classes=6)
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "wrapped.pth")
    net = _mobilenet(classes=6, pretrained=str(tmp_path / "wrapped.pth"))
    assert torch.equal(net.head.weight.detach(), state["output.weight"])


def test_own_checkpoint_round_trips_through_pretrained(tmp_path: Path) -> None:
    net = _mobilenet(seed=3).train()
    net(torch.randn(4, 3, 64, 64))  # move the statistics and the caps
    torch.save(net.state_dict(), tmp_path / "ours.pt")
    again = _mobilenet(seed=4, pretrained=str(tmp_path / "ours.pt"))
    for key, value in net.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key


def test_a_lifelong_run_checkpoint_loads_its_backbone(tmp_path: Path) -> None:
    net = _mobilenet(seed=5).train()
    net(torch.randn(4, 3, 64, 64))
    method_state = {f"net.{k}": v for k, v in net.state_dict().items()}
    method_state["memory.x"] = torch.zeros(2, 3)  # the method's other state is ignored
    torch.save({"format": 1, "method": method_state, "rng": {}}, tmp_path / "checkpoint.pt")
    again = _mobilenet(seed=6, pretrained=str(tmp_path / "checkpoint.pt"))
    for key, value in net.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key


def test_missing_or_bad_pretrained_files_are_data_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(DataError, match=r"nowhere\.pth does not exist") as info:
        _mobilenet(pretrained=str(missing))
    assert "\n" not in str(info.value)
    garbage = tmp_path / "garbage.pth"
    garbage.write_text("not a checkpoint\n" * 10)
    with pytest.raises(DataError, match="cannot read pretrained weights") as info:
        _mobilenet(pretrained=str(garbage))
    assert "\n" not in str(info.value)
    wide = tmp_path / "wide.pth"
    torch.save(_pytorchcv_state(0.5, classes=5), wide)
    with pytest.raises(DataError, match="has shape"):
        _mobilenet(width=0.25, pretrained=str(wide))
    partial = _pytorchcv_state(0.25, classes=5)
    del partial["features.stage3.unit2.pw_conv.bn.running_var"]
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(DataError, match=r"lack layers\.conv4_1_sep\.norm\.running_std"):
        _mobilenet(pretrained=str(tmp_path / "partial.pth"))
    other = {
        **_pytorchcv_state(0.25, classes=5),
        "features.stage9.unit1.conv.weight": torch.ones(1),
    }
    torch.save(other, tmp_path / "other.pth")
    with pytest.raises(DataError, match="unknown entries"):
        _mobilenet(pretrained=str(tmp_path / "other.pth"))


def test_registered_with_a_validated_config() -> None:
    spec = BACKBONES.get("mobilenet_v1")
    assert spec.config_cls is MobileNetConfig
    net = spec.build(MobileNetConfig(width=0.5, batch_renorm=False), (1, 32, 32), 3)
    assert isinstance(net, MobileNetV1)
    assert net.feature_dim == 512
    assert not any(isinstance(m, BatchRenorm2d) for m in net.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == len(SPLIT_POINTS) - 1
    with pytest.raises(ConfigError, match=r"backbone\.width"):
        MobileNetConfig(width=0.0)
    small = MobileNetV1(MobileNetConfig(width=0.05), (3, 32, 32), 2)
    assert small.layers.get_submodule("conv1.conv").out_channels == 8  # at least 8 channels
