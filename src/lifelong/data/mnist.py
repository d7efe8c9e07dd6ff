"""MNIST-family and scikit-learn digits loaders.

MNIST and Fashion-MNIST are read from torchvision's on-disk layout (``<root>/MNIST/raw`` or
``<root>/FashionMNIST/raw``), either the ``.gz`` files as downloaded or the unpacked IDX files,
without writing anything next to them (so a read-only copy works). ``download=True`` asks
torchvision to fetch the files first, for users with internet.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from pathlib import Path

import numpy as np
import torch

from lifelong.data.tensors import ImageSet, TrainTest
from lifelong.errors import DataError

log = logging.getLogger(__name__)

MNIST_CLASSES = tuple(str(i) for i in range(10))
FMNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
_IDX_DTYPES = {0x08: np.uint8}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) as used by MNIST.

    Raises:
        DataError: if the file is truncated or not an IDX uint8 file.
    """
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise DataError(
            f"cannot read {path}: {err}; the file is corrupt or truncated, delete it and "
            "download it again (--download)"
        ) from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX uint8 file; delete it and download it again")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise DataError(
            f"{path} is truncated or corrupt ({len(raw)} bytes, expected {expected}); delete it "
            "and download it again (--download)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find(raw_dir: Path, stem: str) -> Path:
    for candidate in (raw_dir / stem, raw_dir / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    raise DataError(
        f"missing {stem}(.gz) in {raw_dir}; pass --data-root pointing at the folder that holds "
        f"{raw_dir.parent.name}/raw, or add --download to fetch it"
    )


def _load_idx_pair(raw_dir: Path, prefix: str, num_classes: int) -> ImageSet:
    """Images (N, H, W) and labels (N,) of one split, checked against the format."""
    images_path = _find(raw_dir, f"{prefix}-images-idx3-ubyte")
    labels_path = _find(raw_dir, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise DataError(f"{images_path} holds {images.ndim}-D data, not (N, H, W) images")
    if labels.ndim != 1:
        raise DataError(f"{labels_path} holds {labels.ndim}-D data, not (N,) labels")
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{raw_dir}: {images.shape[0]} images but {labels.shape[0]} labels")
    if labels.size and int(labels.max()) >= num_classes:
        raise DataError(
            f"{labels_path} has label {int(labels.max())}, outside 0..{num_classes - 1}: the file "
            "is corrupt; delete it and download it again (--download)"
        )
    x = torch.from_numpy(images.copy()).unsqueeze(1)
    return ImageSet(x, torch.from_numpy(labels.astype(np.int64)))


def _download(base: Path, folder: str) -> None:
    """Fetch the four IDX files with torchvision; any failure is one DataError line."""
    from torchvision import datasets

    tv_class = datasets.MNIST if folder == "MNIST" else datasets.FashionMNIST
    try:
        tv_class(root=str(base), train=True, download=True)
    except (OSError, RuntimeError, EOFError, ValueError) as err:
        reason = " ".join(f"{type(err).__name__}: {err}".split())
        raise DataError(
            f"cannot download {folder} into {base}: {reason}; fetch the four IDX files "
            f"({', '.join(url for url in tv_class.mirrors)}) by hand into {base / folder / 'raw'} "
            "and run again without --download"
        ) from err


def _load_mnist_like(root: str, folder: str, download: bool, classes: tuple[str, ...]) -> TrainTest:
    raw_dir = Path(root).expanduser() / folder / "raw"
    if download:
        _download(Path(root).expanduser(), folder)
    if not raw_dir.is_dir():
        raise DataError(
            f"{folder} not found: looked in {raw_dir}; pass --data-root DIR where DIR/{folder}/raw "
            "holds the four IDX files (torchvision's layout), or add --download to fetch them"
        )
    train = _load_idx_pair(raw_dir, "train", len(classes))
    test = _load_idx_pair(raw_dir, "t10k", len(classes))
    log.info("loaded %s: %d train, %d test images from %s", folder, len(train), len(test), raw_dir)
    return TrainTest(train, test, classes)


def load_mnist(root: str, download: bool = False) -> TrainTest:
    """Load MNIST (60,000 / 10,000 28×28 grey images)."""
    return _load_mnist_like(root, "MNIST", download, MNIST_CLASSES)


def load_fmnist(root: str, download: bool = False) -> TrainTest:
    """Load Fashion-MNIST (60,000 / 10,000 28×28 grey images)."""
    return _load_mnist_like(root, "FashionMNIST", download, FMNIST_CLASSES)


def load_digits(root: str = "", download: bool = False) -> TrainTest:
    """Load scikit-learn's bundled 8×8 digits (1,797 images), split 80/20 per class.

    The data ship with scikit-learn, so this works offline; ``root`` and ``download`` are ignored.
    Pixel values 0..16 are rescaled to 0..255. The split is fixed (stratified, seed 0).
    """
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    test_mask = np.zeros(len(labels), dtype=bool)
    for c in range(10):
        members = order[labels[order] == c]
        test_mask[members[: len(members) // 5]] = True
    x = torch.from_numpy(images).unsqueeze(1)
    y = torch.from_numpy(labels)
    mask = torch.from_numpy(test_mask)
    return TrainTest(ImageSet(x[~mask], y[~mask]), ImageSet(x[mask], y[mask]), MNIST_CLASSES)
