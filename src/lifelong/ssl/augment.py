"""The "common" SSL augmentations, batched on the device with per-sample random parameters.

Spec ``cssl.md`` §5 (identical for every SSL model): random resized crop (scale 0.2–1, aspect
ratio 3/4–4/3, back to the input size), horizontal flip (p = 0.5), colour jitter
(brightness 0.4, contrast 0.4, saturation 0.2, hue 0.1; applied with p = 0.8, its four operations
in a random order per image, as torchvision's ``ColorJitter``), grayscale (p = 0.2), then the
dataset normalisation. No blur and no solarisation.

Every image of a batch draws its own parameters from the explicit CPU ``torch.Generator``; the
image work runs vectorised on the images' device. Differences from the reference's per-sample
torchvision pipeline: the crop is sampled at sub-pixel precision with bilinear interpolation
(torchvision rounds the crop to whole pixels), and everything runs on float images in [0, 1]
(torchvision's ColorJitter on uint8 images rounds after each operation). One-channel images are
handled as torchvision does: saturation, hue and grayscale leave them unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812

from lifelong.errors import ConfigError

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)
"""ITU-R 601-2 luma weights, as torchvision's ``rgb_to_grayscale``."""


@dataclass(frozen=True)
class SSLAugmentConfig:
    """Parameters of the common SSL augmentation (defaults: the reference's ``common`` set)."""

    crop_scale: tuple[float, float] = (0.2, 1.0)
    """Range of the crop's area as a fraction of the image's."""
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    """Range of the crop's aspect ratio (width / height), sampled log-uniformly."""
    flip_p: float = 0.5
    """Probability of a horizontal flip."""
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.1)
    """Colour-jitter strengths: brightness, contrast, saturation, hue (hue ≤ 0.5)."""
    jitter_p: float = 0.8
    """Probability that an image is colour-jittered."""
    grayscale_p: float = 0.2
    """Probability that an image is turned to grayscale."""

    def __post_init__(self) -> None:
        low, high = self.crop_scale
        if not 0 < low <= high <= 1:
            raise ConfigError(
                f"augment.crop_scale must satisfy 0 < low <= high <= 1, got {low, high}"
            )
        if not 0 < self.crop_ratio[0] <= self.crop_ratio[1]:
            raise ConfigError(f"augment.crop_ratio must be increasing and > 0: {self.crop_ratio}")
        for name in ("flip_p", "jitter_p", "grayscale_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"augment.{name} must be in [0, 1], got {getattr(self, name)}")
        if min(self.jitter) < 0 or self.jitter[3] > 0.5:
            raise ConfigError(f"augment.jitter must be >= 0 with hue <= 0.5, got {self.jitter}")


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def crop_boxes(
    batch: int, size: tuple[int, int], cfg: SSLAugmentConfig, generator: torch.Generator
) -> torch.Tensor:
    """Per-image crop boxes as fractions of the image: (B, 4) rows ``(cx, cy, w, h)``.

    ``cx, cy`` is the centre in [0, 1] and ``w, h`` the width and height. Like torchvision's
    ``RandomResizedCrop``, ten (scale, ratio) candidates are tried per image and the first that
    fits is used; an image with no fitting candidate falls back to the central crop of the
    whole image with the ratio clamped to ``crop_ratio``.
    """
    h_px, w_px = size
    tries = 10
    area = _uniform(batch * tries, *cfg.crop_scale, generator).view(batch, tries)
    log_low, log_high = math.log(cfg.crop_ratio[0]), math.log(cfg.crop_ratio[1])
    ratio = torch.exp(_uniform(batch * tries, log_low, log_high, generator)).view(batch, tries)
    w = torch.sqrt(area * ratio * h_px / w_px)  # fractions: (w·W)(h·H) = area·H·W, w·W/(h·H) = r
    h = torch.sqrt(area / ratio * w_px / h_px)
    fits = (w <= 1) & (h <= 1)
    first = fits.int().argmax(dim=1, keepdim=True)
    w, h = w.gather(1, first).squeeze(1), h.gather(1, first).squeeze(1)
    in_ratio = w_px / h_px
    fallback_w = min(1.0, cfg.crop_ratio[1] / in_ratio)
    fallback_h = min(1.0, in_ratio / cfg.crop_ratio[0])
    none = ~fits.any(dim=1)
    w = torch.where(none, torch.full_like(w, fallback_w), w)
    h = torch.where(none, torch.full_like(h, fallback_h), h)
    cx = w / 2 + (1 - w) * torch.rand(batch, generator=generator)
    cy = h / 2 + (1 - h) * torch.rand(batch, generator=generator)
    cx = torch.where(none, torch.full_like(cx, 0.5), cx)
    cy = torch.where(none, torch.full_like(cy, 0.5), cy)
    return torch.stack([cx, cy, w, h], dim=1)


def resized_crop_flip(x: torch.Tensor, boxes: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Crop ``boxes`` (see :func:`crop_boxes`) out of float images and resize to the input size.

    Bilinear sampling through one affine grid per image, clamped to the crop's outermost pixel
    centres (as cropping then resizing: pixels outside the crop never contribute); ``flip``
    (B,) bool mirrors the crop horizontally.
    """
    b = x.shape[0]
    boxes = boxes.to(x.device, x.dtype)
    sign = 1.0 - 2.0 * flip.to(x.device, x.dtype)
    theta = torch.zeros(b, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = boxes[:, 2] * sign
    theta[:, 0, 2] = 2 * boxes[:, 0] - 1
    theta[:, 1, 1] = boxes[:, 3]
    theta[:, 1, 2] = 2 * boxes[:, 1] - 1
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # sample within the crop, as cropping then resizing does: no bleeding across its border
    half_pixel = torch.tensor([1.0 / x.shape[3], 1.0 / x.shape[2]], device=x.device, dtype=x.dtype)
    centre, half = theta[:, :, 2], theta[:, :, :2].abs().sum(dim=2)
    low = (centre - half + half_pixel)[:, None, None, :]
    high = (centre + half - half_pixel)[:, None, None, :]
    grid = torch.minimum(torch.maximum(grid, low), high)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """Luma of RGB images (B, 3, H, W) → (B, 1, H, W); one-channel images are returned as is."""
    if x.shape[1] == 1:
        return x
    weights = torch.tensor(GRAY_WEIGHTS, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] (B, 3, H, W) → HSV with every channel in [0, 1]."""
    r, g, b = x.unbind(dim=1)
    value, _ = x.max(dim=1)
    chroma = value - x.min(dim=1).values
    gray = chroma == 0
    saturation = chroma / torch.where(value == 0, torch.ones_like(value), value)
    safe = torch.where(gray, torch.ones_like(chroma), chroma)
    rc, gc, bc = (value - r) / safe, (value - g) / safe, (value - b) / safe
    is_r = value == r
    is_g = (value == g) & ~is_r
    hue = torch.where(is_r, bc - gc, torch.where(is_g, 2.0 + rc - bc, 4.0 + gc - rc))
    hue = torch.where(gray, torch.zeros_like(hue), hue)
    hue = torch.remainder(hue / 6.0, 1.0)
    return torch.stack([hue, saturation, value], dim=1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """HSV with every channel in [0, 1] (B, 3, H, W) → RGB in [0, 1]."""
    h, s, v = x.unbind(dim=1)
    sector = torch.floor(h * 6.0)
    frac = h * 6.0 - sector
    sector = sector.long() % 6
    p = (v * (1.0 - s)).clamp(0, 1)
    q = (v * (1.0 - s * frac)).clamp(0, 1)
    t = (v * (1.0 - s * (1.0 - frac))).clamp(0, 1)
    # per sector 0..5: (r, g, b) = (v,t,p) (q,v,p) (p,v,t) (p,q,v) (t,p,v) (v,p,q)
    table = torch.stack(
        [
            torch.stack([v, q, p, p, t, v], dim=1),
            torch.stack([t, v, v, q, p, p], dim=1),
            torch.stack([p, p, t, v, v, q], dim=1),
        ],
        dim=1,
    )  # (B, 3, 6, H, W)
    index = sector[:, None, None].expand(-1, 3, 1, -1, -1)
    return table.gather(2, index).squeeze(2)


def _per_image(factor: torch.Tensor) -> torch.Tensor:
    return factor.view(-1, 1, 1, 1)


def adjust_brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``clamp(f · x)`` per image (factor (B,))."""
    return (x * _per_image(factor)).clamp(0, 1)


def adjust_contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend each image with the mean of its grayscale version."""
    mean = grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
    f = _per_image(factor)
    return (f * x + (1 - f) * mean).clamp(0, 1)


def adjust_saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend each RGB image with its grayscale version (one-channel images: unchanged)."""
    if x.shape[1] == 1:
        return x
    f = _per_image(factor)
    return (f * x + (1 - f) * grayscale(x)).clamp(0, 1)


def adjust_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue of each RGB image by ``shift`` (B,) turns (one-channel: unchanged)."""
    if x.shape[1] == 1:
        return x
    hsv = rgb_to_hsv(x)
    hue = torch.remainder(hsv[:, 0] + shift.view(-1, 1, 1), 1.0)
    return hsv_to_rgb(torch.stack([hue, hsv[:, 1], hsv[:, 2]], dim=1))


JITTER_OPS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


def color_jitter(
    x: torch.Tensor, cfg: SSLAugmentConfig, generator: torch.Generator
) -> torch.Tensor:
    """Colour jitter with probability ``jitter_p``, per-image factors and operation order."""
    b = x.shape[0]
    brightness, contrast, saturation, hue = cfg.jitter
    factors = [
        _uniform(b, max(0.0, 1 - brightness), 1 + brightness, generator),
        _uniform(b, max(0.0, 1 - contrast), 1 + contrast, generator),
        _uniform(b, max(0.0, 1 - saturation), 1 + saturation, generator),
        _uniform(b, -hue, hue, generator),
    ]
    apply = torch.rand(b, generator=generator) < cfg.jitter_p
    order = torch.rand(b, 4, generator=generator).argsort(dim=1)
    for position in range(4):
        for op_index, op in enumerate(JITTER_OPS):
            chosen = apply & (order[:, position] == op_index)
            if bool(chosen.any()):  # CPU masks: no device synchronisation
                out = op(x, factors[op_index].to(x.device, x.dtype))
                x = torch.where(_per_image(chosen.to(x.device)), out, x)
    return x


def random_grayscale(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Turn each RGB image to (three-channel) grayscale with probability ``p``."""
    chosen = torch.rand(x.shape[0], generator=generator) < p
    if x.shape[1] == 1 or not bool(chosen.any()):
        return x
    gray = grayscale(x).expand_as(x)
    return torch.where(_per_image(chosen.to(x.device)), gray, x)


@dataclass(frozen=True)
class CommonAugment:
    """uint8 images → one augmented, normalised view per image (the reference's ``common``).

    Attributes:
        mean: Per-channel mean of the [0, 1]-scaled images (the dataset normalisation).
        std: Per-channel standard deviation.
        cfg: Augmentation parameters.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    cfg: SSLAugmentConfig = SSLAugmentConfig()

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment uint8 images (B, C, H, W) on their device; float32 normalised output."""
        if x.dtype != torch.uint8:
            raise ValueError(f"CommonAugment expects uint8 images, got {x.dtype}")
        b, c, h, w = x.shape
        images = x.float().div_(255.0)
        boxes = crop_boxes(b, (h, w), self.cfg, generator)
        flip = torch.rand(b, generator=generator) < self.cfg.flip_p
        images = resized_crop_flip(images, boxes, flip)
        images = color_jitter(images, self.cfg, generator)
        images = random_grayscale(images, self.cfg.grayscale_p, generator)
        mean = torch.tensor(self.mean, device=x.device).view(1, c, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, c, 1, 1)
        return (images - mean) / std
