"""BI-R's conv encoder: shape, pre-trained file round trip, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lifelong.backbones.conv_encoder import ConvEncoder, ConvEncoderConfig
from lifelong.errors import DataError


def test_c3_5x16_bn_maps_cifar_images_to_1024_features() -> None:
    encoder = ConvEncoder(ConvEncoderConfig(), 3)
    assert encoder.out_features((3, 32, 32)) == 1024
    assert encoder(torch.rand(2, 3, 32, 32)).shape == (2, 1024)
    convs = [m for m in encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 128, 256]
    assert [c.stride for c in convs] == [(1, 1)] + [(2, 2)] * 4
    assert all(c.bias is not None for c in convs)
    odd = ConvEncoder(ConvEncoderConfig(depth=3, channels=4), 1)
    assert odd(torch.rand(1, 1, 28, 28)).shape[1] == odd.out_features((1, 28, 28)) == 16 * 7 * 7


def test_pretrained_round_trip_and_errors(tmp_path: Path) -> None:
    torch.manual_seed(0)
    trained = ConvEncoder(ConvEncoderConfig(depth=2, channels=4), 3)
    with torch.no_grad():
        trained(torch.rand(4, 3, 8, 8) * 3)  # moves the BN statistics too
    path = tmp_path / "conv.pt"
    trained.save_pretrained(path)
    fresh = ConvEncoder(ConvEncoderConfig(depth=2, channels=4), 3)
    fresh.load_pretrained(path)
    for (name, a), b in zip(trained.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    with pytest.raises(DataError, match="lifelong pretrain"):
        fresh.load_pretrained(tmp_path / "missing.pt")
    with pytest.raises(DataError, match="does not hold conv layers of this shape"):
        ConvEncoder(ConvEncoderConfig(depth=2, channels=8), 3).load_pretrained(path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match=str(path.name)):
        fresh.load_pretrained(path)
