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


def test_report_on_a_folder_it_cannot_write_says_so_before_printing(
    cli, one_line_error, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lifelong.checkpoint

    run_dir = tmp_path / "run"
    assert (
        cli("run", "--no-progress", "--no-tensorboard", "--iters", "1", "--run-dir", run_dir).code
        == 0
    )
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    # root may write anywhere, so the test plays a user without write permission on the folder
    writable = lifelong.checkpoint.os.access
    monkeypatch.setattr(
        lifelong.checkpoint.os, "access", lambda p, m: Path(p) != run_dir and writable(p, m)
    )
    result = cli("report", run_dir)
    one_line_error(result, str(run_dir), "is not writable", "copy the run folder")
    assert result.out == ""
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
