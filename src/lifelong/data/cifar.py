"""CIFAR-10 and CIFAR-100 loaders.

The files are read from torchvision's on-disk layout, the official "python version" archives
unpacked: ``<root>/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}`` and
``<root>/cifar-100-python/{train,test,meta}``. They are pickles of dicts holding a ``b"data"``
N×3072 uint8 array (channel-major: 1024 red, 1024 green, 1024 blue values per image, each row by
row) and the labels; they are read with :func:`lifelong.data.safe_pickle.safe_load`, which refuses
any global other than numpy's array reconstruction. Nothing is written next to the files, so a
read-only copy works. ``download=True`` asks torchvision to fetch and unpack them first.
"""

from __future__ import annotations

import logging
import tarfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from lifelong.data.safe_pickle import BYTES_GLOBALS, NUMPY_ARRAY_GLOBALS, safe_load
from lifelong.data.tensors import ImageSet, TrainTest
from lifelong.errors import DataError

log = logging.getLogger(__name__)

CIFAR_ALLOWED_GLOBALS = NUMPY_ARRAY_GLOBALS | BYTES_GLOBALS
_PIXELS = 3 * 32 * 32


def _corrupt(path: Path, what: str) -> DataError:
    return DataError(
        f"{path} is corrupt or truncated ({what}); delete it and download it again (--download)"
    )


def _read_dict(path: Path, folder: str) -> dict[bytes, object]:
    if not path.is_file():
        raise DataError(
            f"missing {path.name} in {path.parent}; pass --data-root DIR where DIR/{folder} holds "
            "the unpacked python-version CIFAR files, or add --download to fetch them"
        )
    content = safe_load(path, CIFAR_ALLOWED_GLOBALS, kind="CIFAR")
    if not isinstance(content, dict):
        raise _corrupt(path, f"expected a dict, found {type(content).__name__}")
    return content


def _read_batch(path: Path, folder: str, label_key: bytes, num_classes: int) -> ImageSet:
    """Read one data pickle into an :class:`ImageSet` of (N, 3, 32, 32) images."""
    content = _read_dict(path, folder)
    data = content.get(b"data")
    labels = content.get(label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise _corrupt(path, "b'data' is not a 2-D uint8 array")
    if data.shape[1] != _PIXELS:
        raise _corrupt(path, f"rows of {data.shape[1]} values, expected {_PIXELS}")
    if not isinstance(labels, Sequence | np.ndarray):
        raise _corrupt(path, f"no {label_key!r} list")
    try:
        y = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as err:
        raise _corrupt(path, f"{label_key!r} are not integers") from err
    if y.shape != (data.shape[0],):
        raise _corrupt(path, f"{data.shape[0]} images but {y.size} labels")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise _corrupt(path, f"labels outside 0..{num_classes - 1}")
    x = torch.from_numpy(np.array(data, copy=True).reshape(-1, 3, 32, 32))
    return ImageSet(x, torch.from_numpy(y.copy()))


def _read_names(path: Path, folder: str, key: bytes, num_classes: int) -> tuple[str, ...]:
    names = _read_dict(path, folder).get(key)
    if not isinstance(names, list) or len(names) != num_classes:
        raise _corrupt(path, f"{key!r} is not a list of {num_classes} names")
    return tuple(n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names)


def _check_folder(base: Path, folder: str, dataset: str) -> Path:
    directory = base / folder
    if not directory.is_dir():
        raise DataError(
            f"{dataset} not found: looked in {directory}; pass --data-root DIR where DIR/{folder} "
            "holds the unpacked python-version files (torchvision's layout), or add --download "
            "to fetch them"
        )
    return directory


def _download(base: Path, dataset: str) -> None:
    """Fetch and unpack the official archive with torchvision, unless its files are there.

    Raises:
        DataError: if the download, the archive's md5 check or the unpacking fails (no network,
            a partial or altered archive), naming the folder and how to get the files by hand.
    """
    from torchvision import datasets
    from torchvision.datasets.utils import check_integrity

    tv_class = datasets.CIFAR10 if dataset == "CIFAR-10" else datasets.CIFAR100
    log.info("downloading %s into %s (if not already there)", dataset, base)
    try:
        tv_class(root=str(base), train=True, download=True)
    except (OSError, RuntimeError, EOFError, tarfile.TarError) as err:
        archive = base / tv_class.filename
        reason = f"{type(err).__name__}: {' '.join(str(err).split())}"
        if archive.is_file() and not check_integrity(str(archive), tv_class.tgz_md5):
            reason = (
                f"{archive} does not match its official md5 checksum (a partial or altered "
                f"download; delete it), and no good copy could be fetched ({reason})"
            )
        raise DataError(
            f"cannot download {dataset} into {base}: {reason}; download {tv_class.url} by hand, "
            f"unpack it into {base} (giving {base / tv_class.base_folder}/) and run again "
            "without --download"
        ) from err


def load_cifar10(root: str, download: bool = False) -> TrainTest:
    """Load CIFAR-10 (50,000 train / 10,000 test 32×32 colour images, 10 classes).

    Args:
        root: Folder holding ``cifar-10-batches-py/``.
        download: Fetch and unpack the archive with torchvision first if it is missing.

    Returns:
        The train and test splits as uint8 (N, 3, 32, 32) images, and the 10 class names.

    Raises:
        DataError: if the folder or a file is missing, corrupt, truncated or not a CIFAR file.
    """
    base = Path(root).expanduser()
    folder = "cifar-10-batches-py"
    if download:
        _download(base, "CIFAR-10")
    directory = _check_folder(base, folder, "CIFAR-10")
    names = _read_names(directory / "batches.meta", folder, b"label_names", 10)
    parts = [_read_batch(directory / f"data_batch_{i}", folder, b"labels", 10) for i in range(1, 6)]
    train = ImageSet.concat(parts)
    test = _read_batch(directory / "test_batch", folder, b"labels", 10)
    log.info("loaded CIFAR-10: %d train, %d test images from %s", len(train), len(test), directory)
    return TrainTest(train, test, names)


def load_cifar100(root: str, download: bool = False) -> TrainTest:
    """Load CIFAR-100 (50,000 train / 10,000 test 32×32 colour images, 100 fine classes).

    Args:
        root: Folder holding ``cifar-100-python/``.
        download: Fetch and unpack the archive with torchvision first if it is missing.

    Returns:
        The train and test splits as uint8 (N, 3, 32, 32) images labelled with the fine labels,
        and the 100 fine class names.

    Raises:
        DataError: if the folder or a file is missing, corrupt, truncated or not a CIFAR file.
    """
    base = Path(root).expanduser()
    folder = "cifar-100-python"
    if download:
        _download(base, "CIFAR-100")
    directory = _check_folder(base, folder, "CIFAR-100")
    names = _read_names(directory / "meta", folder, b"fine_label_names", 100)
    train = _read_batch(directory / "train", folder, b"fine_labels", 100)
    test = _read_batch(directory / "test", folder, b"fine_labels", 100)
    log.info("loaded CIFAR-100: %d train, %d test images from %s", len(train), len(test), directory)
    return TrainTest(train, test, names)
