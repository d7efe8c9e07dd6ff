"""CORe50 from its official files, and its NI, NC, NIC and NICv2 streams.

CORe50: Lomonaco & Maltoni, "CORe50: a New Dataset and Benchmark for Continuous Object
Recognition", CoRL 2017 (50 objects, 11 sessions, 128×128 RGB video frames; NI, NC and NIC
scenarios). NICv2 (79, 196 and 391 batches): Lomonaco, Maltoni & Pellegrini, "Rehearsal-Free
Continual Learning over Small Non-I.I.D. Batches", CVPR-W 2020, and the latent-replay reference
code (``vlomonaco/ar1-pytorch``'s ``data_loader.CORE50``).

The dataset folder (``<root>/core50`` or ``<root>`` itself) holds the official tables
``paths.pkl`` (relative image paths such as ``s1/o1/C_01_01_000.png``), ``LUP.pkl``
(``LUP[scenario][run][batch]``: image indices; the last entry is the test set) and
``labels.pkl`` (``labels[scenario][run][batch]``), and the images, either ``core50_imgs.npz``
(array ``x``, N×128×128×3 uint8 in ``paths.pkl`` order; read in chunks, never whole) or the
unzipped folder ``core50_128x128/``. The tables are pickles, so they are read with
:mod:`lifelong.data.safe_pickle`: plain containers, strings and numbers, plus numpy arrays and
scalars in case a table holds them (the globals CIFAR already allows; we could not inspect the
real files offline). Any other global, ``os.system`` say, is refused before it is imported.

Labels are ``labels.pkl``'s (object id − 1 in NICv2, spec §1); class names come from each
label's object folder (``o1`` … ``o50``), as the official ``from_labels_to_names.py`` does,
because some scenarios' tables may number the objects differently. The test set is the last
table entry keeping every ``test_subsample``-th image (20: the reference's 2,249 images).
Images stay uint8 in memory and are normalised on the device with the ImageNet statistics, no
augmentation, as in the reference. The decoded (and optionally resized) images of one scenario,
run and size are cached (see :mod:`lifelong.data.imagefolder`), like the reference's ``.bin``.
"""

from __future__ import annotations

import itertools
import logging
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import torch

from lifelong.data.core50_download import IMAGE_FOLDER, IMAGES_URL, NPZ, TABLES_URL, download_core50
from lifelong.data.imagefolder import Images, cache_key, cached_decode, decode_files
from lifelong.data.nic import shared_test_experiences
from lifelong.data.safe_pickle import BYTES_GLOBALS, NUMPY_ARRAY_GLOBALS, safe_load
from lifelong.data.scenarios import DatasetConfig
from lifelong.data.stream import Stream
from lifelong.data.tensors import ImageSet
from lifelong.data.transforms import ImageTransform
from lifelong.errors import ConfigError, DataError

log = logging.getLogger(__name__)

SCENARIO_BATCHES = {"ni": 8, "nc": 9, "nic": 79, "nicv2_79": 79, "nicv2_196": 196, "nicv2_391": 391}
"""Training batches of each official scenario (the tables hold one more entry: the test set)."""
NUM_CLASSES = 50
CORE50 = ImageTransform((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
"""ImageNet mean and std, no augmentation (the reference's ``preprocess_imgs``)."""
_KINDS = "plug_adapter mobile_phone scissor light_bulb can glass ball marker cup remote_control"
OBJECT_NAMES = tuple(f"{kind}{i}" for kind in _KINDS.split() for i in range(1, 6))
"""Names of objects o1..o50 (the official ``core50_class_names.txt``)."""
PICKLE_GLOBALS = NUMPY_ARRAY_GLOBALS | BYTES_GLOBALS
"""What the tables may reference: numpy arrays and scalars only (see the module docstring)."""

_TABLES = ("paths.pkl", "LUP.pkl", "labels.pkl")
_OBJECT = re.compile(r"(?:^|/)o(\d+)/")
_CHUNK = 1024
"""Images decoded and resized at a time."""


@dataclass(frozen=True)
class Core50:
    """One scenario and run of CORe50, in memory.

    Attributes:
        batches: The training batches in the table's order (views of one tensor).
        test: The (sub-sampled) test set.
        class_names: Object name of each label 0..49.
    """

    batches: tuple[ImageSet, ...]
    test: ImageSet
    class_names: tuple[str, ...]


@dataclass(frozen=True)
class _Tables:
    paths: list[str]
    batches: list[np.ndarray]
    labels: list[np.ndarray]
    test: np.ndarray
    test_labels: np.ndarray


def _locate(base: Path) -> Path:
    for candidate in (base / "core50", base):
        if all((candidate / name).is_file() for name in _TABLES):
            return candidate
    raise DataError(
        f"CORe50 not found: looked for {', '.join(_TABLES)} in {base / 'core50'} and {base}; "
        f"pass --download to fetch them, or download them from {TABLES_URL} and {NPZ} (or "
        f"{IMAGE_FOLDER}.zip, unzipped) from {IMAGES_URL} into DIR/core50, then pass "
        "--data-root DIR"
    )


def _int_array(value: object, where: str) -> np.ndarray:
    """A table entry as a 1-D int64 array (lists of ints or numpy integer arrays)."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as err:
        raise DataError(f"{where} is not a list of integers ({err})") from err
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise DataError(f"{where} is not a list of integers (got {array.dtype} {array.shape})")
    return array.astype(np.int64)


def _entries(table: object, name: str, scenario: str, run: int) -> list[np.ndarray]:
    """``table[scenario][run]`` as int64 arrays, checked against the official batch count."""
    if not isinstance(table, dict):
        raise DataError(f"{name} is not a CORe50 table (a dict by scenario); download it again")
    if scenario not in table:
        raise DataError(f"{name} has no scenario {scenario!r} (it has {sorted(map(str, table))})")
    runs = table[scenario]
    if not isinstance(runs, (list, tuple)):
        raise DataError(f"{name}[{scenario!r}] is not a list of runs; download it again")
    if run >= len(runs):
        raise ConfigError(f"dataset.run must be below {len(runs)} for CORe50 {scenario}, got {run}")
    entries = runs[run]
    expected = SCENARIO_BATCHES[scenario] + 1
    if not isinstance(entries, (list, tuple)) or len(entries) != expected:
        count = len(entries) if isinstance(entries, (list, tuple)) else "no"
        raise DataError(
            f"{name}[{scenario!r}][{run}] has {count} entries, expected {expected} "
            f"({expected - 1} training batches and the test set); download it again"
        )
    return [_int_array(e, f"{name}[{scenario!r}][{run}][{i}]") for i, e in enumerate(entries)]


def _read_tables(directory: Path, scenario: str, run: int, test_subsample: int) -> _Tables:
    def load(name: str) -> object:
        return safe_load(directory / name, PICKLE_GLOBALS, kind="CORe50", encoding="latin1")

    paths = load("paths.pkl")
    if isinstance(paths, np.ndarray) and paths.dtype.kind == "U":
        paths = paths.tolist()
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise DataError(f"{directory / 'paths.pkl'} is not a list of image paths")
    lookup = _entries(load("LUP.pkl"), "LUP.pkl", scenario, run)
    labels = _entries(load("labels.pkl"), "labels.pkl", scenario, run)
    for i, (index, label) in enumerate(zip(lookup, labels, strict=True)):
        if len(index) != len(label):
            raise DataError(
                f"batch {i} of {scenario} run {run}: LUP.pkl lists {len(index)} images but "
                f"labels.pkl {len(label)} labels; the tables do not match, download them again"
            )
        if len(index) and (index.min() < 0 or index.max() >= len(paths)):
            raise DataError(f"LUP.pkl batch {i} indexes past the {len(paths)} paths of paths.pkl")
        if len(label) and (label.min() < 0 or label.max() >= NUM_CLASSES):
            raise DataError(f"labels.pkl batch {i} has labels outside 0..{NUM_CLASSES - 1}")
    test = np.ascontiguousarray(lookup[-1][::test_subsample])
    test_labels = np.ascontiguousarray(labels[-1][::test_subsample])
    return _Tables(paths, lookup[:-1], labels[:-1], test, test_labels)


def _class_names(tables: _Tables) -> tuple[str, ...]:
    """Each label's object name, from the object folder of its images' paths."""
    objects: dict[int, int] = {}
    indices = [*tables.batches, tables.test]
    for index, labels in zip(indices, [*tables.labels, tables.test_labels], strict=True):
        for i, label in zip(index.tolist(), labels.tolist(), strict=True):
            match = _OBJECT.search(tables.paths[i])
            if match is None:
                continue
            obj = int(match.group(1))
            if objects.setdefault(label, obj) != obj:
                raise DataError(
                    f"labels.pkl gives label {label} to objects o{objects[label]} and o{obj}; "
                    "the tables do not match each other, download them again"
                )
    names = list(OBJECT_NAMES)
    for label, obj in objects.items():
        if 1 <= obj <= NUM_CLASSES:
            names[label] = OBJECT_NAMES[obj - 1]
    return tuple(names)


def _resize(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """Resize square uint8 (N, 3, H, W) images to ``size`` (antialiased); None keeps them."""
    if size is None or x.shape[-1] == size:
        return x
    from torchvision.transforms.v2 import functional as tvf

    resized: torch.Tensor = tvf.resize(x, [size, size], antialias=True)
    return resized


def _npy_header(f: IO[bytes], npz: Path) -> tuple[int, ...]:
    """Read the header of ``x.npy`` in the npz; check it is N×H×W×3 uint8 in C order."""
    fmt = np.lib.format
    version = fmt.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = fmt.read_array_header_1_0(f)
    else:
        shape, fortran, dtype = fmt.read_array_header_2_0(f)
    if dtype != np.uint8 or fortran or len(shape) != 4 or shape[3] != 3 or shape[1] != shape[2]:
        raise DataError(
            f"{npz}: x is {dtype} {shape}, expected N×128×128×3 uint8; download {NPZ} again"
        )
    return tuple(int(s) for s in shape)


def _npz_pixels(npz: Path, n_paths: int, index: np.ndarray, size: int | None) -> torch.Tensor:
    """The images at ``index`` of the npz, streamed in chunks so only those are kept."""
    order = np.argsort(index, kind="stable")
    wanted = index[order]
    try:
        with zipfile.ZipFile(npz) as archive, archive.open("x.npy") as f:
            n, side, _, _ = _npy_header(f, npz)
            if n != n_paths:
                raise DataError(f"{npz} holds {n} images but paths.pkl lists {n_paths}")
            out = torch.empty((len(index), 3, size or side, size or side), dtype=torch.uint8)
            row, done = side * side * 3, 0
            for start in range(0, n, _CHUNK):
                if done == len(wanted):
                    break
                stop = min(n, start + _CHUNK)
                raw = f.read((stop - start) * row)
                if len(raw) != (stop - start) * row:
                    raise DataError(f"{npz} is truncated; download it again ({IMAGES_URL})")
                end = int(np.searchsorted(wanted, stop))
                block = np.frombuffer(raw, np.uint8).reshape(stop - start, side, side, 3)
                rows = torch.from_numpy(block[wanted[done:end] - start]).permute(0, 3, 1, 2)
                out[torch.from_numpy(order[done:end])] = _resize(rows.contiguous(), size)
                done = end
    except KeyError as err:
        raise DataError(f"{npz} has no array 'x'; download it again ({IMAGES_URL})") from err
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as err:
        raise DataError(f"cannot read {npz}: {err}; download it again ({IMAGES_URL})") from err
    return out


def _png_side(path: Path) -> int:
    """Width of a square PNG image, from its header."""
    try:
        with path.open("rb") as f:
            header = f.read(24)
    except OSError as err:
        raise DataError(f"cannot read {path}: {err}") from err
    if len(header) < 24 or not header.startswith(b"\x89PNG\r\n\x1a\n"):
        raise DataError(f"{path} is not a PNG image; unzip {IMAGE_FOLDER}.zip again")
    return int.from_bytes(header[16:20], "big")


def _png_pixels(files: list[Path], size: int | None) -> torch.Tensor:
    """Decode the PNG files (all of one square size) and resize them, a chunk at a time."""
    side = _png_side(files[0])
    out = torch.empty((len(files), 3, size or side, size or side), dtype=torch.uint8)
    chunks = range(0, len(files), _CHUNK)
    for number, start in enumerate(chunks, 1):
        desc = f"decoding CORe50 part {number}/{len(chunks)}"
        part = decode_files(files[start : start + _CHUNK], side, resize=False, desc=desc)
        out[start : start + len(part)] = _resize(part, size)
    return out


def _image_files(directory: Path, tables: _Tables, index: np.ndarray) -> list[Path]:
    folder = directory / IMAGE_FOLDER
    if not folder.is_dir():
        raise DataError(
            f"CORe50 images not found: looked for {directory / NPZ} and {folder}; download "
            f"{NPZ} or {IMAGE_FOLDER}.zip (unzip it there) from {IMAGES_URL}"
        )
    files = [folder / tables.paths[i] for i in index.tolist()]
    missing = next((f for f in files if not f.is_file()), None)
    if missing is not None:
        raise DataError(f"missing {missing}; unzip {IMAGE_FOLDER}.zip again ({IMAGES_URL})")
    return files


def load_core50(
    root: str,
    scenario: str = "nicv2_391",
    run: int = 0,
    size: int | None = None,
    test_subsample: int = 20,
) -> Core50:
    """Load one scenario and run of CORe50 from the official tables and images.

    Args:
        root: Folder holding ``core50/`` with the official files, or that folder itself.
        scenario: ``ni``, ``nc``, ``nic``, ``nicv2_79``, ``nicv2_196`` or ``nicv2_391``.
        run: The official batch order, 0..9.
        size: Side length of the returned images (None: the native 128); resized once, when
            decoded, e.g. 64 or 32 for a CPU run.
        test_subsample: Keep every k-th image of the test set (20 as the reference; 1: all).

    Returns:
        The training batches in table order, the test set and the class names; images uint8
        (N, 3, size, size), labels int64 in 0..49.

    Raises:
        ConfigError: for an unknown scenario or a run the tables do not have.
        DataError: if a file is missing, truncated, corrupt or tampered with.
    """
    if scenario not in SCENARIO_BATCHES:
        raise ConfigError(f"unknown CORe50 scenario {scenario!r}: use one of {SCENARIO_BATCHES}")
    directory = _locate(Path(root).expanduser())
    tables = _read_tables(directory, scenario, run, test_subsample)
    index = np.concatenate([*tables.batches, tables.test])
    n_train = len(index) - len(tables.test)
    npz = directory / NPZ
    use_npz = npz.is_file()
    files = [npz] if use_npz else _image_files(directory, tables, index)

    def decode() -> Images:
        if use_npz:
            x = _npz_pixels(npz, len(tables.paths), index, size)
        else:
            x = _png_pixels(files, size)
        return x[:n_train], x[n_train:].clone()

    settings = f"core50 {scenario} run={run} size={size} test_subsample={test_subsample}"
    key = cache_key(directory, [directory / name for name in _TABLES] + files, settings)
    train_x, test_x = cached_decode("core50", key, decode, (n_train, len(tables.test)))
    train_y = torch.from_numpy(np.concatenate(tables.labels))
    bounds = np.cumsum([0] + [len(b) for b in tables.batches]).tolist()
    batches = tuple(ImageSet(train_x[a:b], train_y[a:b]) for a, b in itertools.pairwise(bounds))
    test = ImageSet(test_x, torch.from_numpy(tables.test_labels))
    log.info(
        "loaded CORe50 %s run %d: %d batches, %d train and %d test images from %s",
        scenario, run, len(batches), n_train, len(test), directory,
    )  # fmt: skip
    return Core50(batches, test, _class_names(tables))


def core50_scenario(scenario: str) -> Callable[[DatasetConfig, int], Stream]:
    """A scenario builder: one experience per training batch of ``scenario``'s table.

    Every experience is evaluated on the one shared test set, over all 50 classes (see
    :mod:`lifelong.data.nic` for why the setting is ``gcil``). ``dataset.run`` picks the
    official batch order, ``dataset.image_size`` resizes, ``dataset.test_subsample`` thins the
    test set.
    """
    name = "core50-" + scenario.replace("_", "-")

    def build(cfg: DatasetConfig, seed: int) -> Stream:
        if cfg.download:
            download_core50(Path(cfg.root).expanduser())
        data = load_core50(cfg.root, scenario, cfg.run, cfg.image_size, cfg.test_subsample or 20)
        experiences = shared_test_experiences(data.batches, data.test)
        return Stream(name, experiences, NUM_CLASSES, "gcil", CORE50, data.class_names)

    return build
