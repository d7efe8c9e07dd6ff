"""CIFAR, Tiny-ImageNet and image-folder loaders, on small files written in the official formats."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import pickle
import re
import struct
import tarfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.io import encode_jpeg, encode_png, write_file

from lifelong.data import tinyimagenet
from lifelong.data.cifar import load_cifar10, load_cifar100
from lifelong.data.imagefolder import load_image_folder
from lifelong.data.safe_pickle import BYTES_GLOBALS, NUMPY_ARRAY_GLOBALS, safe_load
from lifelong.data.tinyimagenet import load_tiny_imagenet
from lifelong.errors import DataError

SHARED_TARBALL = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "tiny-imagenet-200-sub20.tar.gz"
)
pytestmark = pytest.mark.filterwarnings(
    "ignore:The image decoding and encoding capabilities of TorchVision:DeprecationWarning"
)
CIFAR10_NAMES = [
    b"airplane", b"automobile", b"bird", b"cat", b"deer",
    b"dog", b"frog", b"horse", b"ship", b"truck",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFELONG_CACHE_DIR", str(tmp_path / "cache"))


# ---------------------------------------------------------------------------------------------
# CIFAR fixtures


def _cifar_images(n: int, seed: int) -> np.ndarray:
    """N×3072 rows: red = a per-image pattern, green = seed, blue = 200 (channel-major)."""
    rows = np.empty((n, 3072), dtype=np.uint8)
    for i in range(n):
        rows[i, :1024] = (np.arange(1024) + 17 * i + seed) % 251
        rows[i, 1024:2048] = seed
        rows[i, 2048:] = 200
    return rows


def _dump(path: Path, content: object) -> None:
    path.write_bytes(pickle.dumps(content, protocol=2))


def _write_cifar10(root: Path) -> dict[str, tuple[np.ndarray, list[int]]]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches: dict[str, tuple[np.ndarray, list[int]]] = {}
    for b, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        data, labels = _cifar_images(4, seed=b), [(2 * b + k) % 10 for k in range(4)]
        batches[name] = (data, labels)
        _dump(
            folder / name,
            {
                b"batch_label": f"batch {name}".encode(),
                b"labels": labels,
                b"data": data,
                b"filenames": [f"img_{b}_{k}.png".encode() for k in range(4)],
            },
        )
    meta = {b"num_cases_per_batch": 4, b"label_names": CIFAR10_NAMES, b"num_vis": 3072}
    _dump(folder / "batches.meta", meta)
    return batches


def _write_cifar100(root: Path) -> None:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, n in (("train", 6), ("test", 3)):
        fine = [(7 * k + 3) % 100 for k in range(n)]
        content = {
            b"filenames": [f"{name}_{k}.png".encode() for k in range(n)],
            b"batch_label": name.encode(),
            b"fine_labels": fine,
            b"coarse_labels": [f // 5 for f in fine],
            b"data": _cifar_images(n, seed=n),
        }
        _dump(folder / name, content)
    fine_names = [f"fine_{i}".encode() for i in range(100)]
    coarse_names = [f"coarse_{i}".encode() for i in range(20)]
    _dump(folder / "meta", {b"fine_label_names": fine_names, b"coarse_label_names": coarse_names})


def _py2_batch(data: np.ndarray, labels: list[int]) -> bytes:
    """A data batch as Python 2's cPickle wrote the official files (str as SHORT_BINSTRING)."""

    def s(b: bytes) -> bytes:
        return b"U" + bytes([len(b)]) + b

    n, d = data.shape
    raw = data.tobytes()
    out = b"\x80\x02}q\x00(" + s(b"data")
    out += b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + s(b"b") + b"\x87R"
    out += b"(K\x01M" + struct.pack("<H", n) + b"M" + struct.pack("<H", d) + b"\x86"
    out += b"cnumpy\ndtype\n" + s(b"u1") + b"K\x00K\x01\x87R(K\x03" + s(b"|")
    out += b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89T" + struct.pack("<I", len(raw)) + raw
    out += b"tb" + s(b"labels") + b"](" + b"".join(b"K" + bytes([v]) for v in labels) + b"e"
    return out + b"u."


class _RunsCommand:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return os.system, (f"touch {self.marker}",)


# ---------------------------------------------------------------------------------------------
# CIFAR tests


def test_cifar10_shapes_pixels_and_labels(tmp_path: Path) -> None:
    batches = _write_cifar10(tmp_path)
    tt = load_cifar10(str(tmp_path))
    assert tt.train.x.shape == (20, 3, 32, 32) and tt.train.x.dtype == torch.uint8
    assert tt.test.x.shape == (4, 3, 32, 32) and tt.test.y.dtype == torch.int64
    assert tt.class_names[0] == "airplane" and tt.num_classes == 10
    data, labels = batches["data_batch_2"]
    x = tt.train.x[4:8]  # batch 2 follows batch 1's four images
    assert torch.equal(x, torch.from_numpy(data.reshape(4, 3, 32, 32)))
    assert torch.equal(x[1, 0], torch.from_numpy(data[1, :1024].reshape(32, 32)))  # red, row-major
    assert int(x[1, 0, 0, 1]) == int(data[1, 1]) and int(x[1, 0, 1, 0]) == int(data[1, 32])
    assert bool((x[:, 1] == 1).all()) and bool((x[:, 2] == 200).all())  # green, blue planes
    assert tt.train.y[4:8].tolist() == labels
    assert tt.test.y.tolist() == batches["test_batch"][1]


def test_seq_cifar10_resizes_once_to_image_size(tmp_path: Path) -> None:
    from lifelong.data.catalog import build_stream
    from lifelong.data.scenarios import DatasetConfig

    _write_cifar10(tmp_path)
    native = load_cifar10(str(tmp_path))
    # the test batch holds labels 0-3 only: keep those
    cfg = DatasetConfig(name="seq-cifar10", root=str(tmp_path), classes=(0, 1, 2, 3), image_size=16)
    stream = build_stream(cfg, seed=0)
    first = stream.experiences[0]
    assert first.train.x.shape[1:] == (3, 16, 16) and first.test.x.shape[1:] == (3, 16, 16)
    # the same images, smaller: each image's mean colour is kept within rounding
    kept = native.train.y == 0  # the first experience: class 0 (four classes in 4 x 1)
    native_means = native.train.x[kept].float().mean(dim=(2, 3))
    assert torch.allclose(first.train.x.float().mean(dim=(2, 3)), native_means, atol=2.0)
    full = build_stream(dataclasses.replace(cfg, image_size=None), seed=0)
    assert full.experiences[0].train.x.shape[1:] == native.train.x.shape[1:] == (3, 32, 32)


def test_cifar10_reads_python2_pickles(tmp_path: Path) -> None:
    _write_cifar10(tmp_path)
    data = _cifar_images(4, seed=9)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(_py2_batch(data, [9, 8, 7, 6]))
    tt = load_cifar10(str(tmp_path))
    assert torch.equal(tt.test.x, torch.from_numpy(data.reshape(4, 3, 32, 32)))
    assert tt.test.y.tolist() == [9, 8, 7, 6]


def test_cifar100_fine_labels_and_names(tmp_path: Path) -> None:
    _write_cifar100(tmp_path)
    tt = load_cifar100(str(tmp_path))
    assert tt.train.x.shape == (6, 3, 32, 32) and tt.test.x.shape == (3, 3, 32, 32)
    assert tt.train.y.tolist() == [(7 * k + 3) % 100 for k in range(6)]
    assert tt.num_classes == 100 and tt.class_names[42] == "fine_42"
    assert torch.equal(tt.test.x, torch.from_numpy(_cifar_images(3, seed=3).reshape(3, 3, 32, 32)))


def test_cifar_missing_folder_names_path(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_cifar10(str(tmp_path))
    assert str(tmp_path / "cifar-10-batches-py") in str(err.value) and "--download" in str(
        err.value
    )
    with pytest.raises(DataError, match="cifar-100-python"):
        load_cifar100(str(tmp_path))


def test_cifar_missing_batch_names_file(tmp_path: Path) -> None:
    _write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3"):
        load_cifar10(str(tmp_path))


def test_cifar_truncated_pickle(tmp_path: Path) -> None:
    _write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match="corrupt or truncated") as err:
        load_cifar10(str(tmp_path))
    assert "data_batch_2" in str(err.value)


def test_cifar_wrong_shape_is_corrupt(tmp_path: Path) -> None:
    _write_cifar10(tmp_path)
    bad = {b"data": np.zeros((4, 100), dtype=np.uint8), b"labels": [0, 1, 2, 3]}
    _dump(tmp_path / "cifar-10-batches-py" / "test_batch", bad)
    with pytest.raises(DataError, match="test_batch is corrupt"):
        load_cifar10(str(tmp_path))
    bad = {b"data": np.zeros((4, 3072), dtype=np.uint8), b"labels": [0, 1, 2]}
    _dump(tmp_path / "cifar-10-batches-py" / "test_batch", bad)
    with pytest.raises(DataError, match="4 images but 3 labels"):
        load_cifar10(str(tmp_path))


def test_forbidden_global_is_refused_and_not_run(tmp_path: Path) -> None:
    _write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    path = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    _dump(path, {b"data": _RunsCommand(marker), b"labels": [0]})
    with pytest.raises(DataError, match=r"refuses to load (posix|os|nt)\.system") as err:
        load_cifar10(str(tmp_path))
    assert "not a CIFAR file or was tampered with" in str(err.value)
    assert not marker.exists()
    with pytest.raises(DataError, match="refuses"):
        safe_load(path, NUMPY_ARRAY_GLOBALS)
    assert not marker.exists()


def test_safe_load_only_latin1_codecs(tmp_path: Path) -> None:
    path = tmp_path / "x.pkl"
    _dump(path, {b"k": b"\xffv", b"": b""})
    assert safe_load(path, BYTES_GLOBALS) == {b"k": b"\xffv", b"": b""}
    with pytest.raises(DataError, match=r"refuses to load _codecs\.encode"):
        safe_load(path, NUMPY_ARRAY_GLOBALS)
    bad = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x06\x00\x00\x00base64\x86R."
    path.write_bytes(bad)
    with pytest.raises(DataError, match="corrupt"):
        safe_load(path, BYTES_GLOBALS)


class _Served(io.BytesIO):
    """What a patched ``urlopen`` answers: the given bytes, as if from the requested URL."""

    def __init__(self, url: str, content: bytes) -> None:
        super().__init__(content)
        self.url, self.length = url, len(content)


def _offline(monkeypatch: pytest.MonkeyPatch, serves: bytes | None) -> list[str]:
    """Patch ``urllib.request.urlopen`` so no test reaches the network; return the URLs asked.

    ``serves=None`` fails as without a network; bytes are answered as the file's content.
    """
    asked: list[str] = []

    def urlopen(request: urllib.request.Request | str, *args: object, **kwargs: object) -> _Served:
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        asked.append(url)
        if serves is None:
            raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
        return _Served(url, serves)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return asked


@pytest.mark.parametrize("loader", [load_cifar10, load_cifar100])
def test_cifar_download_without_network_is_one_data_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loader: Callable[..., object]
) -> None:
    asked = _offline(monkeypatch, serves=None)
    with pytest.raises(DataError) as err:  # torchvision's URLError before the fix
        loader(str(tmp_path), download=True)
    message = str(err.value)
    assert asked and all("cs.toronto.edu" in url for url in asked)
    assert "\n" not in message and f"into {tmp_path}:" in message
    assert "URLError" in message and "Temporary failure in name resolution" in message
    assert f"download {asked[0]} by hand" in message and "without --download" in message


@pytest.mark.parametrize("network", ["down", "serves the wrong bytes"])
def test_cifar_download_with_a_corrupt_archive_is_one_data_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, network: str
) -> None:
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(b"the first bytes of a partial download")
    _offline(monkeypatch, serves=None if network == "down" else b"not the CIFAR archive")
    with pytest.raises(DataError) as err:  # URLError / RuntimeError before the fix
        load_cifar10(str(tmp_path), download=True)
    message = str(err.value)
    assert "\n" not in message
    assert f"{archive} does not match its official md5 checksum" in message
    assert "cifar-10-python.tar.gz by hand" in message and str(tmp_path) in message


# ---------------------------------------------------------------------------------------------
# Tiny-ImageNet fixtures and tests

TINY_WNIDS = ["n03000001", "n01000001", "n02000001"]  # present, written unsorted on purpose
TINY_ABSENT = ["n04000001", "n00000001"]  # listed in wnids.txt without a train folder
TINY_COLOURS = {"n01000001": (250, 10, 10), "n02000001": (10, 250, 10), "n03000001": (10, 10, 250)}


def _jpeg(path: Path, colour: tuple[int, int, int], size: int = 64, grey: bool = False) -> None:
    image = torch.tensor(colour, dtype=torch.uint8).view(3, 1, 1).expand(3, size, size)
    if grey:
        image = image[:1]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(str(path), encode_jpeg(image.contiguous(), quality=95))


def _write_tiny(root: Path) -> Path:
    base = root / "tiny-imagenet-200"
    base.mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(TINY_WNIDS + TINY_ABSENT) + "\n")
    words = ["n01000001\tgoldfish, Carassius auratus", "n02000001\tcentipede"]
    (base / "words.txt").write_text("\n".join([*words, "n04000001\tunused"]) + "\n")
    for wnid in TINY_WNIDS:
        for k in range(4):
            grey = wnid == "n02000001" and k == 0
            colour = (130, 130, 130) if grey else TINY_COLOURS[wnid]
            _jpeg(base / "train" / wnid / "images" / f"{wnid}_{k}.JPEG", colour, grey=grey)
        (base / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
    val = [("n02000001", 0), ("n04000001", 1), ("n01000001", 2), ("n03000001", 3)]
    val += [("n01000001", 4)]
    lines = []
    for wnid, k in val:
        _jpeg(base / "val" / "images" / f"val_{k}.JPEG", TINY_COLOURS.get(wnid, (0, 0, 0)))
        lines.append(f"val_{k}.JPEG\t{wnid}\t0\t0\t63\t63")
    (base / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return base


def test_tiny_imagenet_subset(tmp_path: Path) -> None:
    _write_tiny(tmp_path / "data")
    tt = load_tiny_imagenet(str(tmp_path / "data"))
    assert tt.class_names == ("goldfish", "centipede", "n03000001")  # sorted wnids, fallback
    assert tt.train.x.shape == (12, 3, 64, 64) and tt.train.x.dtype == torch.uint8
    assert tt.train.y.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert tt.test.x.shape == (4, 3, 64, 64)
    assert tt.test.y.tolist() == [1, 0, 2, 0]  # val_1 (absent class) is left out
    means = tt.train.x.float().mean(dim=(2, 3))
    assert torch.allclose(means[0], torch.tensor([250.0, 10.0, 10.0]), atol=6)
    assert torch.allclose(means[4], torch.tensor([130.0] * 3), atol=3)  # grey file, forced to RGB
    assert torch.allclose(means[8], torch.tensor([10.0, 10.0, 250.0]), atol=6)


def test_tiny_imagenet_resized_once_when_loaded(tmp_path: Path) -> None:
    _write_tiny(tmp_path / "data")
    full = load_tiny_imagenet(str(tmp_path / "data"))
    small = load_tiny_imagenet(str(tmp_path / "data"), size=32)
    assert small.train.x.shape == (12, 3, 32, 32) and small.test.x.shape == (4, 3, 32, 32)
    # flat-colour images keep their colours; the 64-pixel decode is cached separately
    means = small.train.x.float().mean(dim=(2, 3))
    assert torch.allclose(means, full.train.x.float().mean(dim=(2, 3)), atol=2)
    assert load_tiny_imagenet(str(tmp_path / "data")).train.x.shape[-1] == 64


def test_tiny_imagenet_root_may_be_the_folder_itself(tmp_path: Path) -> None:
    base = _write_tiny(tmp_path)
    assert load_tiny_imagenet(str(base)).num_classes == 3


def test_tiny_imagenet_cache_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = _write_tiny(tmp_path)
    first = load_tiny_imagenet(str(tmp_path))
    assert len(list((tmp_path / "cache").glob("tinyimagenet-*.u8"))) == 1

    def no_decode(*args: object, **kwargs: object) -> torch.Tensor:
        raise AssertionError("decoded again although the cache is valid")

    monkeypatch.setattr(tinyimagenet, "decode_files", no_decode)
    second = load_tiny_imagenet(str(tmp_path))
    assert torch.equal(first.train.x, second.train.x) and torch.equal(first.test.x, second.test.x)
    assert torch.equal(first.train.y, second.train.y) and torch.equal(first.test.y, second.test.y)
    _jpeg(base / "train" / "n01000001" / "images" / "n01000001_9.JPEG", (1, 2, 3))
    with pytest.raises(AssertionError, match="decoded again"):  # a new file means a new key
        load_tiny_imagenet(str(tmp_path))


@pytest.mark.parametrize(
    "damage",
    ["header-garbage", "header-missing", "pixels-truncated", "pixel-flipped", "pixels-missing"],
)
def test_tiny_imagenet_corrupt_cache_is_rebuilt_never_used(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    _write_tiny(tmp_path)
    first = load_tiny_imagenet(str(tmp_path))
    (pixels,) = (tmp_path / "cache").glob("tinyimagenet-*.u8")
    header = pixels.with_suffix(".json")
    raw = bytearray(pixels.read_bytes())
    assert len(raw) == (12 + 4) * 3 * 64 * 64
    if damage == "header-garbage":
        header.write_text("{not json")
    elif damage == "header-missing":
        header.unlink()
    elif damage == "pixels-truncated":
        pixels.write_bytes(bytes(raw[:-100]))
    elif damage == "pixel-flipped":  # same size, one byte changed: only the checksum sees it
        raw[5000] ^= 0xFF
        pixels.write_bytes(bytes(raw))
    else:
        pixels.unlink()
    with caplog.at_level("WARNING", logger="lifelong.data.imagefolder"):
        again = load_tiny_imagenet(str(tmp_path))
    assert torch.equal(first.train.x, again.train.x) and torch.equal(first.test.x, again.test.x)
    assert "decoding the images again" in caplog.text
    assert len(pixels.read_bytes()) == len(raw)  # rewritten whole
    assert json.loads(header.read_text())["shapes"] == [[12, 3, 64, 64], [4, 3, 64, 64]]


def test_the_image_cache_is_memory_mapped_and_private(tmp_path: Path) -> None:
    _write_tiny(tmp_path)
    load_tiny_imagenet(str(tmp_path))
    (pixels,) = (tmp_path / "cache").glob("tinyimagenet-*.u8")
    before = pixels.read_bytes()
    cached = load_tiny_imagenet(str(tmp_path))
    assert cached.train.x.untyped_storage().nbytes() == len(before)  # one mapping of the file
    cached.train.x[0] = 0  # writable, copy-on-write: the cache file stays as it was
    assert pixels.read_bytes() == before


def test_decoding_runs_on_every_core_and_names_a_bad_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lifelong.data import imagefolder

    files = [tmp_path / f"{i}.png" for i in range(9)]
    for i, path in enumerate(files):
        _png(path, torch.full((3, 12, 16), i * 20, dtype=torch.uint8))
    monkeypatch.setattr(imagefolder, "DECODE_TASK_IMAGES", 2)  # 5 tasks on the thread pool
    threads: set[int] = set()
    decoded = imagefolder._decoded

    def recording(*args: object) -> torch.Tensor:
        threads.add(threading.get_ident())
        time.sleep(0.02)  # long enough for every worker to take a task
        return decoded(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(imagefolder, "_decoded", recording)
    monkeypatch.setattr(imagefolder, "usable_cores", lambda: 3)
    x = imagefolder.decode_files(files, 8, resize=True)
    assert x.shape == (9, 3, 8, 8) and len(threads) >= 2
    serial = torch.stack([decoded(f, 8, True) for f in files])
    assert torch.equal(x, serial)  # each image lands at its own index
    files[6].write_bytes(b"broken")
    with pytest.raises(DataError, match=r"6\.png"):
        imagefolder.decode_files(files, 8, resize=True)


def test_tiny_imagenet_missing_folder_names_path(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_tiny_imagenet(str(tmp_path / "nowhere"))
    message = str(err.value)
    assert str(tmp_path / "nowhere" / "tiny-imagenet-200") in message
    assert tinyimagenet.TINY_IMAGENET_URL in message and "--download" in message


def test_tiny_imagenet_corrupt_jpeg_names_file(tmp_path: Path) -> None:
    base = _write_tiny(tmp_path)
    bad = base / "train" / "n02000001" / "images" / "n02000001_2.JPEG"
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(DataError, match=r"n02000001_2\.JPEG"):
        load_tiny_imagenet(str(tmp_path))
    bad.write_bytes(b"\x00" * 300)
    with pytest.raises(DataError, match=r"cannot decode .*n02000001_2\.JPEG"):
        load_tiny_imagenet(str(tmp_path))


def test_tiny_imagenet_wrong_size_and_missing_val_file(tmp_path: Path) -> None:
    base = _write_tiny(tmp_path)
    _jpeg(base / "val" / "images" / "val_3.JPEG", (0, 0, 0), size=32)
    with pytest.raises(DataError, match=r"val_3.JPEG is 32×32 pixels, expected 64×64"):
        load_tiny_imagenet(str(tmp_path))
    (base / "val" / "images" / "val_3.JPEG").unlink()
    with pytest.raises(DataError, match=r"val_3\.JPEG, which is missing"):
        load_tiny_imagenet(str(tmp_path))


MIRROR_EXTRAS = ["n02480855", "n10148035"]  # the two extra classes of a 202-class mirror


def _write_tiny_classes(base: Path, listed: list[str], folders: list[str]) -> None:
    """A Tiny-ImageNet layout: ``listed`` in wnids.txt, one train and one val image per folder."""
    base.mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(listed) + "\n")
    lines = []
    for k, wnid in enumerate(folders):
        colour = (k % 251, 40, 200)
        _jpeg(base / "train" / wnid / "images" / f"{wnid}_0.JPEG", colour, size=8)
        _jpeg(base / "val" / "images" / f"val_{k}.JPEG", colour, size=8)
        lines.append(f"val_{k}.JPEG\t{wnid}\t0\t0\t7\t7")
    (base / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")


def test_tiny_imagenet_names_listed_classes_without_a_train_folder(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _write_tiny(tmp_path)
    with caplog.at_level(logging.WARNING, logger="lifelong.data.tinyimagenet"):
        assert load_tiny_imagenet(str(tmp_path)).num_classes == 3
    (record,) = caplog.records
    assert "2 classes listed in" in record.getMessage()
    assert all(wnid in record.getMessage() for wnid in TINY_ABSENT)


def test_tiny_imagenet_mirror_extras_are_named_and_never_replace_official_classes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    official = ["n01443537", "n09428293", "n12267677"]  # the last two sort after both extras
    listed = sorted(official + MIRROR_EXTRAS)
    _write_tiny_classes(tmp_path / "tiny-imagenet-200", listed, [*listed, "n99999999"])
    with caplog.at_level(logging.WARNING, logger="lifelong.data.tinyimagenet"):
        tt = load_tiny_imagenet(str(tmp_path), size=8)
    assert tt.class_names == tuple(official)  # no words.txt: the wnids themselves
    assert tt.train.y.tolist() == [0, 1, 2] and tt.test.y.tolist() == [0, 1, 2]
    messages = [r.getMessage() for r in caplog.records]
    (extras,) = [m for m in messages if "not among the 200 official" in m]
    assert "leaving out 2 classes" in extras and all(w in extras for w in MIRROR_EXTRAS)
    (unlisted,) = [m for m in messages if "not listed in" in m]
    assert "ignoring 1 train folders" in unlisted and "n99999999" in unlisted


def test_seq_tinyimg_on_a_202_class_mirror_keeps_the_200_official_classes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from lifelong.data.catalog import build_stream
    from lifelong.data.scenarios import DatasetConfig

    listed = sorted(tinyimagenet.OFFICIAL_WNIDS | set(MIRROR_EXTRAS))
    assert len(listed) == 202
    _write_tiny_classes(tmp_path / "tiny-imagenet-200", listed, listed)
    with caplog.at_level(logging.WARNING):
        stream = build_stream(DatasetConfig("seq-tinyimg", str(tmp_path), image_size=8), 0)
    # before: 202 classes, the last two in sorted order (n09428293, n12267677: official ones)
    # dropped as "classes that do not fill an experience", the two extras kept
    assert len(stream) == 10 and set(stream.class_names) == tinyimagenet.OFFICIAL_WNIDS
    assert sorted(c for exp in stream for c in exp.classes) == list(range(200))
    assert "dropping" not in caplog.text
    assert all(wnid in caplog.text for wnid in MIRROR_EXTRAS)


def test_official_wnids_hold_the_200_classes_of_the_release() -> None:
    wnids = sorted(tinyimagenet.OFFICIAL_WNIDS)
    assert len(wnids) == 200 and all(re.fullmatch(r"n\d{8}", w) for w in wnids)
    assert not set(MIRROR_EXTRAS) & tinyimagenet.OFFICIAL_WNIDS
    if SHARED_TARBALL.is_file():  # the shared subset is every 10th official wnid, sorted
        with tarfile.open(SHARED_TARBALL) as tar:
            member = tar.extractfile("tiny-imagenet-200/wnids.txt")
            assert member is not None
            subset = sorted(member.read().decode().split())
        assert wnids[::10] == subset


@pytest.mark.data
def test_tiny_imagenet_real_subset(tmp_path: Path) -> None:
    if not SHARED_TARBALL.is_file():
        pytest.skip(f"the real Tiny-ImageNet subset is absent: {SHARED_TARBALL}")
    with tarfile.open(SHARED_TARBALL) as tar:
        tar.extractall(tmp_path, filter="data")
    start = time.perf_counter()
    tt = load_tiny_imagenet(str(tmp_path))
    first = time.perf_counter() - start
    start = time.perf_counter()
    cached = load_tiny_imagenet(str(tmp_path))
    second = time.perf_counter() - start
    print(f"Tiny-ImageNet sub20: first load {first:.2f} s, cached load {second:.2f} s")
    assert tt.num_classes == 20 and tt.class_names[0] == "goldfish"
    assert tt.train.x.shape == (10_000, 3, 64, 64) and tt.test.x.shape == (1_000, 3, 64, 64)
    assert torch.bincount(tt.train.y).tolist() == [500] * 20
    assert torch.bincount(tt.test.y).tolist() == [50] * 20
    assert torch.equal(tt.train.x, cached.train.x) and torch.equal(tt.test.y, cached.test.y)
    assert first < 30 and second < first


# ---------------------------------------------------------------------------------------------
# Image folder (ImageNet-100 layout)


def _png(path: Path, image: torch.Tensor) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(str(path), encode_png(image))


def test_image_folder_resizes_and_centre_crops(tmp_path: Path) -> None:
    wide = torch.zeros(3, 32, 64, dtype=torch.uint8)
    wide[0, :, :16], wide[1, :, 16:48], wide[2, :, 48:] = 255, 255, 255  # red | green | blue
    _png(tmp_path / "train" / "b_cls" / "wide.png", wide)
    _png(tmp_path / "train" / "a_cls" / "tall.png", torch.full((3, 80, 40), 77, dtype=torch.uint8))
    _jpeg(tmp_path / "train" / "a_cls" / "grey.JPEG", (120, 120, 120), size=48, grey=True)
    _png(tmp_path / "val" / "b_cls" / "v.png", wide)
    (tmp_path / "train" / "a_cls" / "notes.txt").write_text("not an image")
    tt = load_image_folder(str(tmp_path), size=16)
    assert tt.class_names == ("a_cls", "b_cls")
    assert tt.train.x.shape == (3, 3, 16, 16) and tt.train.y.tolist() == [0, 0, 1]
    assert bool((tt.train.x[1] == 77).all())
    green = tt.train.x[2].float().mean(dim=(1, 2))
    assert green[1] > 250 and green[0] < 5 and green[2] < 5  # the centre crop is all green
    assert tt.test.x.shape == (1, 3, 16, 16) and tt.test.y.tolist() == [1]


def test_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "train"))):
        load_image_folder(str(tmp_path), size=16)
    _png(tmp_path / "train" / "a" / "x.png", torch.zeros(3, 8, 8, dtype=torch.uint8))
    _png(tmp_path / "val" / "z" / "x.png", torch.zeros(3, 8, 8, dtype=torch.uint8))
    with pytest.raises(DataError, match="missing from"):
        load_image_folder(str(tmp_path), size=16)
    (tmp_path / "val" / "z" / "x.png").rename(tmp_path / "val" / "z.png")
    (tmp_path / "val" / "z").rmdir()
    (tmp_path / "val" / "a").mkdir()
    (tmp_path / "val" / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(DataError, match=r"broken\.png"):
        load_image_folder(str(tmp_path), size=16)


def _zipped_tiny(tmp_path: Path) -> bytes:
    """The fixture dataset as the official zip lays it out (``tiny-imagenet-200/...``)."""
    import shutil

    source = _write_tiny(tmp_path / "source")
    archive = shutil.make_archive(str(tmp_path / "tiny"), "zip", source.parent, source.name)
    return Path(archive).read_bytes()


def test_tiny_imagenet_download_is_https_and_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = _zipped_tiny(tmp_path)
    asked = _offline(monkeypatch, serves=content)
    monkeypatch.setattr(tinyimagenet, "TINY_IMAGENET_MD5", hashlib.md5(content).hexdigest())
    data = load_tiny_imagenet(str(tmp_path / "root"), download=True)
    assert asked == ["https://cs231n.stanford.edu/tiny-imagenet-200.zip"]
    assert data.num_classes == len(TINY_WNIDS)


def test_tiny_imagenet_download_with_a_wrong_checksum_unpacks_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _offline(monkeypatch, serves=_zipped_tiny(tmp_path))  # a valid zip, but not the official one
    root = tmp_path / "root"
    with pytest.raises(DataError) as err:
        load_tiny_imagenet(str(root), download=True)
    message = str(err.value)
    assert "\n" not in message and "not the official 90528d7ca1a48142e341f4ef8d21d0de" in message
    assert not (root / "tiny-imagenet-200").exists()
