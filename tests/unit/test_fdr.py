"""FDR's function-distance term by hand and its experience-balanced memory."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812

import lifelong.components  # noqa: F401  (fills the registries)
from lifelong.backbones import BACKBONES
from lifelong.backbones.mlp import MLPConfig
from lifelong.data.stream import Experience
from lifelong.data.tensors import ImageSet
from lifelong.data.transforms import ImageTransform
from lifelong.losses.function_distance import function_distance
from lifelong.methods.base import METHODS, MethodContext
from lifelong.methods.fdr import FDR
from lifelong.types import Batch, StepOutput


def test_function_distance_is_the_mean_l2_norm_of_output_differences():
    probs = torch.tensor([[0.5, 0.5, 0.0], [0.1, 0.2, 0.7]])
    stored = torch.tensor([[0.2, 0.9, -0.0], [0.1, 0.2, 0.7]])
    # row 0: sqrt(0.3^2 + 0.4^2) = 0.5; row 1: 0
    assert math.isclose(float(function_distance(probs, stored)), 0.25, rel_tol=1e-6)


def make_fdr(buffer_size: int, alpha: float = 1.0) -> FDR:
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    backbone = BACKBONES.get("mlp").build(MLPConfig(hidden=(16, 8)), (1, 4, 4), 6)
    ctx = MethodContext(
        backbone, 6, (1, 4, 4), ImageTransform((0.0,), (1.0,)), torch.device("cpu"), generator
    )
    entry = METHODS.get("fdr")
    config = entry.make_config({"buffer_size": buffer_size, "minibatch_size": 4, "alpha": alpha})
    method = entry.build(config, ctx)
    assert isinstance(method, FDR)
    return method


def experience(t: int, classes: tuple[int, ...], per_class: int = 10) -> Experience:
    g = torch.Generator().manual_seed(t)
    x = torch.randint(0, 256, (per_class * len(classes), 1, 4, 4), generator=g, dtype=torch.uint8)
    y = torch.tensor(classes).repeat_interleave(per_class)
    return Experience(t, classes, ImageSet(x, y), ImageSet(x, y))


def test_memory_is_split_between_experiences_with_outputs_recorded_at_their_end():
    method = make_fdr(buffer_size=12)
    first = experience(0, (0, 1))
    method.after_experience(first)
    assert method.memory_experience.tolist() == [0] * 12
    x0 = method.memory_x[:12].clone()
    with torch.no_grad():
        assert torch.allclose(method.memory_probs, F.softmax(method.net(x0), 1))
    recorded = method.memory_probs[:6].clone()
    with torch.no_grad():  # the network changes before the next experience ends
        method.net.head.bias.add_(1.0)
    method.after_experience(experience(1, (2, 3)))
    assert method.memory_experience.tolist() == [0] * 6 + [1] * 6
    assert torch.equal(method.memory_x[:6], x0[:6])  # the first items of experience 0 stay
    assert torch.equal(method.memory_probs[:6], recorded)  # with their recorded outputs


def observe_once(method: FDR) -> StepOutput:
    """One step after experience 0 on a batch of new classes."""
    method.after_experience(experience(0, (0, 1)))
    g = torch.Generator().manual_seed(3)
    x = torch.randn(5, 1, 4, 4, generator=g)
    out = method.observe(Batch(x, torch.tensor([2, 3, 2, 3, 2]), x, 1))
    assert float(out.terms["function_distance"]) > 0  # the CE step moved the outputs
    return out


def test_observe_adds_alpha_times_the_distance_step_on_memory():
    out = observe_once(make_fdr(buffer_size=8, alpha=0.5))
    assert torch.isclose(out.loss, out.terms["ce"] + 0.5 * out.terms["function_distance"])


def test_alpha_weights_the_distance_step_and_zero_turns_it_off():
    off, on = make_fdr(buffer_size=8, alpha=0.0), make_fdr(buffer_size=8, alpha=1.0)
    before = [p.detach().clone() for p in off.net.parameters()]
    observe_once(off)
    observe_once(on)
    moved = [
        not torch.equal(a, b)
        for a, b in zip(off.net.parameters(), on.net.parameters(), strict=True)
    ]
    assert any(moved)  # the memory step acts with alpha 1 and not with alpha 0
    assert any(not torch.equal(a, b) for a, b in zip(before, off.net.parameters(), strict=True))


def test_the_paper_presets_keep_the_unweighted_step():
    # the DER paper's FDR code never weights its memory step; its tuned lrs assume weight 1, and
    # the alpha its best_args list (0.2 on Seq-MNIST 500/5120) made the step 5x too weak
    from lifelong.config import resolve
    from lifelong.config.presets import load_preset

    for dataset in ("seq-mnist", "perm-mnist", "rot-mnist"):
        for buffer in (200, 500, 5120):
            name = f"{dataset}/fdr-{buffer}"
            assert resolve(load_preset(name), name).method.alpha == 1.0
