"""The common SSL augmentations: per-sample parameters, torchvision-equal colour ops, 1-channel."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision.transforms.v2.functional as TF  # noqa: N812
from torchvision.transforms.v2 import RandomResizedCrop

from lifelong.errors import ConfigError
from lifelong.ssl.augment import (
    CommonAugment,
    SSLAugmentConfig,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    crop_boxes,
    hsv_to_rgb,
    resized_crop_flip,
    rgb_to_hsv,
)


def _images(n: int = 6, channels: int = 3, size: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), generator=g, dtype=torch.uint8)


def test_identical_images_of_one_batch_get_different_views() -> None:
    image = _images(1)
    batch = image.expand(16, -1, -1, -1).clone()
    out = CommonAugment((0.5,) * 3, (0.25,) * 3)(batch, torch.Generator().manual_seed(0))
    assert out.shape == batch.shape and out.dtype == torch.float32
    flat = out.flatten(1)
    distinct = {tuple(row.tolist()) for row in flat.round(decimals=4)}
    assert len(distinct) == 16  # one draw per image, not one per batch


def test_views_are_reproducible_from_the_generator_state() -> None:
    x, augment = _images(), CommonAugment((0.5,) * 3, (0.25,) * 3)
    a = augment(x, torch.Generator().manual_seed(3))
    b = augment(x, torch.Generator().manual_seed(3))
    c = augment(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_one_channel_images_are_augmented_and_normalised() -> None:
    x = _images(channels=1)
    out = CommonAugment((0.5,), (0.25,))(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert out.min() >= (0 - 0.5) / 0.25 - 1e-5 and out.max() <= (1 - 0.5) / 0.25 + 1e-5
    assert torch.equal(adjust_saturation(x.float() / 255, torch.full((6,), 0.3)), x.float() / 255)
    assert torch.equal(adjust_hue(x.float() / 255, torch.full((6,), 0.1)), x.float() / 255)


def test_uint8_input_is_required() -> None:
    with pytest.raises(ValueError, match="uint8"):
        CommonAugment((0.5,), (0.25,))(torch.zeros(2, 1, 4, 4), torch.Generator())


@pytest.mark.parametrize(
    ("ours", "theirs", "factor"),
    [
        (adjust_brightness, TF.adjust_brightness, 1.3),
        (adjust_contrast, TF.adjust_contrast, 0.7),
        (adjust_saturation, TF.adjust_saturation, 1.15),
        (adjust_hue, TF.adjust_hue, -0.08),
        (adjust_hue, TF.adjust_hue, 0.1),
    ],
)
def test_colour_operations_match_torchvision(ours, theirs, factor: float) -> None:  # type: ignore[no-untyped-def]
    x = _images(4).float() / 255
    expected = torch.stack([theirs(img, factor) for img in x])
    torch.testing.assert_close(ours(x, torch.full((4,), factor)), expected, atol=2e-5, rtol=0)


def test_colour_operations_take_one_factor_per_image() -> None:
    x = _images(2).float() / 255
    out = adjust_brightness(x, torch.tensor([0.5, 1.2]))
    torch.testing.assert_close(out[0], TF.adjust_brightness(x[0], 0.5))
    torch.testing.assert_close(out[1], TF.adjust_brightness(x[1], 1.2))


def test_hsv_round_trip() -> None:
    x = _images(4).float() / 255
    torch.testing.assert_close(hsv_to_rgb(rgb_to_hsv(x)), x, atol=1e-5, rtol=0)


def test_crop_boxes_respect_scale_and_ratio() -> None:
    cfg = SSLAugmentConfig()
    boxes = crop_boxes(4000, (16, 24), cfg, torch.Generator().manual_seed(0))
    cx, cy, w, h = boxes.unbind(1)
    assert (w <= 1).all() and (h <= 1).all()
    assert (cx - w / 2 >= -1e-6).all() and (cx + w / 2 <= 1 + 1e-6).all()
    assert (cy - h / 2 >= -1e-6).all() and (cy + h / 2 <= 1 + 1e-6).all()
    area, ratio = w * h, (w * 24) / (h * 16)
    assert area.min() >= 0.2 - 1e-5 and area.max() <= 1 + 1e-5
    assert ratio.min() >= 3 / 4 - 1e-4 and ratio.max() <= 4 / 3 + 1e-4
    assert area.std() > 0.1  # the area varies over the batch


def test_crop_areas_follow_torchvision_random_resized_crop() -> None:
    """Same distribution as torchvision's 10-try sampler (a large image: rounding negligible)."""
    size, n = (160, 240), 4000
    boxes = crop_boxes(n, size, SSLAugmentConfig(), torch.Generator().manual_seed(0))
    ours = boxes[:, 2] * boxes[:, 3]
    torch.manual_seed(0)
    image = torch.zeros(1, *size)
    theirs = []
    for _ in range(n):
        _, _, h, w = RandomResizedCrop.get_params(image, [0.2, 1.0], [3 / 4, 4 / 3])
        theirs.append(h * w / (size[0] * size[1]))
    reference = torch.tensor(theirs)
    assert math.isclose(float(ours.mean()), float(reference.mean()), abs_tol=0.015)
    for q in (0.1, 0.5, 0.9):
        assert math.isclose(float(ours.quantile(q)), float(reference.quantile(q)), abs_tol=0.03), q
    # and neither is uniform on [0.2, 1]: oversized candidates are rejected
    assert float(ours.mean()) < 0.55


def test_full_box_is_the_identity_and_flip_mirrors() -> None:
    x = _images(2).float()
    full = torch.tensor([[0.5, 0.5, 1.0, 1.0]] * 2)
    same = resized_crop_flip(x, full, torch.tensor([False, False]))
    torch.testing.assert_close(same, x, atol=1e-3, rtol=0)
    mirrored = resized_crop_flip(x, full, torch.tensor([True, False]))
    torch.testing.assert_close(mirrored[0], x[0].flip(-1), atol=1e-3, rtol=0)
    torch.testing.assert_close(mirrored[1], x[1], atol=1e-3, rtol=0)


def test_half_box_is_crop_then_resize() -> None:
    """A box of the top-right quarter equals cropping it and resizing it (torchvision)."""
    x = _images(1, size=8).float()
    box = torch.tensor([[0.75, 0.25, 0.5, 0.5]])
    out = resized_crop_flip(x, box, torch.tensor([False]))
    expected = TF.resized_crop(x, 0, 4, 4, 4, [8, 8], antialias=False)
    torch.testing.assert_close(out, expected, atol=1e-3, rtol=0)
    flipped = resized_crop_flip(x, box, torch.tensor([True]))
    torch.testing.assert_close(flipped, expected.flip(-1), atol=1e-3, rtol=0)


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ConfigError, match="crop_scale"):
        SSLAugmentConfig(crop_scale=(0.5, 0.2))
    with pytest.raises(ConfigError, match="grayscale_p"):
        SSLAugmentConfig(grayscale_p=1.5)
