"""``lifelong pretrain``: pre-train BI-R's conv layers on a dataset and save them to a file.

As the BI-R code's ``main_pretrain.py`` (spec ``bir.md`` §2.7): a plain classifier, the conv
encoder followed by two fully connected layers of ``fc_units`` and a linear output, trained on
every class of a dataset at once with Adam (lr 1e-4, batch 256) and random crop + flip; only the
conv layers are kept. The paper used CIFAR-10 for 100 epochs, then froze the layers for
CIFAR-100. This is plain supervised training, not a continual stream, so it has its own short
loop (the batches come from the continual loop's batch generator).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn
from tqdm import tqdm

from lifelong.backbones.conv_encoder import ConvEncoder, ConvEncoderConfig
from lifelong.checkpoint import check_writable_file
from lifelong.data.catalog import build_stream
from lifelong.data.scenarios import DatasetConfig
from lifelong.data.tensors import ImageSet
from lifelong.data.transforms import ImageTransform
from lifelong.errors import ConfigError
from lifelong.running.seed import seed_everything
from lifelong.running.train import batches

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainConfig:
    """What to pre-train on and how (defaults: the BI-R paper's CIFAR-10 pre-training)."""

    dataset: DatasetConfig = field(default_factory=lambda: DatasetConfig(name="seq-cifar10"))
    """The data: every experience's training set at once, tested on every test set."""
    conv: ConvEncoderConfig = field(default_factory=ConvEncoderConfig)
    """Shape of the conv layers to pre-train."""
    epochs: int = 100
    """Passes over the training data."""
    lr: float = 1e-4
    """Adam learning rate (betas 0.9, 0.999)."""
    batch_size: int = 256
    """Examples per step."""
    fc_units: int = 2000
    """Width of the two fully connected layers on top of the conv layers."""
    augment: bool = True
    """Random crop and horizontal flip (the dataset's training augmentation)."""
    seed: int = 0
    """Seed of initialisation, data order and augmentation."""
    progress: bool = True
    """Show a progress bar (only on a terminal)."""

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "fc_units"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"pretrain {name} must be positive, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ConfigError(f"pretrain lr must be positive, got {self.lr}")


def pretrain_conv(cfg: PretrainConfig, out: Path, device: torch.device) -> float:
    """Train the conv classifier, save its conv layers to ``out``; return its test accuracy (%).

    ``out`` is checked before any work, so a bad path never costs the training.
    """
    check_writable_file(out, "choose another with --out")
    generator = seed_everything(cfg.seed)
    stream = build_stream(cfg.dataset, cfg.seed)
    train = ImageSet.concat([experience.train for experience in stream])
    test = ImageSet.concat([experience.test for experience in stream])
    encoder = ConvEncoder(cfg.conv, stream.image_shape[0])
    head = nn.Sequential(
        nn.Linear(encoder.out_features(stream.image_shape), cfg.fc_units),
        nn.ReLU(),
        nn.Linear(cfg.fc_units, cfg.fc_units),
        nn.ReLU(),
        nn.Linear(cfg.fc_units, stream.num_classes),
    )
    model = nn.Sequential(encoder, head).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    transform = stream.transform
    if not cfg.augment:
        transform = ImageTransform(transform.mean, transform.std)
    steps = math.ceil(len(train) / cfg.batch_size)
    hidden = None if cfg.progress else True  # None: hidden unless stderr is a terminal
    bar = tqdm(total=cfg.epochs * steps, desc="pretrain", disable=hidden, leave=False)
    model.train()
    for epoch in range(cfg.epochs):
        total = torch.zeros((), device=device)
        for batch in batches(
            train, steps, cfg.batch_size, 16, transform, False, generator, device, 0
        ):
            loss = F.cross_entropy(model(batch.x), batch.y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
            bar.update(1)
        log.info("pretrain epoch %d/%d: loss %.4f", epoch + 1, cfg.epochs, float(total) / steps)
    bar.close()
    accuracy = _accuracy(model, test, stream.transform, device)
    encoder.save_pretrained(out)
    log.info("test accuracy %.2f%%; conv layers saved to %s", accuracy, out)
    return accuracy


@torch.no_grad()
def _accuracy(
    model: nn.Module, data: ImageSet, transform: ImageTransform, device: torch.device
) -> float:
    """Accuracy (%) of ``model`` on ``data`` in evaluation mode."""
    model.train(False)
    correct = 0
    for start in range(0, len(data), 1000):
        x = transform.normalize(data.x[start : start + 1000].to(device))
        correct += int((model(x).argmax(1) == data.y[start : start + 1000].to(device)).sum())
    return 100.0 * correct / max(len(data), 1)
