"""GEM: the projection against an independent solution of its QP, and the episodic memories."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from tests.contract.test_methods import build_method, fixed_batch, make_stream

from lifelong.buffers.episodic import EpisodicMemories
from lifelong.nn.gradient_projection import flat_grad, project_gem, trainable
from lifelong.types import Batch


def dual_by_active_sets(memories: np.ndarray, g: np.ndarray, margin: float) -> np.ndarray:
    """Solve min_v ½ vᵀQv + cᵀv s.t. v ≥ margin (Q = G Gᵀ, c = G g) by trying every active set.

    For a free set S the other variables sit at the bound and ``(Qv + c)_S = 0``; the solution
    is the one whose free variables are above the bound and whose bound variables have
    non-negative multipliers ``(Qv + c)_i`` (KKT), unique since Q is positive definite.
    """
    q, c = memories @ memories.T, memories @ g
    k = len(c)
    found = []
    for size in range(k + 1):
        for free in itertools.combinations(range(k), size):
            v = np.full(k, margin)
            bound = [i for i in range(k) if i not in free]
            if free:
                f = list(free)
                rhs = -(c[f] + q[np.ix_(f, bound)] @ v[bound])
                v[f] = np.linalg.solve(q[np.ix_(f, f)], rhs)
            multipliers = q @ v + c
            if (v >= margin - 1e-10).all() and (multipliers[bound] >= -1e-10).all():
                found.append(v)
    assert len(found) == 1, found
    return found[0]


def violating_problem(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A gradient of 6 parameters and 3 memory gradients, at least two constraints violated."""
    g_gen = torch.Generator().manual_seed(seed)
    while True:
        g = torch.randn(6, generator=g_gen, dtype=torch.float64)
        memories = torch.randn(3, 6, generator=g_gen, dtype=torch.float64)
        if int((memories @ g < 0).sum()) >= 2:
            return g, memories


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("margin", [0.0, 0.5])
def test_projection_solves_the_dual_qp(seed: int, margin: float) -> None:
    g, memories = violating_problem(seed)
    projected = project_gem(g, memories, margin, eps=0.0)
    v = dual_by_active_sets(memories.numpy(), g.numpy(), margin)
    expected = v @ memories.numpy() + g.numpy()
    np.testing.assert_allclose(projected.numpy(), expected, atol=1e-8)


@pytest.mark.parametrize("seed", range(5))
def test_without_margin_the_projection_is_the_closest_gradient_that_hurts_no_memory(
    seed: int,
) -> None:
    g, memories = violating_problem(seed)
    projected = project_gem(g, memories, 0.0, eps=0.0)
    assert (memories @ projected >= -1e-9).all()
    # the primal problem, solved independently: min ||z - g||² s.t. G z ≥ 0
    primal = minimize(
        lambda z: float(((z - g.numpy()) ** 2).sum()),
        g.numpy(),
        jac=lambda z: 2 * (z - g.numpy()),
        constraints=[
            {
                "type": "ineq",
                "fun": lambda z: memories.numpy() @ z,
                "jac": lambda z: memories.numpy(),
            }
        ],
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 500},
    )
    assert primal.success
    np.testing.assert_allclose(projected.numpy(), primal.x, atol=1e-5)


def test_a_gradient_that_hurts_no_memory_is_kept() -> None:
    g = torch.tensor([1.0, 2.0, 0.0])
    memories = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 5.0]])
    assert torch.equal(project_gem(g, memories, 0.5), g)


def test_default_ridge_moves_the_solution_only_slightly() -> None:
    g, memories = violating_problem(0)
    exact = project_gem(g, memories, 0.5, eps=0.0)
    ridged = project_gem(g.float(), memories.float(), 0.5)
    assert ridged.dtype == torch.float32
    assert torch.allclose(ridged.double(), exact, atol=0.05 * float(exact.norm()))


def test_memories_split_evenly_when_the_stream_length_is_known() -> None:
    memories = EpisodicMemories(12, 3, (1, 2, 2), torch.float32, torch.Generator().manual_seed(0))
    for t in range(3):
        x = torch.full((10, 1, 2, 2), float(t))
        memories.add(x, torch.full((10,), t), t)
    for t in range(3):
        x, y = memories.examples(t)
        assert len(y) == 4 and (y == t).all() and (x == t).all()
    assert memories.past() == [0, 1]


def test_memories_shrink_when_the_stream_length_is_unknown() -> None:
    memories = EpisodicMemories(12, 0, (1, 2, 2), torch.float32, torch.Generator().manual_seed(0))
    sizes = []
    for t in range(4):
        x = torch.arange(20, dtype=torch.float32).view(20, 1, 1, 1).expand(20, 1, 2, 2) + 100 * t
        memories.add(x, torch.full((20,), t), t)
        sizes.append([len(memories.examples(k)[1]) for k in range(t + 1)])
    assert sizes == [[12], [6, 6], [4, 4, 4], [3, 3, 3, 3]]
    x0, _ = memories.examples(0)
    assert len(set(x0[:, 0, 0, 0].tolist())) == 3  # distinct examples of experience 0 kept
    assert ((x0 >= 0) & (x0 < 20)).all()


def test_memory_of_an_experience_is_a_uniform_sample_of_it() -> None:
    counts = torch.zeros(50)
    for seed in range(400):
        memories = EpisodicMemories(
            5, 1, (1, 1, 1), torch.float32, torch.Generator().manual_seed(seed)
        )
        for start in range(0, 50, 10):  # five batches of 10
            x = torch.arange(start, start + 10, dtype=torch.float32).view(10, 1, 1, 1)
            memories.add(x, torch.zeros(10, dtype=torch.int64), 0)
        counts[memories.examples(0)[0].flatten().long()] += 1
    # each example kept with probability 5/50: 40 of 400 runs, binomial sd 6
    assert counts.sum() == 2000
    assert (counts - 40).abs().max() < 25, counts


def test_gem_step_increases_no_past_memory_loss_to_first_order() -> None:
    stream = make_stream("grey")
    method = build_method("gem", stream, momentum=0.0, weight_decay=0.0, gamma=0.0)
    for t in (0, 0, 0, 1, 1, 1, 2):  # the memories of experiences 0 and 1 are now past
        method.observe(fixed_batch(stream, t))
    params = trainable(method.net)
    before = [p.detach().clone() for p in params]
    past = {}
    for k in method.memories.past():
        x, y = method.memories.examples(k)
        method.optimizer.zero_grad()
        torch.nn.functional.cross_entropy(method.net(method.augment(x)), y).backward()
        past[k] = flat_grad(params)
    assert sorted(past) == [0, 1]
    batch = fixed_batch(stream, 2)
    batch = Batch(batch.x[6:], batch.y[6:], batch.x_clean[6:], 2)
    method.optimizer.zero_grad()
    torch.nn.functional.cross_entropy(method.net(batch.x), batch.y).backward()
    g = flat_grad(params)
    assert min(float(g @ g_k) for g_k in past.values()) < 0  # the step must project
    method.observe(batch)
    step = torch.cat([(b - p.detach()).reshape(-1) for b, p in zip(before, params, strict=True)])
    update = step / method.cfg.lr  # SGD without momentum: θ ← θ − lr g̃
    for k, g_k in past.items():
        # exactly >= 0 without the ridge; the ridge eps leaves -eps v_k on active constraints
        assert float(update @ g_k) >= -1e-3 * float(update.norm() * g_k.norm()), k
