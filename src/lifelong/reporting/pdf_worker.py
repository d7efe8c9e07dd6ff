"""The helper process that draws a run's PDF report (``lifelong run --pdf``).

Started with the run (:mod:`lifelong.reporting.child_process`), it loads matplotlib while the run
trains, then draws the report while the run (or its W&B helper) draws the PNG plots, so the
report adds little to the run's wall time.

Message: ``("pdf", results, steps, out_path, samples, confusion)``, the arguments of
:func:`~lifelong.reporting.pdf_report.write_pdf`; the answer is ``reported``.
"""

from __future__ import annotations

from typing import Any

from lifelong.reporting.child_process import lower_priority, serve
from lifelong.reporting.pdf_report import write_pdf
from lifelong.reporting.report import warm_up_figures


def handle(message: tuple[Any, ...]) -> str:
    """Write the report of a ``pdf`` message."""
    kind, *arguments = message
    if kind != "pdf":
        raise ValueError(f"the PDF helper got an unknown message {kind!r}")
    write_pdf(*arguments)
    return "reported"


def main() -> None:
    """Warm up, then write the report the run sends."""
    lower_priority()
    warm_up_figures()
    serve(handle, lambda: None)


if __name__ == "__main__":
    main()
