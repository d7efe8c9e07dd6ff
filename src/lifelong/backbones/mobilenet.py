"""MobileNetV1 (Howard et al., 2017) with batch renorm and split points for latent replay.

The network of spec ``ar1.md`` §2.1 (Pellegrini et al., *Latent Replay for Real-Time Continual
Learning*, IROS 2020; ar1-pytorch's port of pytorchcv ``mobilenet_w1``): a 3x3 stride-2 conv, 13
depthwise-separable units (a depthwise and a pointwise conv-norm-ReLU block each), global average
pooling and a bias-free linear head (the CWR* layer). Every layer is a split point, named as in the
Caffe original (``conv1``, ``conv2_1/dw``, ``conv2_1/sep``, ..., ``conv6/sep``, ``pool6``); the
default latent layer is ``conv5_4/dw`` (index 19).

Differences from the reference: the final pooling is adaptive (128x128 inputs give the reference's
4x4 average pool; other sizes work too), and the head has no bias from the start instead of
replacing the ImageNet classifier after loading.
"""

from __future__ import annotations

import logging
import math
import pickle
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from lifelong.backbones import BACKBONES, Backbone, BackboneSpec
from lifelong.backbones.imagenet_weights import IMAGENET, imagenet_mobilenet
from lifelong.backbones.split import cut
from lifelong.errors import ConfigError, DataError
from lifelong.nn.batch_renorm import BatchRenorm2d, WarmStartBatchNorm2d

log = logging.getLogger(__name__)

UNITS: tuple[tuple[str, int, int], ...] = (
    ("conv2_1", 64, 1),
    ("conv2_2", 128, 2),
    ("conv3_1", 128, 1),
    ("conv3_2", 256, 2),
    ("conv4_1", 256, 1),
    ("conv4_2", 512, 2),
    ("conv5_1", 512, 1),
    ("conv5_2", 512, 1),
    ("conv5_3", 512, 1),
    ("conv5_4", 512, 1),
    ("conv5_5", 512, 1),
    ("conv5_6", 1024, 2),
    ("conv6", 1024, 1),
)
"""The depthwise-separable units: Caffe name, output channels at width 1, depthwise stride."""

SPLIT_POINTS: tuple[str, ...] = (
    "conv1",
    *(f"{name}/{part}" for name, _, _ in UNITS for part in ("dw", "sep")),
    "pool6",
)
"""Every layer in forward order, by its Caffe name."""

_SCHEDULE_LEAVES = frozenset(
    {
        "r_max",
        "d_max",
        "max_r_max",
        "max_d_max",
        "inc_step",
        "momentum",
        "stats_weight",
        "num_batches_tracked",
    }
)
"""Norm-layer buffers a weights file may lack or carry for the other norm type."""


@dataclass(frozen=True)
class MobileNetConfig:
    """Configuration of :class:`MobileNetV1`."""

    width: float = 1.0
    """Width multiplier: every layer has round(width * C) channels, at least 8."""
    batch_renorm: bool = True
    """Norm layers are BatchRenorm2d (True, as AR1*) or batch norm (False; WarmStartBatchNorm2d)."""
    pretrained: str | None = None
    """Weights file (pytorchcv or ours), ``imagenet`` (pytorchcv's, fetched once), None: random."""
    norm_momentum: float = 0.01
    """Momentum of the norm layers' running statistics (ar1-pytorch: 0.01; 0.1 for scratch)."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.width) and self.width > 0):
            raise ConfigError(f"backbone.width must be a positive number, got {self.width}")
        if not 0.0 < self.norm_momentum <= 1.0:
            raise ConfigError(f"backbone.norm_momentum must be in (0, 1], got {self.norm_momentum}")
        if self.pretrained is not None and not self.pretrained.strip():
            raise ConfigError("backbone.pretrained must be a file path or null, got ''")


class ConvBlock(nn.Module):
    """Conv (no bias) → batch renorm or batch norm → ReLU.

    Both norms warm their running statistics up from the first batch (bias-corrected rate, see
    :class:`BatchRenorm2d`); ``nn.BatchNorm2d``'s plain EMA would keep mean 0 / variance 1
    placeholders for evaluation under short schedules.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        groups: int,
        batch_renorm: bool,
        momentum: float = 0.01,
    ) -> None:
        super().__init__()
        padding = kernel_size // 2
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False
        )
        self.norm: nn.Module = (
            BatchRenorm2d(out_channels, momentum=momentum)
            if batch_renorm
            else WarmStartBatchNorm2d(out_channels, momentum=momentum)
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply conv → norm → ReLU."""
        out: torch.Tensor = self.act(self.norm(self.conv(x)))
        return out


class MobileNetV1(Backbone):
    """MobileNetV1 cut into named layers; see the module docstring.

    Weights are drawn from the global RNG (as in the other backbones): convs He-normal as in
    pytorchcv (depthwise over fan-in, the others over fan-out; PyTorch's default shrinks the
    signal over 27 layers to ~1e-13 at initialisation), norms γ = 1, β = 0, the head PyTorch's
    default. Then ``cfg.pretrained`` is loaded when given (:func:`load_pretrained`).
    """

    split_points: tuple[str, ...] = SPLIT_POINTS
    default_split: str = "conv5_4/dw"

    def __init__(
        self, cfg: MobileNetConfig, image_shape: tuple[int, int, int], num_classes: int
    ) -> None:
        super().__init__()

        def channels(c: int) -> int:
            return max(8, round(c * cfg.width))

        brn, m = cfg.batch_renorm, cfg.norm_momentum
        in_ch = channels(32)
        layers: list[tuple[str, nn.Module]] = [
            ("conv1", ConvBlock(image_shape[0], in_ch, 3, 2, 1, brn, m))
        ]
        for name, out, stride in UNITS:
            out_ch = channels(out)
            layers.append((f"{name}_dw", ConvBlock(in_ch, in_ch, 3, stride, in_ch, brn, m)))
            layers.append((f"{name}_sep", ConvBlock(in_ch, out_ch, 1, 1, 1, brn, m)))
            in_ch = out_ch
        layers.append(("pool6", nn.AdaptiveAvgPool2d(1)))
        self.layers = nn.Sequential(OrderedDict(layers))
        self.in_channels = image_shape[0]
        self.feature_dim = in_ch
        self.pretrained = cfg.pretrained  # AR1* warns when frozen lower layers are random
        self.head = nn.Linear(in_ch, num_classes, bias=False)
        for key, module in self.layers.named_modules():
            if isinstance(module, nn.Conv2d):  # pytorchcv's scheme: He-normal, keeps the scale
                depthwise = key.endswith("_dw.conv")
                fan: Literal["fan_in", "fan_out"] = "fan_in" if depthwise else "fan_out"
                nn.init.kaiming_normal_(module.weight, mode=fan, nonlinearity="relu")
        if cfg.pretrained == IMAGENET:
            load_pretrained(self, imagenet_mobilenet(cfg.width))
        elif cfg.pretrained is not None:
            load_pretrained(self, cfg.pretrained)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally pooled output of ``conv6/sep``, shape (B, 1024 * width)."""
        out: torch.Tensor = self.layers(x)
        return out.flatten(1)

    def lower_part(self, split: str) -> nn.Sequential:
        """Input → output of layer ``split`` (its norm and ReLU included)."""
        return self._cut(split)[0]

    def upper_part(self, split: str) -> nn.Sequential:
        """Output of layer ``split`` → pooled, flattened features (the head's input)."""
        return self._cut(split)[1]

    def _cut(self, split: str) -> tuple[nn.Sequential, nn.Sequential]:
        layers = list(self.layers.named_children())
        return cut(layers, SPLIT_POINTS, split, [("flatten", nn.Flatten())])


def pytorchcv_prefixes() -> dict[str, str]:
    """Map pytorchcv ``mobilenet_w*`` module prefixes to ours.

    pytorchcv groups the 13 units in stages that start at each stride-2 unit:
    ``features.init_block`` is ``conv1``, ``features.stage1.unit1`` is ``conv2_1``,
    ``features.stage2.unit1`` is ``conv2_2``, ..., ``features.stage5.unit2`` is ``conv6``; each
    unit has a ``dw_conv`` and a ``pw_conv`` block with ``conv`` and ``bn`` children.
    """
    prefixes = {"features.init_block.": "layers.conv1."}
    stage, unit = 1, 0
    for i, (name, _, stride) in enumerate(UNITS):
        stage, unit = (stage + 1, 1) if stride == 2 and i > 0 else (stage, unit + 1)
        base = f"features.stage{stage}.unit{unit}."
        prefixes[base + "dw_conv."] = f"layers.{name}_dw."
        prefixes[base + "pw_conv."] = f"layers.{name}_sep."
    return prefixes


def _our_name(key: str, prefixes: Mapping[str, str]) -> str:
    """Our state-dict name for ``key`` (pytorchcv names translated, ours kept)."""
    key = key.removeprefix("module.")
    if key.startswith("output."):
        return "head." + key.removeprefix("output.")
    for theirs, ours in prefixes.items():
        if key.startswith(theirs):
            rest = key.removeprefix(theirs)
            return ours + ("norm." + rest.removeprefix("bn.") if rest.startswith("bn.") else rest)
    return key


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    """The tensors saved at ``path``, as a plain dict or under ``"state_dict"``."""
    fix = "point backbone.pretrained at a MobileNetV1 state dict saved with torch.save"
    if not path.is_file():
        raise DataError(f"pretrained weights file {path} does not exist or is no file; {fix}")
    try:
        payload: Any = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise DataError(f"cannot read pretrained weights {path} ({reason}); {fix}") from None
    if isinstance(payload, dict) and isinstance(payload.get("state_dict"), dict):
        payload = payload["state_dict"]
    elif isinstance(payload, dict) and isinstance(payload.get("method"), dict):
        # a lifelong run's checkpoint.pt: the backbone is the method's ``net``
        net = {
            k.removeprefix("net."): v for k, v in payload["method"].items() if k.startswith("net.")
        }
        payload = net or payload
    if not isinstance(payload, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in payload.items()
    ):
        raise DataError(f"pretrained weights {path} hold no state dict of tensors; {fix}")
    return payload


def load_pretrained(model: MobileNetV1, path: str | Path) -> None:
    """Load weights saved by pytorchcv (``mobilenet_w1`` etc.) or by this library into ``model``.

    The file is a state dict (plain or under ``"state_dict"``), or a lifelong run's
    ``checkpoint.pt``, whose method's ``net`` is the backbone: pre-train with ``lifelong run``
    (e.g. ``joint`` on classes held out with ``dataset.classes``) and point here.

    Batch-norm weights go into batch renorm as γ = weight, β = bias, μ = running_mean,
    σ = sqrt(running_var) (and back, σ², into a batch-norm model). The head is loaded only when
    its class count matches (otherwise it keeps its initialisation, logged); pytorchcv's
    classifier bias is dropped (our head has none). The batch-renorm schedule buffers keep their
    values unless the file holds them; statistics from a file without the batch-renorm weight
    behind them (``stats_weight``, e.g. pytorchcv's) count as estimated (see
    :meth:`BatchRenorm2d.mark_estimated`).

    Raises:
        DataError: if the file is missing or unreadable, or its names or shapes do not fit.
    """
    path = Path(path).expanduser()
    prefixes = pytorchcv_prefixes()
    target = model.state_dict()
    fix = (
        f"use MobileNetV1 weights with {model.in_channels} input channels and "
        f"{model.feature_dim} features (backbone.width {model.feature_dim / 1024:g})"
    )
    loaded: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    for key, value in _read_state(path).items():
        name = _our_name(key, prefixes)
        stem, _, leaf = name.rpartition(".")
        if leaf == "running_var" and f"{stem}.running_std" in target:
            name, value = f"{stem}.running_std", value.clamp_min(0).sqrt()
        elif leaf == "running_std" and f"{stem}.running_var" in target:
            name, value = f"{stem}.running_var", value.square()
        if name == "head.bias" and model.head.bias is None:
            log.info("pretrained weights %s: classifier bias dropped (the head has none)", path)
        elif name not in target:
            if leaf not in _SCHEDULE_LEAVES:
                unexpected.append(key)
        elif value.shape != target[name].shape:
            if name == "head.weight" and value.shape[1:] == target[name].shape[1:]:
                log.info(
                    "pretrained weights %s: classifier skipped (%d classes in the file, %d here)",
                    path,
                    value.shape[0],
                    target[name].shape[0],
                )
            else:
                shapes = f"{tuple(value.shape)} vs {tuple(target[name].shape)}"
                raise DataError(f"pretrained weights {path}: {key} has shape {shapes}; {fix}")
        else:
            loaded[name] = value.to(target[name].dtype)
    if unexpected:
        raise DataError(
            f"pretrained weights {path} hold unknown entries ({', '.join(unexpected[:3])}); {fix}"
        )
    optional = {"head.weight"} | {k for k in target if k.rpartition(".")[2] in _SCHEDULE_LEAVES}
    missing = [k for k in target if k not in loaded and k not in optional]
    if missing:
        raise DataError(f"pretrained weights {path} lack {', '.join(missing[:3])}; {fix}")
    target.update(loaded)
    model.load_state_dict(target)
    for key, module in model.named_modules():
        warm_start = (BatchRenorm2d, WarmStartBatchNorm2d)
        if isinstance(module, warm_start) and f"{key}.stats_weight" not in loaded:
            module.mark_estimated()  # trained statistics: no warm-up that would overwrite them
    log.info("loaded pretrained MobileNetV1 weights from %s", path)


BACKBONES.add(
    "mobilenet_v1",
    BackboneSpec(
        MobileNetConfig,
        MobileNetV1,
        "MobileNetV1 with batch renorm, split points for latent replay (AR1*); "
        "pretrained= a local file",
    ),
)
