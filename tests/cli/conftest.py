"""Fixtures of the command-line tests: calling ``main``, fake MNIST files, test-only methods."""

from __future__ import annotations

import gzip
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from cli_assertions import expect_one_line_error

from lifelong.cli import main
from lifelong.methods.base import METHODS, Method
from lifelong.methods.base import register as register_method_class


@dataclass(frozen=True)
class CliResult:
    """Exit code and captured output of one ``main(argv)`` call."""

    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Call ``lifelong.cli.main`` in-process with string arguments and capture its output."""

    def run(*args: object) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


@pytest.fixture
def one_line_error() -> Callable[..., str]:
    """``check(result, *needles)``: a one-line ``lifelong: error:`` with exit 2; the line."""
    return expect_one_line_error


@pytest.fixture
def lifelong_script() -> str:
    """The installed ``lifelong`` console script next to this interpreter."""
    script = shutil.which("lifelong", path=str(Path(sys.executable).parent))
    assert script is not None, f"no `lifelong` console script in {Path(sys.executable).parent}"
    return script


def write_idx_gz(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as a gzip-compressed IDX file (the MNIST format)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def make_fake_mnist(root: Path, per_class_train: int = 6, per_class_test: int = 2) -> Path:
    """Write a tiny but valid MNIST in torchvision's layout under ``root``; return ``root``."""
    rng = np.random.default_rng(0)
    raw = root / "MNIST" / "raw"
    for prefix, per_class in (("train", per_class_train), ("t10k", per_class_test)):
        labels = np.repeat(np.arange(10), per_class)
        images = rng.integers(0, 256, size=(len(labels), 28, 28))
        write_idx_gz(raw / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx_gz(raw / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


@pytest.fixture
def fake_mnist(tmp_path: Path) -> Path:
    """A tiny valid MNIST folder (``DIR/MNIST/raw/*.gz``) written by the test itself."""
    return make_fake_mnist(tmp_path / "fake-data")


@pytest.fixture
def mnist_factory() -> Callable[[Path], Path]:
    """``make(root)`` writes a tiny valid MNIST under ``root`` (for tests that then damage it)."""
    return make_fake_mnist


@pytest.fixture
def idx_writer() -> Callable[[Path, np.ndarray], None]:
    """``write(path, array)`` writes a gzip-compressed IDX file."""
    return write_idx_gz


@pytest.fixture
def register_method() -> Iterator[Callable[[type[Method]], str]]:
    """Register test-only methods in ``METHODS``; they are removed again after the test."""
    added: list[str] = []

    def register(cls: type[Method]) -> str:
        register_method_class(cls)
        added.append(cls.name)
        return cls.name

    yield register
    for name in added:
        METHODS._entries.pop(name)
