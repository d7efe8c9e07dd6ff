"""AR1* and CWR* inside training: freezing, step composition, latent vs native replay (ar1.md)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from lifelong.backbones import BACKBONES
from lifelong.backbones.mobilenet import MobileNetConfig
from lifelong.config.training import TrainConfig
from lifelong.data.stream import Experience, Stream
from lifelong.data.tensors import ImageSet
from lifelong.data.transforms import ImageTransform
from lifelong.errors import ConfigError
from lifelong.evaluation.evaluator import Evaluator
from lifelong.methods.ar1_star import AR1Star, AR1StarConfig
from lifelong.methods.base import METHODS, MethodContext
from lifelong.nn.batch_renorm import BatchRenorm2d
from lifelong.reporting.run_logger import RunLogger
from lifelong.running.seed import seed_everything
from lifelong.running.train import FitState, fit

SHAPE = (3, 16, 16)
CLASSES = 4


def stream() -> Stream:
    """A first experience with classes 0-1 (40 images), then single-class experiences 2, 3, 0."""
    g = torch.Generator().manual_seed(7)
    colours = torch.randint(40, 216, (CLASSES, 3, 1, 1), generator=g)

    def images(label: int, n: int) -> ImageSet:
        noise = torch.randint(-30, 31, (n, *SHAPE), generator=g)
        x = (colours[label] + noise).clamp(0, 255).to(torch.uint8)
        return ImageSet(x, torch.full((n,), label, dtype=torch.int64))

    test = ImageSet.concat([images(c, 5) for c in range(CLASSES)])
    plan = [(0, 1), (2,), (3,), (0,)]
    experiences = []
    for t, classes in enumerate(plan):
        train = ImageSet.concat([images(c, 20 if t == 0 else 12) for c in classes])
        experiences.append(Experience(t, classes, train, test))
    transform = ImageTransform((0.5,) * 3, (0.25,) * 3)
    names = tuple(map(str, range(CLASSES)))
    return Stream("nic-fixture", tuple(experiences), CLASSES, "gcil", transform, names)


def build(name: str = "ar1_star", seed: int = 0, **fields: Any) -> AR1Star:
    generator = seed_everything(seed)
    s = stream()
    backbone = BACKBONES.get("mobilenet_v1").build(MobileNetConfig(width=0.25), SHAPE, CLASSES)
    ctx = MethodContext(backbone, CLASSES, SHAPE, s.transform, torch.device("cpu"), generator)
    settings = {"lr": 0.05, "inc_lr": 0.01, "rm_sz": 16, **fields}
    return AR1Star(METHODS.get(name).make_config(settings), ctx)


def train(
    method: AR1Star, epochs: int = 2, batch_size: int = 8
) -> dict[str, dict[str, torch.Tensor]]:
    """Fit the fixture stream; return the network's state after the first experience."""
    s = stream()
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, eval_batch_size=64, progress=False)
    after_first: dict[str, dict[str, torch.Tensor]] = {}

    def boundary(state: FitState) -> None:
        if state.next_experience == 1:
            after_first.update(lower=snapshot(method.lower), upper=snapshot(method.upper))
            after_first.update(net=snapshot(method.net))

    evaluator = Evaluator(s, 64, torch.device("cpu"))
    fit(
        method,
        s,
        cfg,
        evaluator,
        RunLogger(None, log_every=5),
        method.ctx.generator,
        None,
        boundary,
    )
    return after_first


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_lower_layers_weights_and_statistics_stay_after_the_first_experience() -> None:
    method = build()
    assert any(isinstance(m, BatchRenorm2d) for m in method.lower.modules())
    first = train(method)
    for key, value in snapshot(method.lower).items():
        assert torch.equal(value, first["lower"][key]), f"frozen {key} changed"
    moved = [k for k, v in snapshot(method.upper).items() if not torch.equal(v, first["upper"][k])]
    assert any("running" in k for k in moved) and any("conv.weight" in k for k in moved)
    assert all(not p.requires_grad for p in method.lower.parameters())
    # in the first experience the lower part trained (train_lower, the default)
    assert not torch.equal(
        first["lower"]["conv1.conv.weight"], build().lower.state_dict()["conv1.conv.weight"]
    )


def test_steps_mix_new_examples_and_memory_patterns_by_the_reference_formula() -> None:
    method = build(rm_sz=16)
    seen: list[tuple[int, int]] = []
    original = method.observe

    def spy(batch: Any) -> Any:
        out = original(batch)
        seen.append((batch.experience_id, len(batch)))
        return out

    method.observe = spy  # type: ignore[method-assign]
    train(method, epochs=1, batch_size=8)
    # experience 0: plain batches of 8; later: N = 12, n_cur = 12 // ((12 + 16) // 8) = 4
    assert {size for t, size in seen if t == 0} == {8}
    assert {size for t, size in seen if t > 0} == {4}
    assert len(method.memory) == 16
    assert method.memory.labels.bincount(minlength=CLASSES).tolist()[3] > 0


def test_latent_and_native_replay_train_identically_with_a_frozen_lower_part() -> None:
    latent = build(replay="latent", train_lower=False)
    native = build(replay="input", train_lower=False)
    train(latent)
    train(native)
    for key, value in snapshot(latent.net).items():
        assert torch.allclose(value.float(), snapshot(native.net)[key].float(), atol=1e-5), key
    assert latent.memory.patterns is not None and native.memory.patterns is not None
    assert latent.memory.patterns.shape[1:] != native.memory.patterns.shape[1:]
    assert torch.equal(latent.memory.labels, native.memory.labels)


def test_cwr_star_trains_only_the_head_after_the_first_experience() -> None:
    method = build("cwr_star")
    first = train(method)
    for key, value in snapshot(method.net).items():
        if not key.startswith("head."):
            assert torch.equal(value, first["net"][key]), key
    assert not torch.equal(first["net"]["head.weight"], method.net.head.weight)
    assert len(method.memory) == 0
    with pytest.raises(ConfigError, match="replay is always 'none' in cwr_star"):
        METHODS.get("cwr_star").make_config({"replay": "latent"})


def test_ar1_needs_a_backbone_with_split_points() -> None:
    from lifelong.backbones.mlp import MLP, MLPConfig

    generator = seed_everything(0)
    backbone = MLP(MLPConfig((8,)), SHAPE, CLASSES)
    ctx = MethodContext(
        backbone, CLASSES, SHAPE, stream().transform, torch.device("cpu"), generator
    )
    method = AR1Star(AR1StarConfig(latent_layer="fc1"), ctx)
    assert method.lower[0] is not None
    with pytest.raises(ConfigError, match="fc1"):
        AR1Star(AR1StarConfig(latent_layer="conv5_4/dw"), ctx)


def test_latent_replay_at_a_resnet18_split_point() -> None:
    from lifelong.backbones.resnet import ResNetConfig

    generator = seed_everything(0)
    backbone = BACKBONES.get("resnet18").build(ResNetConfig(nf=4), SHAPE, CLASSES)
    cpu = torch.device("cpu")
    ctx = MethodContext(backbone, CLASSES, SHAPE, stream().transform, cpu, generator)
    method = AR1Star(AR1StarConfig(lr=0.05, inc_lr=0.01, rm_sz=16, latent_layer="layer2"), ctx)
    train(method, epochs=1)
    assert method.memory.patterns is not None
    # layer2 of the reduced ResNet-18 at nf = 4: 8 channels at half the input resolution
    assert tuple(method.memory.patterns.shape[1:]) == (8, 8, 8)
    assert all(not p.requires_grad for p in method.lower.parameters())
