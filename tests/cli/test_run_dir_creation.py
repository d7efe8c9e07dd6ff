"""A run creates its folder only once its inputs are valid; bad destinations fail before work."""

from __future__ import annotations

import lifelong.running.run


def test_a_run_failing_on_data_creates_no_folder(cli, tmp_path):
    run_dir = tmp_path / "runs" / "r"
    result = cli(
        "run", "--dataset", "seq-mnist", "--data-root", tmp_path / "missing", "--run-dir", run_dir
    )
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_an_unwritable_destination_fails_before_the_data_loads(cli, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    loaded = []
    monkeypatch.setattr(lifelong.running.run, "build_stream", lambda *a: loaded.append(a))
    result = cli("run", "--no-progress", "--run-dir", blocker / "r")
    assert result.code == 2
    assert "is a file" in result.err and len(result.err.strip().splitlines()) == 1
    assert loaded == []
    assert blocker.read_text() == "not a folder"
