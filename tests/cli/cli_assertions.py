"""Assertions shared by the command-line tests (importable: pytest puts this folder on the path)."""

from __future__ import annotations

from typing import Any


def expect_one_line_error(result: Any, *needles: str) -> str:
    """Exit 2, exactly one stderr line starting ``lifelong: error:``, no traceback; return it."""
    assert result.code == 2, (result.code, result.err)
    assert "Traceback" not in result.err
    lines = result.err.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}:\n{result.err}"
    message = lines[0]
    assert message.startswith("lifelong: error: "), message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message
