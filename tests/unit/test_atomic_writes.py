"""Atomic writes keep the umask's mode, clean up after a killed writer, cover plots (issue 14)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lifelong.checkpoint import atomic_write_text, save_figure, temporary_files


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_atomic_file_gets_the_mode_open_would_give(tmp_path: Path, umask_022: None) -> None:
    path = tmp_path / "results.json"
    atomic_write_text(path, "{}")
    (tmp_path / "plain.txt").write_text("{}")
    assert path.stat().st_mode & 0o777 == (tmp_path / "plain.txt").stat().st_mode & 0o777 == 0o644


def test_temporaries_of_a_killed_writer_are_removed(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    stale = tmp_path / ".checkpoint.pt.abc123.tmp"  # what a kill between write and rename leaves
    stale.write_bytes(b"half a checkpoint")
    other = tmp_path / ".results.json.xyz.tmp"  # another file's temporary is not touched
    other.write_bytes(b"")
    assert temporary_files(path) == [stale]
    atomic_write_text(path, "whole")
    assert not stale.exists() and other.exists()
    assert path.read_text() == "whole" and temporary_files(path) == []


@pytest.mark.parametrize("suffix", [".png", ".pdf"])
def test_figures_are_written_whole(tmp_path: Path, suffix: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / f"plot{suffix}", dpi=50, tight=True)
    plt.close(fig)
    magic = b"\x89PNG" if suffix == ".png" else b"%PDF"
    assert path.read_bytes().startswith(magic)
    assert list(tmp_path.iterdir()) == [path]
