"""Corrupt dataset files end in one line naming the file, never a traceback or silent loss.

Issue 14 item 4: a damaged deflate stream escaped as a ``zlib.error`` traceback, and labels past
the class list (200 in MNIST) were accepted while their images silently vanished from every
experience.
"""

from __future__ import annotations

import gzip
import zlib

import numpy as np
import pytest
import torch

from lifelong.data.tensors import ImageSet, TrainTest
from lifelong.errors import DataError

FAST = ("--no-progress", "--no-tensorboard")


def _run(cli, tmp_path, root):
    run_dir = tmp_path / "run"
    result = cli("run", *FAST, "--run-dir", run_dir, "--dataset", "seq-mnist", "--data-root", root)
    assert not run_dir.exists() or not (run_dir / "config.yaml").exists()
    return result


def test_damaged_deflate_stream_is_named(cli, one_line_error, tmp_path, mnist_factory):
    root = mnist_factory(tmp_path / "data")
    images = root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    raw = bytearray(images.read_bytes())
    raw[10] = 0xFF  # the first deflate block header (after gzip's 10 bytes): an invalid type
    images.write_bytes(bytes(raw))
    with pytest.raises(zlib.error):  # the input really is the case the issue describes
        gzip.decompress(bytes(raw))
    one_line_error(_run(cli, tmp_path, root), str(images), "corrupt", "--download")


def test_labels_outside_the_classes_are_refused(
    cli, one_line_error, tmp_path, mnist_factory, idx_writer
):
    root = mnist_factory(tmp_path / "data")
    labels_path = root / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz"
    labels = np.frombuffer(gzip.decompress(labels_path.read_bytes())[8:], dtype=np.uint8).copy()
    labels[3] = 200
    idx_writer(labels_path, labels)
    message = one_line_error(_run(cli, tmp_path, root), str(labels_path), "label 200")
    assert "outside 0..9" in message


def test_label_file_with_image_dimensions_is_refused(
    cli, one_line_error, tmp_path, mnist_factory, idx_writer
):
    root = mnist_factory(tmp_path / "data")
    labels_path = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    idx_writer(labels_path, np.zeros((4, 28, 28), dtype=np.uint8))
    message = one_line_error(_run(cli, tmp_path, root), str(labels_path))
    assert "not (N,) labels" in message


@pytest.mark.parametrize("bad", [-1, 3])
def test_every_loader_is_backed_by_the_label_range_check(bad):
    x = torch.zeros(4, 1, 2, 2, dtype=torch.uint8)
    good = ImageSet(x, torch.tensor([0, 1, 2, 0]))
    broken = ImageSet(x, torch.tensor([0, 1, bad, 0]))
    TrainTest(good, good, ("a", "b", "c"))
    with pytest.raises(DataError, match="test split has labels"):
        TrainTest(good, broken, ("a", "b", "c"))


def test_test_subsample_that_empties_experiences_is_refused(cli, one_line_error, tmp_path):
    run_dir = tmp_path / "run"
    result = cli(
        "run", *FAST, "--run-dir", run_dir, "--dataset", "seq-digits",
        "--set", "dataset.test_subsample=1000", "--iters", "1",
    )  # fmt: skip
    message = one_line_error(result, "empty test set", "dataset.test_subsample=1000")
    assert "of 5 have an empty test set" in message and message.count(",") >= 3
    assert not run_dir.exists() or not (run_dir / "results.json").exists()


@pytest.mark.parametrize("dataset", ["seq-mnist", "nic-fmnist"])
def test_mnist_download_without_network_is_one_line(
    cli, one_line_error, tmp_path, monkeypatch, dataset
):
    import urllib.error
    import urllib.request

    def no_network(*_args: object, **_kwargs: object) -> None:
        raise urllib.error.URLError("[Errno 101] Network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    root = tmp_path / "data"
    result = cli(
        "run", *FAST, "--run-dir", tmp_path / "run", "--dataset", dataset,
        "--data-root", root, "--download",
    )  # fmt: skip
    message = one_line_error(result, "cannot download", str(root), "without --download")
    assert "by hand" in message
