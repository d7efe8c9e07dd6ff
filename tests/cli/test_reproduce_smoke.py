"""CI runs every row of the shipped ledger for a few iterations on tiny data (``--smoke``).

A row whose preset, scenario, loader or method breaks fails here. Two worker processes, one
thread each; about a minute and a half on an idle 2-core machine (the issue allows 3 minutes).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lifelong.reproduce import load_ledger

SECONDS = 600
"""A hang guard, not the budget: the measured time is printed (``-s``) and in the report."""


def test_every_ledger_row_runs_its_smoke_version(cli: Callable[..., Any]) -> None:
    rows = load_ledger()
    start = time.perf_counter()
    done = cli("reproduce", "--all", "--smoke", "--jobs", "2")
    seconds = time.perf_counter() - start
    failed = [line for line in done.out.splitlines() if "SMOKE FAILED" in line]
    assert done.code == 0 and not failed, "\n".join(failed) or done.err
    ok = {line.split(":")[0] for line in done.out.splitlines() if ": smoke ok," in line}
    assert ok == {row.id for row in rows}
    assert f"{len(rows)} of {len(rows)} rows ran" in done.out
    print(f"smoke of {len(rows)} ledger rows: {seconds:.0f} s")
    assert seconds < SECONDS
