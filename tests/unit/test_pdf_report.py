"""The PDF report: its pages, and samples from methods that generate."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from lifelong.reporting.pdf_report import Generates, generated_samples, read_steps, write_pdf


def _pages(path: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page\b", path.read_bytes()))


def _results() -> dict[str, object]:
    matrix = [[90.0, float("nan")], [70.0, 95.0]]
    return {
        "protocols": {
            "class-il": {"matrix": matrix, "summary": {}},
            "task-il": {"matrix": matrix, "summary": {}},
        }
    }


class _Sampler(torch.nn.Module):
    """Generates flat images whose value is the class label."""

    def generate(
        self, per_class: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(3).repeat_interleave(per_class)
        noise = torch.rand(len(y), 1, 4, 4, generator=generator)
        return y.float().view(-1, 1, 1, 1) + 0.1 * noise, y


def test_generated_samples_only_for_methods_that_generate() -> None:
    sampler = _Sampler()
    assert isinstance(sampler, Generates)
    assert generated_samples(torch.nn.Linear(2, 2), 4, seed=0) is None
    sampler.train()
    x, y = generated_samples(sampler, 4, seed=0) or (torch.empty(0), torch.empty(0))
    assert x.shape == (12, 1, 4, 4) and y.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert sampler.training  # mode restored
    again = generated_samples(sampler, 4, seed=0)
    assert again is not None and torch.equal(again[0], x)  # seeded


def test_pdf_has_a_page_per_protocol_losses_and_samples(tmp_path: Path) -> None:
    steps = [
        {
            "kind": "step",
            "step": 10 * (i + 1),
            "experience": i // 3,
            "epoch": 0,
            "loss": 2.0 / (i + 1),
        }
        for i in range(6)
    ]
    plain = write_pdf(_results(), steps, tmp_path / "plain.pdf")
    assert _pages(plain) == 3  # class-il, task-il, losses
    samples = _Sampler().generate(5, torch.Generator().manual_seed(0))
    full = write_pdf(_results(), steps, tmp_path / "full.pdf", samples)
    assert _pages(full) == 4
    assert _pages(write_pdf(_results(), [], tmp_path / "no_steps.pdf")) == 2


def test_read_steps_keeps_step_records(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text(
        '{"kind": "step", "step": 1, "experience": 0, "epoch": 0, "loss": 1.0}\n'
        '{"kind": "eval", "experience": 0, "accuracy": {}, "seconds": 1.0}\n'
    )
    assert [r["step"] for r in read_steps(metrics)] == [1]
    assert read_steps(tmp_path / "missing.jsonl") == []
    assert np.isfinite(read_steps(metrics)[0]["loss"])


def test_the_pdf_helper_process_writes_the_same_pages(tmp_path: Path) -> None:
    from lifelong.reporting.child_process import ChildProcess
    from lifelong.reporting.pdf_worker import pdf_message

    samples = generated_samples(_Sampler(), 2, seed=0)
    results = {**_results(), "experiences_trained": 2}
    helper = ChildProcess("lifelong.reporting.pdf_worker", "the PDF helper")
    try:
        message = pdf_message(results, [], tmp_path / "helper.pdf", samples, [[3, 1], [0, 4]])
        helper.send(*message)
        helper.wait_for("reported")
    finally:
        helper.close()
    write_pdf(results, [], tmp_path / "here.pdf", samples, [[3, 1], [0, 4]])
    assert _pages(tmp_path / "helper.pdf") == _pages(tmp_path / "here.pdf") == 4


def test_a_failing_pdf_helper_is_one_clear_error(tmp_path: Path) -> None:
    import pytest

    from lifelong.errors import OutputError
    from lifelong.reporting.child_process import ChildProcess
    from lifelong.reporting.pdf_worker import pdf_message

    helper = ChildProcess("lifelong.reporting.pdf_worker", "the PDF helper")
    folder = tmp_path / "report.pdf"
    folder.mkdir()  # the report cannot be written where a folder is
    try:
        helper.send(*pdf_message(_results(), [], folder, None, None))
        with pytest.raises(OutputError) as caught:
            helper.wait_for("reported")
    finally:
        helper.close()
    assert "\n" not in str(caught.value) and str(caught.value)
    assert folder.is_dir() and not list(folder.iterdir())
