"""GSS-Greedy: the selection score by hand, the buffer's replacement rule, the batch gate."""

from __future__ import annotations

import math

import pytest
import torch
from tests.contract.test_methods import build_method, fixed_batch, make_stream

from lifelong.buffers.gss import EMPTY_BUFFER_SCORE, GSSBuffer, gss_scores
from lifelong.nn.example_gradients import ExampleGradients

FIELDS = {"x": ((1,), torch.float32), "y": ((), torch.int64)}


def test_score_is_one_plus_the_largest_cosine_with_the_compared_gradients() -> None:
    new = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    stored = torch.tensor([[1.0, 1.0], [-1.0, 0.0]])
    # cosines: row 0 (1/√2, -1), row 1 (1/√2, 0), row 2 (-1/√2, 1)
    expected = torch.tensor([1 + 1 / math.sqrt(2), 1 + 1 / math.sqrt(2), 2.0])
    cosines = ExampleGradients(new).cosines(ExampleGradients(stored))
    assert torch.allclose(gss_scores(cosines), expected)


def items(values: list[float]) -> dict[str, torch.Tensor | int]:
    return {"x": torch.tensor(values).view(-1, 1), "y": torch.arange(len(values))}


def test_buffer_fills_in_order_then_refuses_redundant_examples() -> None:
    buffer = GSSBuffer(3, FIELDS, torch.Generator().manual_seed(0))
    buffer.add(items([10.0, 11.0]), torch.tensor([0.5, 1.5]))
    buffer.add(items([12.0, 13.0]), torch.tensor([0.7, 0.2]))  # the 4th arrives when full
    assert len(buffer) == 3 and buffer.num_seen == 4
    assert buffer.field("x")[:, 0].tolist()[:2] == [10.0, 11.0]
    kept = buffer.field("x")[:, 0].tolist()
    assert kept[2] == 12.0 or 13.0 in kept
    before = buffer.field("x").clone()
    for _ in range(50):  # score >= 1: aligned with some stored gradient, never stored
        buffer.add(items([99.0]), torch.tensor([1.0]))
    assert torch.equal(buffer.field("x"), before)


def test_replacement_draws_a_slot_by_score_and_keeps_it_with_probability_cj_over_cj_plus_c() -> (
    None
):
    trials, hits = 4000, torch.zeros(3)
    buffer = GSSBuffer(2, FIELDS, torch.Generator().manual_seed(1))
    for _ in range(trials):
        buffer.num_seen = 2
        buffer.field("x")[:] = torch.tensor([[0.0], [1.0]])
        buffer.field("scores")[:] = torch.tensor([1.5, 0.5])
        buffer.add(items([7.0]), torch.tensor([0.5]))
        x = buffer.field("x")[:, 0]
        hits[0 if x[0] == 7 else 1 if x[1] == 7 else 2] += 1
    # slot 0: 0.75 x 1.5/2 = 0.5625; slot 1: 0.25 x 0.5/1 = 0.125; none: 0.3125
    expected = torch.tensor([0.5625, 0.125, 0.3125])
    sd = (expected * (1 - expected) / trials).sqrt()
    assert ((hits / trials - expected).abs() < 4 * sd).all(), hits / trials


def test_a_replaced_slot_takes_the_new_score() -> None:
    buffer = GSSBuffer(1, FIELDS, torch.Generator().manual_seed(2))
    buffer.add(items([1.0]), torch.tensor([1.9]))
    for _ in range(200):
        buffer.add(items([2.0]), torch.tensor([0.1]))
        if buffer.field("x")[0, 0] == 2.0:
            break
    assert buffer.field("x")[0, 0] == 2.0
    assert buffer.field("scores")[0] == pytest.approx(0.1)


def test_first_examples_get_the_empty_buffer_score_then_gradient_scores() -> None:
    stream = make_stream("grey")
    method = build_method("gss", stream, buffer_size=100)
    method.observe(fixed_batch(stream, 0, size=6))
    scores = method.buffer.field("scores")
    assert torch.allclose(scores[:6], torch.full((6,), EMPTY_BUFFER_SCORE))
    method.observe(fixed_batch(stream, 1, size=6))
    assert ((scores[6:12] >= 0) & (scores[6:12] <= 2)).all()
    assert not torch.allclose(scores[6:12], torch.full((6,), EMPTY_BUFFER_SCORE))


def test_batch_gate_fills_with_the_batch_score_and_opens_a_full_buffer_below_one() -> None:
    stream = make_stream("grey")
    method = build_method("gss", stream, buffer_size=4, batch_gate=True)
    method.buffer.num_seen = 2  # two free slots left
    own = torch.tensor([0.3, 0.5, 0.7, 1.5])
    scores, eligible = method.gated(own, torch.tensor([0.8]))
    assert torch.allclose(scores, torch.tensor([0.8, 0.8, 0.7, 1.5]))  # fills: c_B; full: own
    assert eligible.all()  # c_B < 1: every example may replace, even one scoring 1.5
    scores, eligible = method.gated(own, torch.tensor([1.2]))
    assert torch.allclose(scores, torch.tensor([1.2, 1.2, 0.7, 1.5]))
    assert not eligible.any()  # c_B >= 1: none enters a full buffer


def test_an_eligible_example_may_replace_whatever_its_score() -> None:
    buffer = GSSBuffer(1, FIELDS, torch.Generator().manual_seed(3))
    buffer.add(items([1.0]), torch.tensor([1.9]))
    for _ in range(200):  # the paper's rule alone would never admit a score of 1.5
        buffer.add(items([2.0]), torch.tensor([1.5]), eligible=torch.tensor([True]))
        if buffer.field("x")[0, 0] == 2.0:
            break
    assert buffer.field("x")[0, 0] == 2.0
    buffer.add(items([3.0]), torch.tensor([0.01]), eligible=torch.tensor([False]))
    assert buffer.field("x")[0, 0] == 2.0  # not eligible: not even a low score enters
