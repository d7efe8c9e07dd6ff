"""Folders of image files (the ImageNet-100 layout), decoded into memory, with a decode cache.

:func:`load_image_folder` reads ``<root>/train/<class>/*`` and ``<root>/val/<class>/*``. Each file
is decoded with torchvision (JPEG, PNG, ...; forced to RGB), its shorter side resized to ``size``
and the centre ``size``×``size`` crop kept, all as tensor ops. :func:`decode_files` decodes on
every core the process may use (threads: torchvision's decoders release the GIL), with a
progress bar on a terminal.

Decoding thousands of files takes a while, so the decoded images are cached under the user cache
folder (``$LIFELONG_CACHE_DIR``, else ``$XDG_CACHE_HOME/lifelong``, else ``~/.cache/lifelong``),
keyed by the dataset folder, the decode settings and a checksum of the source listing (every
file's path, size and modification time): changing any file makes a new key, so a stale cache is
never read. A cache is two files: ``NAME-KEY.u8``, the raw uint8 pixels of the train then the
test images, which later loads memory-map instead of reading, and ``NAME-KEY.json``, the shapes
and a CRC-32 of every 64 MiB of pixels, all checked before the cache is used: a truncated or
corrupt cache is logged, ignored and rebuilt. Only images are cached; labels always come from the
current listing. Nothing is written next to the dataset, so a read-only copy works; a cache folder
that cannot be written is only logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from lifelong.data.tensors import ImageSet, TrainTest
from lifelong.errors import DataError

log = logging.getLogger(__name__)

Images = tuple[torch.Tensor, torch.Tensor]
"""Decoded (train, test) images, each uint8 (N, 3, H, W)."""

IMAGE_SUFFIXES = frozenset({".jpeg", ".jpg", ".png", ".bmp", ".gif", ".webp"})
_CACHE_VERSION = 2
CRC_CHUNK_BYTES = 64 << 20
"""Bytes of cached pixels per CRC-32 in a cache's ``.json`` (checked in parallel)."""
DECODE_TASK_IMAGES = 256
"""Images per decoding task: small enough for a steady progress bar and a prompt error."""
_TV_IO_DEPRECATION = "The image decoding and encoding capabilities of TorchVision"


def list_images(folder: Path) -> list[Path]:
    """Return the image files directly in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _decode_one(path: Path) -> torch.Tensor:
    """One file decoded to uint8 (3, H, W) RGB (Python reads the bytes: it frees the GIL then)."""
    from torchvision.io import ImageReadMode, decode_image

    try:
        data = torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8)
        image: torch.Tensor = decode_image(data, mode=ImageReadMode.RGB)
    except (RuntimeError, OSError, ValueError) as err:
        raise DataError(
            f"cannot decode {path}: {err}; the image is corrupt or truncated, replace it or "
            "download the dataset again"
        ) from err
    return image


def decode_files(
    paths: Sequence[Path], size: int, *, resize: bool, desc: str = "decoding images"
) -> torch.Tensor:
    """Decode image files into one uint8 (N, 3, size, size) tensor, forcing RGB, on every core.

    Args:
        paths: The image files, in the order wanted.
        size: Height and width of the result.
        resize: If true, resize each image's shorter side to ``size`` and keep the centre crop;
            if false, every image must already be ``size``×``size``.
        desc: The progress bar's label (shown only on a terminal).

    Raises:
        DataError: naming the file, if one cannot be read or decoded, or has the wrong size.
    """
    out = torch.empty((len(paths), 3, size, size), dtype=torch.uint8)
    starts = range(0, len(paths), DECODE_TASK_IMAGES)
    workers = min(usable_cores(), len(starts)) or 1
    stop = threading.Event()
    bar = tqdm(total=len(paths), desc=desc, unit="img", disable=None, mininterval=0.5, leave=False)

    def decode_task(start: int) -> None:
        end = min(start + DECODE_TASK_IMAGES, len(paths))
        if stop.is_set():
            return
        out[start:end] = torch.stack([_decoded(paths[i], size, resize) for i in range(start, end)])
        bar.update(end - start)

    with warnings.catch_warnings(), bar, ThreadPoolExecutor(workers) as pool:
        # torchvision >= 0.29 warns on every torchvision.io call that TorchCodec supersedes it.
        warnings.filterwarnings("ignore", message=_TV_IO_DEPRECATION, category=DeprecationWarning)
        futures = [pool.submit(decode_task, start) for start in starts]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in done if f.exception() is not None), None)
        if failed is not None:
            stop.set()
            pool.shutdown(cancel_futures=True)
            raise failed.exception()  # type: ignore[misc]
    return out


def usable_cores() -> int:
    """The number of cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _decoded(path: Path, size: int, resize: bool) -> torch.Tensor:
    """One image file as uint8 (3, size, size): resized and centre-cropped, or checked.

    Called on the decoding threads: torchvision's decoders and resizing release the GIL, so the
    Python here is what the threads share.
    """
    image = _decode_one(path)
    if resize:
        return _resized(image, size)
    if tuple(image.shape[1:]) != (size, size):
        raise DataError(
            f"{path} is {image.shape[2]}×{image.shape[1]} pixels, expected "
            f"{size}×{size}; the file does not belong to this dataset or is corrupt"
        )
    return image


def _resized(image: torch.Tensor, size: int) -> torch.Tensor:
    """The shorter side resized to ``size`` (antialiased), then the centre crop."""
    from torchvision.transforms.v2 import functional as tvf

    resized: torch.Tensor = tvf.center_crop(tvf.resize(image, [size], antialias=True), [size, size])
    return resized


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


def _crcs(pixels: torch.Tensor) -> list[int]:
    """CRC-32 of every :data:`CRC_CHUNK_BYTES` of a uint8 tensor's bytes, on every core."""
    flat = pixels.reshape(-1).numpy()
    chunks = [flat[i : i + CRC_CHUNK_BYTES] for i in range(0, len(flat), CRC_CHUNK_BYTES)]
    with ThreadPoolExecutor(usable_cores()) as pool:  # zlib releases the GIL on large buffers
        return list(pool.map(zlib.crc32, chunks))


def _read_cache(path: Path, key: str, sizes: tuple[int, int]) -> Images | None:
    """The cached (train, test) images, memory-mapped, or None when missing, stale or corrupt."""
    header_path = path.with_suffix(".json")
    if not path.is_file() and not header_path.is_file():
        return None
    try:
        header: dict[str, Any] = json.loads(header_path.read_text())
        if header.get("version") != _CACHE_VERSION or header.get("key") != key:
            raise ValueError("written for other files or settings")
        shapes = [tuple(int(d) for d in shape) for shape in header["shapes"]]
        if [shape[0] for shape in shapes] != list(sizes) or any(len(s) != 4 for s in shapes):
            raise ValueError(f"holds {[s[0] for s in shapes]} images, expected {list(sizes)}")
        counts = [int(np.prod(shape)) for shape in shapes]
        if path.stat().st_size != sum(counts):
            raise ValueError(f"{path.stat().st_size} bytes, expected {sum(counts)} (truncated?)")
        pixels = torch.from_file(str(path), shared=False, size=sum(counts), dtype=torch.uint8)
        train, test = pixels[: counts[0]].view(shapes[0]), pixels[counts[0] :].view(shapes[1])
        if [_crcs(train), _crcs(test)] != header["crc32"]:
            raise ValueError("its pixels do not match their checksums (corrupt)")
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
        log.warning("ignoring the image cache %s (%s); decoding the images again", path, err)
        return None
    return train, test


def _write_cache(path: Path, key: str, images: Images) -> None:
    """Write the pixels, then the header that makes them valid (each file atomically)."""
    arrays = [x.contiguous().numpy() for x in images]
    header = {
        "version": _CACHE_VERSION,
        "key": key,
        "shapes": [list(x.shape) for x in images],
        "crc32": [_crcs(x) for x in images],
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, [a.data.cast("B") for a in arrays])
        _write_atomically(path.with_suffix(".json"), [json.dumps(header).encode()])
        log.info("cached the decoded images in %s", path)
    except OSError as err:
        log.warning("cannot write the image cache %s (%s); continuing without it", path, err)


def _write_atomically(path: Path, parts: Sequence[bytes | memoryview]) -> None:
    """Write ``parts`` one after the other into ``path`` through a temporary file."""
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
        try:
            for part in parts:
                tmp.write(part)
        except OSError:
            Path(tmp.name).unlink(missing_ok=True)
            raise
    os.replace(tmp.name, path)


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
    path = cache_dir() / f"{name}-{key}.u8"
    cached = _read_cache(path, key, sizes)
    if cached is not None:
        log.info("loaded the %s images from the cache %s", name, path)
        return cached
    start = time.perf_counter()
    images = decode()
    seconds = time.perf_counter() - start
    count = sum(len(x) for x in images)
    log.info(
        "decoded %d %s images in %.1f s (%.0f images/s on %d cores)",
        count, name, seconds, count / max(seconds, 1e-9), usable_cores(),
    )  # fmt: skip
    _write_cache(path, key, images)
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
        train_x = decode_files(train_files, size, resize=True, desc=f"decoding {base.name} train")
        return train_x, decode_files(val_files, size, resize=True, desc=f"decoding {base.name} val")

    key = cache_key(base, train_files + val_files, f"imagefolder size={size}")
    train_x, val_x = cached_decode("imagefolder", key, decode, (len(train_files), len(val_files)))
    train, test = ImageSet(train_x, train_y), ImageSet(val_x, val_y)
    log.info(
        "loaded %s: %d train, %d val images, %d classes", base, len(train), len(test), len(classes)
    )
    return TrainTest(train, test, classes)
