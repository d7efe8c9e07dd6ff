"""Per-sample batched augmentation and normalisation."""

from __future__ import annotations

import pytest
import torch

from lifelong.data.transforms import ImageTransform, random_crop, random_hflip


def _image(channels: int = 3, size: int = 8, seed: int = 0) -> torch.Tensor:
    """One (C, H, W) uint8 image with non-zero, asymmetric content."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, 256, (channels, size, size), generator=g, dtype=torch.uint8)


def _windows(image: torch.Tensor, padding: int) -> list[torch.Tensor]:
    """Every crop of the zero-padded image, in (row offset, column offset) order."""
    _, h, w = image.shape
    padded = torch.nn.functional.pad(image, (padding,) * 4)
    side = 2 * padding + 1
    return [padded[:, r : r + h, c : c + w] for r in range(side) for c in range(side)]


def test_random_crop_is_a_shifted_window_of_the_padded_image_per_sample() -> None:
    padding, n = 2, 600
    image = _image()
    batch = image.expand(n, -1, -1, -1).clone()
    out = random_crop(batch, padding, torch.Generator().manual_seed(0))
    assert out.shape == batch.shape
    assert out.dtype == batch.dtype
    windows = _windows(image, padding)
    offsets = []
    for crop in out:
        # the same offset applies to every channel of an image (the full C x H x W window matches)
        matches = [k for k, window in enumerate(windows) if torch.equal(crop, window)]
        assert len(matches) == 1
        offsets.append(matches[0])
    # images of one batch get their own offsets: with 600 draws over 25 offsets each offset
    # appears (a uniform sampler misses one with probability < 25 * (24/25)^600 ~ 6e-10)
    assert set(offsets) == set(range(len(windows)))
    counts = torch.bincount(torch.tensor(offsets), minlength=25).float()
    # Binomial(600, 1/25): mean 24, sd 4.8; 6 sd bound
    assert torch.all((counts - 24).abs() < 29)


def test_random_crop_with_zero_padding_is_identity() -> None:
    batch = torch.stack([_image(seed=s) for s in range(4)])
    assert torch.equal(random_crop(batch, 0, torch.Generator().manual_seed(0)), batch)


def test_random_crop_works_on_float_inputs() -> None:
    batch = torch.stack([_image(1, seed=s) for s in range(3)]).float()
    out = random_crop(batch, 1, torch.Generator().manual_seed(1))
    assert out.dtype == torch.float32
    assert out.shape == batch.shape


def test_random_hflip_flips_about_half_independently_per_image() -> None:
    n = 2000
    image = _image()
    batch = image.expand(n, -1, -1, -1).clone()
    out = random_hflip(batch, torch.Generator().manual_seed(0))
    assert out.shape == batch.shape
    same = (out == image).flatten(1).all(1)
    flipped = (out == image.flip(-1)).flatten(1).all(1)
    assert torch.all(same ^ flipped)  # every image is either untouched or mirrored, never mixed
    # Binomial(2000, 1/2): sd 22.4; 6 sd bound
    assert abs(int(flipped.sum()) - n // 2) < 135


def test_random_hflip_uses_the_generator() -> None:
    batch = _image().expand(64, -1, -1, -1).clone()
    a = random_hflip(batch, torch.Generator().manual_seed(5))
    b = random_hflip(batch, torch.Generator().manual_seed(5))
    c = random_hflip(batch, torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_normalize_known_values() -> None:
    transform = ImageTransform(mean=(0.5,), std=(0.25,))
    x = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 1, 1, 3)
    out = transform.normalize(x)
    assert out.dtype == torch.float32
    # (v / 255 - 0.5) / 0.25: 0 -> -2, 51 -> (0.2 - 0.5) * 4 = -1.2, 255 -> 2
    torch.testing.assert_close(out.flatten(), torch.tensor([-2.0, -1.2, 2.0]))
    assert x.dtype == torch.uint8  # input untouched
    assert x.flatten().tolist() == [0, 51, 255]


def test_normalize_is_per_channel() -> None:
    transform = ImageTransform(mean=(0.0, 0.5, 1.0), std=(1.0, 0.5, 0.25))
    x = torch.full((2, 3, 2, 2), 255, dtype=torch.uint8)
    out = transform.normalize(x)
    expected = torch.tensor([1.0, 1.0, 0.0]).view(1, 3, 1, 1).expand(2, 3, 2, 2)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize(
    ("padding", "hflip", "augments"), [(0, False, False), (4, False, True), (0, True, True)]
)
def test_augments_flag(padding: int, hflip: bool, augments: bool) -> None:
    assert ImageTransform((0.0,), (1.0,), padding, hflip).augments is augments


def test_train_without_augmentation_equals_normalize() -> None:
    transform = ImageTransform(mean=(0.1, 0.2, 0.3), std=(0.3, 0.2, 0.1))
    batch = torch.stack([_image(seed=s) for s in range(5)])
    out = transform.train(batch, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, transform.normalize(batch), rtol=0, atol=0)


def test_train_with_augmentation_normalises_augmented_images() -> None:
    transform = ImageTransform(mean=(0.5,) * 3, std=(0.25,) * 3, crop_padding=2, hflip=True)
    image = _image()
    batch = image.expand(200, -1, -1, -1).clone()
    out = transform.train(batch, torch.Generator().manual_seed(0))
    assert out.shape == batch.shape
    assert out.dtype == torch.float32
    candidates = _windows(image, 2) + [w.flip(-1) for w in _windows(image, 2)]
    normalised = [transform.normalize(c[None])[0] for c in candidates]
    for sample in out[:40]:
        assert any(torch.equal(sample, c) for c in normalised)
    # augmentation differs from one image to the next
    assert len({tuple(sample.flatten().tolist()) for sample in out}) > 10
