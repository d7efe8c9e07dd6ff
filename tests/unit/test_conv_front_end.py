"""The pre-trained, frozen conv front end shared by BI-R's comparison (``conv_mlp``, ``gr``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from lifelong.backbones.conv_encoder import ConvEncoder, ConvEncoderConfig
from lifelong.backbones.conv_mlp import ConvMLP, ConvMLPConfig
from lifelong.backbones.mlp import MLP, MLPConfig
from lifelong.data.stream import Experience
from lifelong.data.tensors import ImageSet
from lifelong.data.transforms import ImageTransform
from lifelong.errors import ConfigError, DataError
from lifelong.generative.internal_replay import InternalReplayNet
from lifelong.methods.base import MethodContext
from lifelong.methods.gr import GR, GRConfig
from lifelong.types import Batch

SHAPE = (3, 8, 8)
CLASSES = 4


def conv_file(tmp_path: Path, seed: int = 5) -> tuple[str, ConvEncoder]:
    torch.manual_seed(seed)
    conv = ConvEncoder(ConvEncoderConfig(depth=2, channels=4), 3)
    with torch.no_grad():  # batch-norm statistics that differ from a fresh layer's
        for module in conv.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
    conv.save_pretrained(tmp_path / "conv.pt")
    return str(tmp_path / "conv.pt"), conv


def images(n: int, seed: int) -> torch.Tensor:
    return torch.randn((n, *SHAPE), generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------ conv_mlp backbone


def test_conv_mlp_loads_and_freezes_the_pretrained_conv_layers(tmp_path: Path) -> None:
    path, conv = conv_file(tmp_path)
    net = ConvMLP(ConvMLPConfig(2, 4, (16,), path, freeze_conv=True), SHAPE, CLASSES)
    for key, value in conv.state_dict().items():
        assert torch.equal(net.conv.state_dict()[key], value), key
    net.train()
    assert not net.conv.training and net.body.training
    loss = torch.nn.functional.cross_entropy(net(images(6, 1)), torch.arange(6) % CLASSES)
    loss.backward()
    assert all(p.grad is None for p in net.conv.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.body.parameters())
    for key, value in conv.state_dict().items():  # running statistics untouched in training
        assert torch.equal(net.conv.state_dict()[key], value), key
    # features = the MLP over the frozen layers' output, computed by hand
    conv.eval()
    x = images(3, 2)
    expected = net.body(conv(x))
    torch.testing.assert_close(net.features(x), expected)


def test_conv_mlp_trains_its_conv_layers_unless_frozen(tmp_path: Path) -> None:
    path, _ = conv_file(tmp_path)
    net = ConvMLP(ConvMLPConfig(2, 4, (16,), path), SHAPE, CLASSES)
    net.train()
    assert net.conv.training
    net(images(6, 1)).sum().backward()
    assert all(p.grad is not None for p in net.conv.parameters())


def test_conv_mlp_refuses_frozen_random_layers_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"freeze_conv needs backbone\.pretrained"):
        ConvMLPConfig(freeze_conv=True)
    path, _ = conv_file(tmp_path)
    with pytest.raises(DataError, match="does not hold conv layers of this shape"):
        ConvMLP(ConvMLPConfig(3, 4, (16,), path), SHAPE, CLASSES)
    with pytest.raises(DataError, match="no pre-trained conv layers"):
        ConvMLP(ConvMLPConfig(2, 4, (16,), str(tmp_path / "missing.pt")), SHAPE, CLASSES)


# ------------------------------------------------------------------------ GR behind the convs


def build_gr(**fields: Any) -> GR:
    generator = torch.Generator().manual_seed(0)
    transform = ImageTransform((0.5,) * 3, (0.25,) * 3)
    backbone = MLP(MLPConfig((4,)), SHAPE, CLASSES)  # unused: gr builds its own networks
    ctx = MethodContext(backbone, CLASSES, SHAPE, transform, torch.device("cpu"), generator)
    small = {"fc_units": 16, "h_dim": 16, "z_dim": 4, "batch_replay": 5, "lr": 0.01}
    return GR(GRConfig(**{**small, **fields}), ctx)


def experience(t: int) -> Experience:
    classes = (2 * t, 2 * t + 1)
    data = ImageSet(torch.zeros((2, *SHAPE), dtype=torch.uint8), torch.tensor(classes))
    return Experience(t, classes, data, data)


def step(method: GR, t: int) -> set[str]:
    y = torch.tensor([2 * t, 2 * t + 1] * 6)
    x = images(12, t)
    return set(method.observe(Batch(x, y, x, t)).terms)


def test_gr_behind_conv_layers_replays_features_that_skip_them(tmp_path: Path) -> None:
    path, conv = conv_file(tmp_path)
    method = build_gr(conv_depth=2, conv_channels=4, pretrained_conv=path)
    assert isinstance(method.net, InternalReplayNet)
    features = conv.out_features(SHAPE)
    assert method.vae.image_shape == (features, 1, 1)
    trained = {id(p) for group in method.optimizer.param_groups for p in group["params"]}
    assert not trained & {id(p) for p in method.net.conv.parameters()}
    seen_by_conv: list[int] = []
    method.net.conv.register_forward_hook(lambda _m, args, _o: seen_by_conv.append(len(args[0])))
    method.train()
    method.before_experience(experience(0))
    for _ in range(3):
        assert step(method, 0) == {"ce", "recon", "kl"}
    method.after_experience(experience(0))
    method.before_experience(experience(1))
    seen_by_conv.clear()
    assert step(method, 1) == {"ce", "recon", "kl", "replay_ce", "replay_recon", "replay_kl"}
    assert seen_by_conv == [12]  # the current batch only: the 5 replayed rows are features
    for key, value in conv.state_dict().items():
        assert torch.equal(method.net.conv.state_dict()[key], value), f"frozen conv {key} changed"
    samples, _ = method.previous_vae.sample(50, torch.tensor([0, 1]), torch.Generator())
    assert samples.shape == (50, features, 1, 1)
    assert float(samples.min()) < 0  # linear output: conv features, not sigmoid pixels
    assert method.generate(2, torch.Generator()) is None
    assert method.predict(images(4, 9)).shape == (4, CLASSES)


def test_gr_refuses_a_negative_conv_depth() -> None:
    with pytest.raises(ConfigError, match="conv_depth must be >= 0"):
        GRConfig(conv_depth=-1)
