"""ImageNet weights of MobileNetV1 from the pytorchcv release, fetched once into a cache.

``backbone.pretrained: imagenet`` asks for them. The file is pytorchcv's ``mobilenet_w1``
(osmr/imgclsmob release v0.0.155, top-1 error 0.0895 in its name): a zip holding one state dict,
whose SHA-1 the release publishes (its name carries the first eight digits). It is downloaded
(resumably, with a progress bar: :mod:`lifelong.data.download`) into the ``weights`` folder of
the cache (:func:`lifelong.data.imagefolder.cache_dir`: ``$LIFELONG_CACHE_DIR``, else
``~/.cache/lifelong``), unpacked, and used only when the SHA-1 matches. Only width 1.0 is
published for this architecture's layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lifelong.data.download import Remote, extract_member, fetch
from lifelong.data.imagefolder import cache_dir
from lifelong.errors import ConfigError

IMAGENET = "imagenet"
"""The ``backbone.pretrained`` value that asks for these weights."""


@dataclass(frozen=True)
class WeightsRelease:
    """A published weights file inside a zip.

    Attributes:
        archive: The zip as published (its own checksum is not published).
        member: The weights file inside it.
        sha1: The member's published SHA-1.
    """

    archive: Remote
    member: str
    sha1: str


MOBILENET_W1 = WeightsRelease(
    Remote(
        "https://github.com/osmr/imgclsmob/releases/download/v0.0.155/"
        "mobilenet_w1-0895-7e1d739f.pth.zip",
        "mobilenet_w1-0895-7e1d739f.pth.zip",
        None,
    ),
    "mobilenet_w1-0895-7e1d739f.pth",
    "7e1d739f0fd4b95c16eef077c5dc0a5bb1da8ad5",
)
"""pytorchcv's ``('mobilenet_w1', '0895', '7e1d739f…', 'v0.0.155')`` (its ``model_store.py``)."""


def weights_cache() -> Path:
    """The ``weights`` folder of lifelong's cache."""
    return cache_dir() / "weights"


def imagenet_mobilenet(
    width: float, release: WeightsRelease | None = None, cache: Path | None = None
) -> Path:
    """The checked weights file of ``release`` (:data:`MOBILENET_W1`), fetched when not cached.

    Raises:
        ConfigError: For a width without published weights.
        DataError: When the download or the checksum fails (one line; nothing half-written is
            left where it would be loaded).
    """
    if width != 1.0:
        raise ConfigError(
            f"backbone.pretrained=imagenet exists for width 1.0 only, got {width}: use 1.0 or "
            "point backbone.pretrained at a weights file"
        )
    release = MOBILENET_W1 if release is None else release
    folder = cache or weights_cache()
    target = folder / release.member
    if target.is_file():
        return target
    archive = fetch(release.archive, folder)
    extract_member(archive, release.member, target, release.sha1, "sha1")
    archive.unlink()
    return target
