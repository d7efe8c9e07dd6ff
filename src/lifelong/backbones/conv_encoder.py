"""BI-R's convolutional encoder ("C3-5x16-bn"), its pre-training file format and loading.

Spec ``bir.md`` §2.1 and §2.7: five 3×3 convolutions (padding 1, with bias), each followed by
batch norm and ReLU; 16 channels doubled in each of the four stride-2 layers, so a 3×32×32 image
becomes 256×2×2 = 1,024 features. BI-R pre-trains it on CIFAR-10 (``lifelong pretrain``), then
freezes it and replays in its feature space ("internal replay").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lifelong.checkpoint import save_checkpoint
from lifelong.errors import ConfigError, DataError


@dataclass(frozen=True)
class ConvEncoderConfig:
    """Shape of the convolutional encoder (defaults: the BI-R paper's C3-5x16-bn)."""

    depth: int = 5
    """Convolutional layers; all but the first halve the resolution."""
    channels: int = 16
    """Channels of the first layer, doubled in each later layer."""
    batch_norm: bool = True
    """Batch norm after each convolution."""

    def __post_init__(self) -> None:
        if self.depth <= 0 or self.channels <= 0:
            raise ConfigError("conv encoder depth and channels must be positive")


class ConvEncoder(nn.Module):
    """Conv → BN → ReLU blocks; the output is flattened to one feature vector per image.

    Args:
        cfg: Layer counts and widths.
        in_channels: Channels of the input images.
    """

    def __init__(self, cfg: ConvEncoderConfig, in_channels: int) -> None:
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        channels_in = in_channels
        for index in range(cfg.depth):
            channels_out = cfg.channels * 2**index
            layers.append(nn.Conv2d(channels_in, channels_out, 3, 2 if index else 1, 1))
            if cfg.batch_norm:
                layers.append(nn.BatchNorm2d(channels_out))
            layers.append(nn.ReLU())
            channels_in = channels_out
        self.layers = nn.Sequential(*layers)
        self.out_channels = channels_in

    def out_features(self, image_shape: tuple[int, int, int]) -> int:
        """Length of the feature vector for (C, H, W) inputs."""
        _, height, width = image_shape
        for _ in range(self.cfg.depth - 1):
            height, width = (height + 1) // 2, (width + 1) // 2
        return self.out_channels * height * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features (B, out_features) of normalised images (B, C, H, W)."""
        out: torch.Tensor = self.layers(x).flatten(1)
        return out

    def save_pretrained(self, path: Path) -> None:
        """Write ``{"state": state_dict, "config": ...}`` (the BI-R layout plus our config)."""
        config = {"depth": self.cfg.depth, "channels": self.cfg.channels}
        config["batch_norm"] = int(self.cfg.batch_norm)
        state = {name: value.detach().cpu() for name, value in self.state_dict().items()}
        save_checkpoint(path, {"state": state, "config": config})

    def load_pretrained(self, path: Path) -> None:
        """Load weights written by :meth:`save_pretrained` (``torch.load(weights_only=True)``).

        Raises:
            DataError: naming the file, when it is missing, unreadable or of another shape.
        """
        if not path.exists():
            raise DataError(
                f"no pre-trained conv layers at {path}: create them with `lifelong pretrain "
                "--dataset seq-cifar10 --data-root DIR --out FILE` or point to an existing file"
            )
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            self.load_state_dict(payload["state"])
        except Exception as err:  # torch.load raises many types on a bad file
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise DataError(
                f"{path} does not hold conv layers of this shape ({first}); check depth and "
                "channels, or pre-train again with `lifelong pretrain`"
            ) from err
