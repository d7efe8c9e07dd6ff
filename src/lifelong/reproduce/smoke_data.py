"""Tiny datasets in the official on-disk formats, and the settings of a smoke run.

``lifelong reproduce --smoke`` runs a row's preset for a few iterations on files this module
writes: a few random images per class as torchvision's MNIST IDX files, the CIFAR-10/100 Python
pickles, the Tiny-ImageNet folder layout (JPEG) and CORe50's tables with ``core50_imgs.npz``. The
real loaders read them, so a smoke run checks the preset, the scenario, the loader, the method
and the loop together, in seconds and without any download. The numbers it prints mean nothing.
"""

from __future__ import annotations

import gzip
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lifelong.config import Raw
from lifelong.errors import ConfigError

SMOKE_ITERS = 2
"""Iterations per experience of a smoke run."""
SIDE_CORE50 = 32
"""Side of the tiny CORe50 images (MobileNetV1 needs 32 pixels)."""


def _idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes(), compresslevel=1))


def write_mnist(root: Path, folder: str = "MNIST") -> None:
    """``root/MNIST/raw/*.gz``: 6 training and 2 test images of each digit."""
    rng = np.random.default_rng(0)
    for prefix, per_class in (("train", 6), ("t10k", 2)):
        labels = np.repeat(np.arange(10), per_class)
        _idx(
            root / folder / "raw" / f"{prefix}-images-idx3-ubyte.gz",
            rng.integers(0, 256, (len(labels), 28, 28)),
        )
        _idx(root / folder / "raw" / f"{prefix}-labels-idx1-ubyte.gz", labels)


def _pickle(path: Path, content: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(content, protocol=2))


def write_cifar10(root: Path) -> None:
    """``root/cifar-10-batches-py``: 5 training batches of one image per class, one test batch."""
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (10, 3072), dtype=np.uint8)
        _pickle(folder / name, {b"labels": list(range(10)), b"data": data})
    names = [f"class{c}".encode() for c in range(10)]
    _pickle(folder / "batches.meta", {b"label_names": names})


def write_cifar100(root: Path) -> None:
    """``root/cifar-100-python``: 3 training images and 1 test image of each class."""
    rng = np.random.default_rng(0)
    folder = root / "cifar-100-python"
    for split, count in (("train", 3), ("test", 1)):
        labels = [c for c in range(100) for _ in range(count)]
        data = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
        content = {
            b"fine_labels": labels,
            b"coarse_labels": [c // 5 for c in labels],
            b"data": data,
        }
        _pickle(folder / split, content)
    _pickle(folder / "meta", {b"fine_label_names": [f"class{c}".encode() for c in range(100)]})


def write_tiny_imagenet(root: Path) -> None:
    """``root/tiny-imagenet-200``: 10 classes, 2 training and 1 validation JPEG each (64 px)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    base = root / "tiny-imagenet-200"
    wnids = [f"n{1000000 + c:08d}" for c in range(10)]
    (base / "val" / "images").mkdir(parents=True, exist_ok=True)
    (base / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (base / "words.txt").write_text("\n".join(f"{w}\tclass {c}" for c, w in enumerate(wnids)))

    def jpeg(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path, "JPEG")

    lines = []
    for c, wnid in enumerate(wnids):
        for k in range(2):
            jpeg(base / "train" / wnid / "images" / f"{wnid}_{k}.JPEG")
        (base / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        jpeg(base / "val" / "images" / f"val_{c}.JPEG")
        lines.append(f"val_{c}.JPEG\t{wnid}\t0\t0\t63\t63")
    (base / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")


def write_core50(root: Path) -> None:
    """``root/core50``: NICv2-391's tables (run 0) and ``core50_imgs.npz``, 2 images a batch."""
    rng = np.random.default_rng(0)
    first = [(1, o) for o in range(1, 51, 5) for _ in range(2)]
    later = [[(2 + b % 8, 1 + int(rng.integers(50)))] * 2 for b in range(390)]
    test = [(3, 1 + i % 50) for i in range(101)]
    entries = [first, *later, test]
    paths: list[str] = []
    lookup: list[list[int]] = []
    labels: list[list[int]] = []
    for entry in entries:
        lookup.append(list(range(len(paths), len(paths) + len(entry))))
        labels.append([obj - 1 for _, obj in entry])
        paths += [
            f"s{s}/o{o}/C_{s:02d}_{o:02d}_{len(paths) + k:05d}.png"
            for k, (s, o) in enumerate(entry)
        ]
    folder = root / "core50"
    _pickle(folder / "paths.pkl", paths)
    _pickle(folder / "LUP.pkl", {"nicv2_391": [lookup]})
    _pickle(folder / "labels.pkl", {"nicv2_391": [labels]})
    images = rng.integers(0, 256, (len(paths), SIDE_CORE50, SIDE_CORE50, 3), dtype=np.uint8)
    np.savez(folder / "core50_imgs.npz", x=images)


WRITERS: dict[str, Callable[[Path], None]] = {
    "seq-mnist": write_mnist,
    "perm-mnist": write_mnist,
    "rot-mnist": write_mnist,
    "mnist-360": write_mnist,
    "split-mnist-domain": write_mnist,
    "seq-fmnist": lambda root: write_mnist(root, "FashionMNIST"),
    "seq-cifar10": write_cifar10,
    "seq-cifar100": write_cifar100,
    "gcil-cifar100": write_cifar100,
    "gcil-cifar100-longtail": write_cifar100,
    "seq-tinyimg": write_tiny_imagenet,
    "core50-nicv2-391": write_core50,
    "seq-digits": lambda root: None,
}
"""How to write each scenario's tiny data (a scenario missing here cannot be smoke-run)."""


def write_tiny_data(root: Path, scenario: str) -> Path:
    """Write the tiny files of ``scenario`` under ``root`` (once per folder); return ``root``."""
    writer = WRITERS.get(scenario)
    if writer is None:
        raise ConfigError(
            f"--smoke has no tiny data for scenario {scenario!r} "
            f"(it has: {', '.join(sorted(WRITERS))}); add a writer in lifelong.reproduce.smoke_data"
        )
    marker = root / f".written-{scenario}"
    if not marker.exists():
        writer(root)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    return root


METHOD_FIELDS: dict[str, dict[str, Any]] = {
    "gdumb": {"method.epochs_on_memory": 1},
    "hal": {"method.steps_on_anchors": 2},
    "bic": {"method.bias_steps": 2},
    "gss": {"train.batch_size": 10},  # one gradient per example of the batch
    "sarl": {"method.warmup_epochs": 0, "train.iters": 4},  # terms act from the second pass
    "cssl": {"method.passes": 1},
    **{
        name: {"method.simclr_num_aug": 2, "method.simclr_batch_size": 8}
        for name in ("xder", "xder_rpc", "xder_ce")
    },
    "ar1_star": {"train.iters": 1},  # 391 experiences
    **{name: {"train.batch_size": 16} for name in ("bir", "bir_si", "gr")},  # replays a batch
}
"""A method's own inner loops, shortened for a smoke run (by the resolved ``method.name``)."""


def smoke_overrides(config: Raw) -> list[tuple[str, Any]]:
    """Fields that make a resolved row config tiny: few iterations, narrow networks, few phases."""
    overrides: list[tuple[str, Any]] = [
        ("train.iters", SMOKE_ITERS),
        ("train.progress", False),
        ("train.evaluate_future", False),
        ("train.checkpoint_every", 100_000),  # the last experience's checkpoint only
    ]
    overrides += METHOD_FIELDS.get(str(config["method"]["name"]), {}).items()
    backbone = config.get("backbone", {})
    if "nf" in backbone:
        overrides.append(("backbone.nf", 4))
    if backbone.get("name") == "mobilenet_v1":
        overrides.append(("backbone.width", 0.25))
    if config["dataset"]["name"] == "seq-tinyimg":
        overrides.append(("dataset.image_size", 32))
    if str(config["dataset"]["name"]).startswith("gcil-"):
        overrides += [("dataset.n_experiences", 4), ("dataset.gcil_samples_per_phase", 60)]
    return overrides
