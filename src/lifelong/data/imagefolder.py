"""Folders of image files (the ImageNet-100 layout), decoded into memory, with a decode cache.

:func:`load_image_folder` reads ``<root>/train/<class>/*`` and ``<root>/val/<class>/*``. Each file
is decoded with torchvision (JPEG, PNG, ...; forced to RGB), its shorter side resized to ``size``
and the centre ``size``×``size`` crop kept, all as tensor ops.

Decoding thousands of files takes a while, so the decoded tensors are cached under the user cache
folder (``$LIFELONG_CACHE_DIR``, else ``$XDG_CACHE_HOME/lifelong``, else ``~/.cache/lifelong``),
keyed by the dataset folder, the decode settings and every file's path, size and modification
time: changing any file makes a new key. Only images are cached; labels always come from the
current listing. Nothing is written next to the dataset, so a read-only copy works. An unreadable
cache is ignored and rebuilt; a cache folder that cannot be written is only logged.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from lifelong.data.tensors import ImageSet, TrainTest
from lifelong.errors import DataError

log = logging.getLogger(__name__)

Images = tuple[torch.Tensor, torch.Tensor]
"""Decoded (train, test) images, each uint8 (N, 3, H, W)."""

IMAGE_SUFFIXES = frozenset({".jpeg", ".jpg", ".png", ".bmp", ".gif", ".webp"})
_CACHE_VERSION = 1
_TV_IO_DEPRECATION = "The image decoding and encoding capabilities of TorchVision"


def list_images(folder: Path) -> list[Path]:
    """Return the image files directly in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _decode_one(path: Path) -> torch.Tensor:
    from torchvision.io import ImageReadMode, decode_image, read_file

    try:
        image: torch.Tensor = decode_image(read_file(str(path)), mode=ImageReadMode.RGB)
    except (RuntimeError, OSError, ValueError) as err:
        raise DataError(
            f"cannot decode {path}: {err}; the image is corrupt or truncated, replace it or "
            "download the dataset again"
        ) from err
    return image


def decode_files(paths: Sequence[Path], size: int, *, resize: bool) -> torch.Tensor:
    """Decode image files into one uint8 (N, 3, size, size) tensor, forcing RGB.

    Args:
        paths: The image files, in the order wanted.
        size: Height and width of the result.
        resize: If true, resize each image's shorter side to ``size`` and keep the centre crop;
            if false, every image must already be ``size``×``size``.

    Raises:
        DataError: naming the file, if one cannot be read or decoded, or has the wrong size.
    """
    from torchvision.transforms.v2 import functional as tvf

    out = torch.empty((len(paths), 3, size, size), dtype=torch.uint8)
    with warnings.catch_warnings():
        # torchvision >= 0.29 warns on every torchvision.io call that TorchCodec supersedes it.
        warnings.filterwarnings("ignore", message=_TV_IO_DEPRECATION, category=DeprecationWarning)
        for i, path in enumerate(paths):
            image = _decode_one(path)
            if resize:
                image = tvf.center_crop(tvf.resize(image, [size], antialias=True), [size, size])
            elif tuple(image.shape[1:]) != (size, size):
                raise DataError(
                    f"{path} is {image.shape[2]}×{image.shape[1]} pixels, expected "
                    f"{size}×{size}; the file does not belong to this dataset or is corrupt"
                )
            out[i] = image
    return out


def cache_dir() -> Path:
    """The folder that holds decoded-image caches."""
    override = os.environ.get("LIFELONG_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "lifelong"


def cache_key(root: Path, files: Sequence[Path], settings: str) -> str:
    """Hash the dataset folder, the decode settings and every file's path, size and mtime."""
    digest = hashlib.sha256(f"v{_CACHE_VERSION}\0{root.resolve()}\0{settings}\0".encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def _read_cache(path: Path, sizes: tuple[int, int]) -> Images | None:
    if not path.is_file():
        return None
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
        train_x, test_x = content["train_x"], content["test_x"]
        for x, n in ((train_x, sizes[0]), (test_x, sizes[1])):
            if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8 or x.dim() != 4:
                raise ValueError("not uint8 (N, C, H, W) tensors")
            if x.shape[0] != n:
                raise ValueError(f"{x.shape[0]} images, expected {n}")
        return train_x, test_x
    except Exception as err:  # any unreadable or stale cache is simply rebuilt
        log.warning("ignoring unreadable cache %s (%s); decoding the images again", path, err)
        return None


def _write_cache(path: Path, images: Images) -> None:
    tmp_name = ""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
            tmp_name = tmp.name
            torch.save({"train_x": images[0], "test_x": images[1]}, tmp)
        os.replace(tmp_name, path)
        log.info("cached the decoded images in %s", path)
    except (OSError, RuntimeError) as err:  # torch.save reports a full disk as RuntimeError
        log.warning("cannot write the image cache %s (%s); continuing without it", path, err)
        if tmp_name:
            Path(tmp_name).unlink(missing_ok=True)


def cached_decode(
    name: str, key: str, decode: Callable[[], Images], sizes: tuple[int, int]
) -> Images:
    """Return the cached (train, test) images for ``key``, or ``decode()`` and cache them.

    Only images are cached; labels always come from the current file listing.

    Args:
        name: Short dataset name, used in the cache file name.
        key: The cache key from :func:`cache_key`.
        decode: Decodes the (train, test) images when there is no usable cache.
        sizes: The expected numbers of train and test images; a cache of other sizes is rebuilt.
    """
    path = cache_dir() / f"{name}-{key}.pt"
    cached = _read_cache(path, sizes)
    if cached is not None:
        log.info("loaded the %s images from the cache %s", name, path)
        return cached
    start = time.perf_counter()
    images = decode()
    seconds = time.perf_counter() - start
    log.info("decoded %d %s images in %.1f s", sum(len(x) for x in images), name, seconds)
    _write_cache(path, images)
    return images


def _class_files(split_dir: Path, classes: Sequence[str]) -> tuple[list[Path], torch.Tensor]:
    files: list[Path] = []
    labels: list[int] = []
    for label, cls in enumerate(classes):
        folder = split_dir / cls
        found = list_images(folder) if folder.is_dir() else []
        files += found
        labels += [label] * len(found)
    return files, torch.tensor(labels, dtype=torch.int64)


def _find_classes(train_dir: Path, val_dir: Path) -> tuple[str, ...]:
    classes = tuple(sorted(p.name for p in train_dir.iterdir() if p.is_dir()))
    if not classes:
        raise DataError(f"no class folders in {train_dir}; expected {train_dir}/<class>/*.JPEG")
    extra = sorted({p.name for p in val_dir.iterdir() if p.is_dir()} - set(classes))
    if extra:
        raise DataError(
            f"{val_dir} has class folders missing from {train_dir}: {', '.join(extra[:5])}; both "
            "splits must use the same class folder names"
        )
    return classes


def load_image_folder(root: str, size: int) -> TrainTest:
    """Load an ImageNet-style folder: ``<root>/train/<class>/*`` and ``<root>/val/<class>/*``.

    Classes are the train sub-folders, sorted, labelled 0..C-1; their names are the folder names.
    Every image is forced to RGB, its shorter side resized to ``size`` and centre-cropped.

    Args:
        root: The dataset folder, holding ``train/`` and ``val/``.
        size: Height and width of the loaded images.

    Returns:
        The train and val splits as uint8 (N, 3, size, size) images, and the class names.

    Raises:
        DataError: if a folder is missing or empty, or a file cannot be decoded.
    """
    base = Path(root).expanduser()
    train_dir, val_dir = base / "train", base / "val"
    for split_dir in (train_dir, val_dir):
        if not split_dir.is_dir():
            raise DataError(
                f"image folder not found: looked for {split_dir}; pass --data-root DIR where "
                "DIR/train/<class>/ and DIR/val/<class>/ hold the images (ImageNet layout)"
            )
    if size < 1:
        raise DataError(f"image size must be positive, got {size}")
    classes = _find_classes(train_dir, val_dir)
    train_files, train_y = _class_files(train_dir, classes)
    val_files, val_y = _class_files(val_dir, classes)
    if not train_files or not val_files:
        empty = train_dir if not train_files else val_dir
        raise DataError(f"no image files under {empty}/<class>/; expected .JPEG or .png files")

    def decode() -> Images:
        train_x = decode_files(train_files, size, resize=True)
        return train_x, decode_files(val_files, size, resize=True)

    key = cache_key(base, train_files + val_files, f"imagefolder size={size}")
    train_x, val_x = cached_decode("imagefolder", key, decode, (len(train_files), len(val_files)))
    train, test = ImageSet(train_x, train_y), ImageSet(val_x, val_y)
    log.info(
        "loaded %s: %d train, %d val images, %d classes", base, len(train), len(test), len(classes)
    )
    return TrainTest(train, test, classes)
