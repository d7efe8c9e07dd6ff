"""Tiny-ImageNet loader (64×64 colour images), for the full 200 classes or any subset of them.

The official layout is read, either ``<root>/tiny-imagenet-200/`` or ``<root>`` itself:
``wnids.txt``, ``words.txt``, ``train/<wnid>/images/*.JPEG``, ``val/images/*.JPEG`` and
``val/val_annotations.txt`` (tab-separated: file name, wnid, bounding box). The classes are the
wnids listed in ``wnids.txt`` that have a train folder, sorted and labelled 0..C-1; the test split
is the val images of those classes (the official test split has no labels). Train folders missing
from ``wnids.txt``, and listed wnids without a train folder, are named in a warning. When the
folder holds official classes, any class outside the 200 of the official release (an unofficial
mirror ships 202) is left out, with a warning naming it, so that an extra class never pushes an
official one out of a 10 x 20 split. Decoded images are
cached (see :mod:`lifelong.data.imagefolder`), so only the first load decodes the JPEGs.
``download=True`` fetches and unpacks the official zip when the folder is missing.
"""

from __future__ import annotations

import hashlib
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

TINY_IMAGENET_URL = "https://cs231n.stanford.edu/tiny-imagenet-200.zip"
TINY_IMAGENET_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
"""MD5 of the official zip (the checksum every Tiny-ImageNet downloader checks)."""
_FOLDER = "tiny-imagenet-200"
_SIZE = 64
_OFFICIAL_LIST = """
    n01443537 n01629819 n01641577 n01644900 n01698640 n01742172 n01768244 n01770393 n01774384
    n01774750 n01784675 n01855672 n01882714 n01910747 n01917289 n01944390 n01945685 n01950731
    n01983481 n01984695 n02002724 n02056570 n02058221 n02074367 n02085620 n02094433 n02099601
    n02099712 n02106662 n02113799 n02123045 n02123394 n02124075 n02125311 n02129165 n02132136
    n02165456 n02190166 n02206856 n02226429 n02231487 n02233338 n02236044 n02268443 n02279972
    n02281406 n02321529 n02364673 n02395406 n02403003 n02410509 n02415577 n02423022 n02437312
    n02480495 n02481823 n02486410 n02504458 n02509815 n02666196 n02669723 n02699494 n02730930
    n02769748 n02788148 n02791270 n02793495 n02795169 n02802426 n02808440 n02814533 n02814860
    n02815834 n02823428 n02837789 n02841315 n02843684 n02883205 n02892201 n02906734 n02909870
    n02917067 n02927161 n02948072 n02950826 n02963159 n02977058 n02988304 n02999410 n03014705
    n03026506 n03042490 n03085013 n03089624 n03100240 n03126707 n03160309 n03179701 n03201208
    n03250847 n03255030 n03355925 n03388043 n03393912 n03400231 n03404251 n03424325 n03444034
    n03447447 n03544143 n03584254 n03599486 n03617480 n03637318 n03649909 n03662601 n03670208
    n03706229 n03733131 n03763968 n03770439 n03796401 n03804744 n03814639 n03837869 n03838899
    n03854065 n03891332 n03902125 n03930313 n03937543 n03970156 n03976657 n03977966 n03980874
    n03983396 n03992509 n04008634 n04023962 n04067472 n04070727 n04074963 n04099969 n04118538
    n04133789 n04146614 n04149813 n04179913 n04251144 n04254777 n04259630 n04265275 n04275548
    n04285008 n04311004 n04328186 n04356056 n04366367 n04371430 n04376876 n04398044 n04399382
    n04417672 n04456115 n04465501 n04486054 n04487081 n04501370 n04507155 n04532106 n04532670
    n04540053 n04560804 n04562935 n04596742 n04597913 n06596364 n07579787 n07583066 n07614500
    n07615774 n07695742 n07711569 n07715103 n07720875 n07734744 n07747607 n07749582 n07753592
    n07768694 n07871810 n07873807 n07875152 n07920052 n09193705 n09246464 n09256479 n09332890
    n09428293 n12267677
"""
OFFICIAL_WNIDS = frozenset(_OFFICIAL_LIST.split())
"""The 200 wnids of the official release's ``wnids.txt`` (every 10th, sorted, is the 20-class
subset in the shared data folder)."""


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
            _check_md5(archive, TINY_IMAGENET_MD5)
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(tmp)
            os.replace(Path(tmp) / _FOLDER, base / _FOLDER)
        except (OSError, zipfile.BadZipFile) as err:
            raise DataError(
                f"cannot download Tiny-ImageNet from {TINY_IMAGENET_URL} into {base}: {err}; "
                "download and unzip it by hand, then pass --data-root"
            ) from err


def _check_md5(path: Path, expected: str) -> None:
    """Raise DataError unless the file's MD5 is ``expected`` (an altered or partial download)."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise DataError(
            f"the downloaded {path.name} has MD5 {digest.hexdigest()}, not the official "
            f"{expected}: the download is partial or altered; nothing was unpacked"
        )


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


def _listed_with_folders(directory: Path) -> list[str]:
    """The wnids of ``wnids.txt`` that have a train folder, sorted; warn about the others."""
    listed = list(dict.fromkeys(w for w in _read_lines(directory / "wnids.txt") if w))
    train = directory / "train"
    folders = {p.name for p in train.iterdir() if p.is_dir()} if train.is_dir() else set()
    unlisted = sorted(folders - set(listed))
    if unlisted:
        log.warning(
            "Tiny-ImageNet: ignoring %d train folders not listed in %s: %s",
            len(unlisted), directory / "wnids.txt", " ".join(unlisted),
        )  # fmt: skip
    missing = [w for w in listed if w not in folders]
    if missing and len(missing) < len(listed):
        log.warning(
            "Tiny-ImageNet: %d classes listed in %s have no folder in %s: %s",
            len(missing), directory / "wnids.txt", train, " ".join(missing),
        )  # fmt: skip
    if len(listed) >= len(OFFICIAL_WNIDS):  # claims to be the full set: name absent classes
        absent = sorted(OFFICIAL_WNIDS - set(listed))
        if absent:
            log.warning(
                "Tiny-ImageNet: %s lists %d classes but not these of the official 200: %s",
                directory / "wnids.txt", len(listed), " ".join(absent),
            )  # fmt: skip
    return sorted(w for w in listed if w in folders)


def _find_wnids(directory: Path) -> list[str]:
    present = _listed_with_folders(directory)
    if not present:
        raise DataError(
            f"none of the classes in {directory / 'wnids.txt'} has a folder in "
            f"{directory / 'train'}; unpack the full archive ({TINY_IMAGENET_URL})"
        )
    extra = [w for w in present if w not in OFFICIAL_WNIDS]
    if extra and len(extra) < len(present):
        log.warning(
            "Tiny-ImageNet: leaving out %d classes of %s that are not among the 200 official "
            "ones (an unofficial copy): %s",
            len(extra), directory, " ".join(extra),
        )  # fmt: skip
        return [w for w in present if w in OFFICIAL_WNIDS]
    return present


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
        train_x = decode_files(train_files, size, resize=resize, desc="decoding Tiny-ImageNet")
        return train_x, decode_files(val_files, size, resize=resize, desc="decoding its val")

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
