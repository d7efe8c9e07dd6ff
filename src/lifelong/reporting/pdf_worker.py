"""The helper process that draws a run's PDF report (``lifelong run --pdf``).

Started with the run (:mod:`lifelong.reporting.child_process`), it loads matplotlib while the run
trains, then draws the report while the run (or its W&B helper) draws the PNG plots, so the
report adds little to the run's wall time.

Message: :func:`pdf_message`, the arguments of :func:`~lifelong.reporting.pdf_report.write_pdf`
as JSON (the generated samples as ``.npy`` bytes in base64, read back without pickle); the
answer is ``reported``.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lifelong.reporting.child_process import lower_priority, serve
from lifelong.reporting.pdf_report import write_pdf
from lifelong.reporting.report import warm_up_figures


def pdf_message(
    results: dict[str, Any],
    steps: list[dict[str, Any]],
    out_path: Path,
    samples: tuple[torch.Tensor, torch.Tensor] | None,
    confusion: list[list[int]] | None,
) -> tuple[Any, ...]:
    """The ``pdf`` message that asks the helper for ``write_pdf(results, steps, ...)``."""
    encoded = None if samples is None else [_npy_text(t) for t in samples]
    return ("pdf", results, steps, str(out_path), encoded, confusion)


def _npy_text(tensor: torch.Tensor) -> str:
    buffer = io.BytesIO()
    np.save(buffer, tensor.detach().cpu().numpy(), allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode()


def _tensor(text: str) -> torch.Tensor:
    array = np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False)
    return torch.from_numpy(array)


def handle(message: tuple[Any, ...]) -> str:
    """Write the report of a ``pdf`` message."""
    kind, results, steps, out_path, encoded, confusion = message
    if kind != "pdf":
        raise ValueError(f"the PDF helper got an unknown message {kind!r}")
    samples = None if encoded is None else (_tensor(encoded[0]), _tensor(encoded[1]))
    write_pdf(results, steps, Path(out_path), samples, confusion)
    return "reported"


def main() -> None:
    """Warm up, then write the report the run sends."""
    lower_priority()
    warm_up_figures()
    serve(handle, lambda: None)


if __name__ == "__main__":
    main()
