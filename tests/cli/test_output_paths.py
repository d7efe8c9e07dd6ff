"""Every output path is checked before any work (issue 14 item 5): a bad one costs nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

import lifelong.running.pretrain


def _no_work(*_args: object) -> None:
    raise AssertionError("the command started working before checking its output path")


@pytest.mark.parametrize(
    ("make_out", "needle"),
    [
        (lambda tmp: tmp, "it is a folder"),
        (lambda tmp: tmp / "a-file" / "conv.pt", "is a file"),
        (lambda tmp: tmp / ("x" * 300) / "conv.pt", "over 255 bytes"),
    ],
    ids=["folder", "under-a-file", "name-too-long"],
)
def test_pretrain_checks_out_before_training(
    cli, one_line_error, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_out, needle: str
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setattr(lifelong.running.pretrain, "build_stream", _no_work)
    out = make_out(tmp_path)
    result = cli("pretrain", "--dataset", "seq-digits", "--out", out, "--no-progress")
    one_line_error(result, needle, "--out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
