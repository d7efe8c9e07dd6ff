"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MNIST_ROOT = SHARED_DATA / "mnist"


@pytest.fixture
def mnist_root() -> Path:
    """The real MNIST (``<root>/MNIST/raw/*.gz``) from ../shared/data; skip when absent."""
    raw = MNIST_ROOT / "MNIST" / "raw"
    if not (raw / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST not found at {raw} (the shared read-only data folder)")
    return MNIST_ROOT
