"""A-GEM: the projection formula by hand, and the reference minibatch."""

from __future__ import annotations

import torch
from tests.contract.test_methods import build_method, fixed_batch, make_stream

from lifelong.nn.gradient_projection import flat_grad, project_agem, trainable
from lifelong.types import Batch


def test_a_conflicting_gradient_loses_its_component_along_the_reference() -> None:
    g = torch.tensor([1.0, -2.0, 0.0])
    g_ref = torch.tensor([0.0, 1.0, 1.0])
    # gᵀg_ref = -2, g_refᵀg_ref = 2: g̃ = g + g_ref
    projected = project_agem(g, g_ref)
    assert torch.allclose(projected, torch.tensor([1.0, -1.0, 1.0]))
    assert torch.isclose(projected @ g_ref, torch.tensor(0.0))


def test_an_agreeing_or_orthogonal_gradient_is_kept() -> None:
    g = torch.tensor([1.0, 2.0, 0.0])
    assert torch.equal(project_agem(g, torch.tensor([0.0, 1.0, 1.0])), g)
    assert torch.equal(project_agem(g, torch.tensor([0.0, 0.0, 1.0])), g)


def test_reference_batch_comes_from_past_experiences_only() -> None:
    stream = make_stream("grey")
    method = build_method("agem", stream, buffer_size=24, minibatch_size=8)
    for t in (0, 0, 1):
        method.observe(fixed_batch(stream, t))
    assert method.memories.past() == [0]
    _, y = method.memories.sample_past(100)
    assert len(y) == 12 and set(y.tolist()) <= set(stream[0].classes)


def test_agem_step_follows_the_projected_gradient() -> None:
    stream = make_stream("grey")
    method = build_method("agem", stream, momentum=0.0, minibatch_size=8)
    for t in (0, 0, 0, 1):  # the memory of experience 0 is now past
        method.observe(fixed_batch(stream, t))
    params = trainable(method.net)
    before = [p.detach().clone() for p in params]
    batch = fixed_batch(stream, 1, size=16)
    batch = Batch(batch.x[12:], batch.y[12:], batch.x_clean[12:], 1)  # not the batch seen above
    rng_state = method.memories.rng.getstate()
    # the gradients the step will see, computed independently on a copy of its draws
    method.optimizer.zero_grad()
    torch.nn.functional.cross_entropy(method.net(batch.x), batch.y).backward()
    g = flat_grad(params)
    x_ref, y_ref = method.memories.sample_past(8)
    method.optimizer.zero_grad()
    torch.nn.functional.cross_entropy(method.net(x_ref), y_ref).backward()
    g_ref = flat_grad(params)
    method.memories.rng.setstate(rng_state)
    method.observe(batch)
    update = torch.cat([(b - p.detach()).reshape(-1) for b, p in zip(before, params, strict=True)])
    expected = g - min(0.0, float(g @ g_ref)) / float(g_ref @ g_ref) * g_ref
    assert torch.allclose(update / method.cfg.lr, expected, atol=1e-5)
    assert float(g @ g_ref) < 0  # new classes conflict with the old ones: a real projection
