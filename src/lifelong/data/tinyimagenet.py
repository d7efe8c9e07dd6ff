"""Tiny-ImageNet loader (64×64 colour images), for the full 200 classes or any subset of them.

The official layout is read, either ``<root>/tiny-imagenet-200/`` or ``<root>`` itself:
``wnids.txt``, ``words.txt``, ``train/<wnid>/images/*.JPEG``, ``val/images/*.JPEG`` and
``val/val_annotations.txt`` (tab-separated: file name, wnid, bounding box). The classes are the
wnids listed in ``wnids.txt`` that have a train folder, sorted and labelled 0..C-1; the test split
is the val images of those classes (the official test split has no labels). Decoded images are
cached (see :mod:`lifelong.data.imagefolder`), so only the first load decodes the JPEGs.
``download=True`` fetches and unpacks the official zip when the folder is missing.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import torch

from lifelong.data.imagefolder import (
    Images,
    cache_key,
    cached_decode,
    decode_files,
    list_images,
)
from lifelong.data.tensors import ImageSet, TrainTest
from lifelong.errors import DataError

log = logging.getLogger(__name__)

TINY_IMAGENET_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
_FOLDER = "tiny-imagenet-200"
_SIZE = 64


def _locate(base: Path) -> Path:
    for candidate in (base / _FOLDER, base):
        if (candidate / "wnids.txt").is_file():
            return candidate
    raise DataError(
        f"Tiny-ImageNet not found: looked for wnids.txt in {base / _FOLDER} and {base}; pass "
        f"--data-root DIR where DIR/{_FOLDER} is the unpacked {TINY_IMAGENET_URL}, or add "
        "--download to fetch it"
    )


def _download(base: Path) -> None:
    """Fetch the official zip into ``base`` and unpack it, unless the dataset is already there."""
    if (base / _FOLDER / "wnids.txt").is_file() or (base / "wnids.txt").is_file():
        return
    base.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s into %s (about 240 MB)", TINY_IMAGENET_URL, base)
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        archive = Path(tmp) / f"{_FOLDER}.zip"
        try:
            with (
                urllib.request.urlopen(TINY_IMAGENET_URL, timeout=60) as response,
                archive.open("wb") as out,
            ):
                shutil.copyfileobj(response, out, length=1 << 20)
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(tmp)
            os.replace(Path(tmp) / _FOLDER, base / _FOLDER)
        except (OSError, zipfile.BadZipFile) as err:
            raise DataError(
                f"cannot download Tiny-ImageNet from {TINY_IMAGENET_URL} into {base}: {err}; "
                "download and unzip it by hand, then pass --data-root"
            ) from err


def _read_lines(path: Path) -> list[str]:
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(
            f"cannot read {path}: {err}; download Tiny-ImageNet again ({TINY_IMAGENET_URL})"
        ) from err


def _class_names(directory: Path, wnids: list[str]) -> tuple[str, ...]:
    """First human-readable name of each wnid from ``words.txt`` (the wnid if not listed)."""
    words: dict[str, str] = {}
    path = directory / "words.txt"
    if path.is_file():
        wanted = set(wnids)
        for line in _read_lines(path):
            wnid, _, names = line.partition("\t")
            if wnid in wanted and names.strip():
                words[wnid] = names.split(",")[0].strip()
    return tuple(words.get(w, w) for w in wnids)


def _train_files(directory: Path, wnids: list[str]) -> tuple[list[Path], torch.Tensor]:
    files: list[Path] = []
    labels: list[int] = []
    for label, wnid in enumerate(wnids):
        images_dir = directory / "train" / wnid / "images"
        found = list_images(images_dir) if images_dir.is_dir() else []
        if not found:
            raise DataError(f"no images in {images_dir}; the train folder of {wnid} is incomplete")
        files += found
        labels += [label] * len(found)
    return files, torch.tensor(labels, dtype=torch.int64)


def _val_files(directory: Path, wnids: list[str]) -> tuple[list[Path], torch.Tensor]:
    annotations = directory / "val" / "val_annotations.txt"
    if not annotations.is_file():
        raise DataError(
            f"missing {annotations}; the val split is incomplete, download Tiny-ImageNet again "
            f"({TINY_IMAGENET_URL})"
        )
    label_of = {wnid: i for i, wnid in enumerate(wnids)}
    files: list[Path] = []
    labels: list[int] = []
    for number, line in enumerate(_read_lines(annotations), start=1):
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise DataError(f"{annotations} line {number} is not 'file<TAB>wnid...': {line!r}")
        if fields[1] in label_of:
            path = directory / "val" / "images" / fields[0]
            if not path.is_file():
                raise DataError(f"{annotations} line {number} names {path}, which is missing")
            files.append(path)
            labels.append(label_of[fields[1]])
    if not files:
        raise DataError(f"{annotations} lists no val image of the {len(wnids)} classes found")
    return files, torch.tensor(labels, dtype=torch.int64)


def _find_wnids(directory: Path) -> list[str]:
    listed = [w for w in _read_lines(directory / "wnids.txt") if w]
    wnids = sorted({w for w in listed if (directory / "train" / w).is_dir()})
    if not wnids:
        raise DataError(
            f"none of the {len(listed)} classes in {directory / 'wnids.txt'} has a folder in "
            f"{directory / 'train'}; unpack the full archive ({TINY_IMAGENET_URL})"
        )
    return wnids


def load_tiny_imagenet(root: str, download: bool = False, size: int = _SIZE) -> TrainTest:
    """Load Tiny-ImageNet, or the subset of its classes that is present.

    Args:
        root: Folder holding ``tiny-imagenet-200/``, or that folder itself.
        download: Fetch and unpack the official zip first if the dataset is missing.
        size: Side length of the returned images; other than 64, images are resized once, when
            decoded (e.g. 32 for a CPU-sized benchmark).

    Returns:
        The train split and the val split (as test), uint8 (N, 3, 64, 64) images, and the class
        names (first name from ``words.txt``) in sorted-wnid order.

    Raises:
        DataError: if the dataset is missing or incomplete, or an image cannot be decoded.
    """
    base = Path(root).expanduser()
    if download:
        _download(base)
    directory = _locate(base)
    wnids = _find_wnids(directory)
    names = _class_names(directory, wnids)
    train_files, train_y = _train_files(directory, wnids)
    val_files, val_y = _val_files(directory, wnids)

    def decode() -> Images:
        resize = size != _SIZE
        train_x = decode_files(train_files, size, resize=resize)
        return train_x, decode_files(val_files, size, resize=resize)

    listing = [directory / "wnids.txt", directory / "val" / "val_annotations.txt"]
    described = f"tiny-imagenet wnids={wnids} size={size}"
    key = cache_key(directory, listing + train_files + val_files, described)
    train_x, val_x = cached_decode("tinyimagenet", key, decode, (len(train_files), len(val_files)))
    train, test = ImageSet(train_x, train_y), ImageSet(val_x, val_y)
    log.info(
        "loaded Tiny-ImageNet: %d classes, %d train, %d val images from %s",
        len(wnids), len(train), len(test), directory,
    )  # fmt: skip
    return TrainTest(train, test, names)
