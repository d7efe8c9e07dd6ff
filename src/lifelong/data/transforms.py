"""Batched image transforms that run on the target device with per-sample random parameters.

``torchvision.transforms.v2`` applied to a (B, C, H, W) tensor draws ONE crop and ONE flip for the
whole batch, which silently weakens augmentation. These transforms draw a crop offset and a flip
decision for every image, vectorised over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``padding`` pixels and crop back to the input size at a random offset per image.

    Args:
        x: Images (B, C, H, W) of any dtype.
        padding: Pixels of zero padding on each side.
        generator: CPU generator for the offsets.

    Returns:
        Cropped images with the shape of ``x``.
    """
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding, padding, padding, padding))
    offsets = torch.randint(0, 2 * padding + 1, (2, b), generator=generator).to(x.device)
    rows = (offsets[0, :, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (offsets[1, :, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    channels = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, channels, rows, cols]


def random_hflip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip each image horizontally with probability 1/2, independently per image."""
    flip = (torch.rand(x.shape[0], generator=generator) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


@dataclass(frozen=True)
class ImageTransform:
    """Converts uint8 images to normalised float32, with optional per-sample augmentation.

    Attributes:
        mean: Per-channel mean of the [0, 1]-scaled images.
        std: Per-channel standard deviation of the [0, 1]-scaled images.
        crop_padding: Random-crop padding in pixels for training (0 disables cropping).
        hflip: Whether training flips images horizontally at random.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_padding: int = 0
    hflip: bool = False
    _constants: dict[torch.device, tuple[torch.Tensor, torch.Tensor | None]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def augments(self) -> bool:
        """Whether training applies any random augmentation."""
        return self.crop_padding > 0 or self.hflip

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Scale uint8 images to [0, 1] and normalise per channel (the evaluation transform)."""
        constants = self._constants.get(x.device)
        if constants is None:
            constants = self._constants[x.device] = self._device_constants(x.device)
        scale, shift = constants
        out = torch.mul(x, scale)  # promotes uint8 to float32 in the same kernel
        return out if shift is None else out.sub_(shift)

    def _device_constants(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x * scale - shift`` equals ``(x / 255 - mean) / std``; no shift for a zero mean."""
        scale = torch.tensor([1.0 / (255.0 * s) for s in self.std], device=device)
        ratios = [m / s for m, s in zip(self.mean, self.std, strict=True)]
        shift = torch.tensor(ratios, device=device)
        return scale.view(1, -1, 1, 1), (shift.view(1, -1, 1, 1) if any(self.mean) else None)

    def train(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment (crop, flip) with per-sample parameters, then normalise."""
        if self.crop_padding > 0:
            x = random_crop(x, self.crop_padding, generator)
        if self.hflip:
            x = random_hflip(x, generator)
        return self.normalize(x)
