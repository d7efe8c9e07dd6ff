"""The README's and RESULTS.md's ledger tables are the ones `lifelong reproduce --table` gives.

They are written by ``benchmarks/ledger_table.py``; after ``lifelong reproduce ID`` or an edit of
``benchmarks/ledger.yaml``, run it again.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "ledger_table.py"


def load_script():
    spec = importlib.util.spec_from_file_location("ledger_table", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["README.md", "RESULTS.md"])
def test_the_ledger_table_is_current(name: str) -> None:
    script = load_script()
    (path, short), *_ = [(p, s) for p, s in script.TARGETS.items() if p.name == name]
    text = path.read_text(encoding="utf-8")
    table = script.table(short)
    assert script.splice(text, table, name) == text, (
        f"{name}'s ledger table is stale: run `python benchmarks/ledger_table.py`"
    )
    assert ("`der-seq-mnist-er-200`" in table) is not short  # the short table skips passes
    assert "`clser-seq-mnist-cls_er-200`" in table


def test_splice_replaces_only_the_block() -> None:
    script = load_script()
    text = f"before\n{script.START}\nold\n{script.END}\nafter\n"
    expected = f"before\n{script.START}\n\nnew\n\n{script.END}\nafter\n"
    assert script.splice(text, "new\n", "x") == expected
    with pytest.raises(SystemExit, match="needs one"):
        script.splice("no markers", "new", "x")
