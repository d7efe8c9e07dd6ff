"""SARL-online: warm-up in steps, running class statistics, term timing, prototypes, the CLI."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

import lifelong.components  # noqa: F401
from lifelong.backbones import BACKBONES
from lifelong.backbones.mlp import MLPConfig
from lifelong.cli import main
from lifelong.data.catalog import GREY
from lifelong.data.stream import Experience, Stream
from lifelong.data.tensors import ImageSet
from lifelong.errors import ConfigError
from lifelong.methods.base import METHODS, MethodContext
from lifelong.methods.sarl import SARL
from lifelong.running.seed import seed_everything
from lifelong.running.train import batches
from lifelong.types import Batch

FAST = ("--no-progress", "--no-tensorboard")
BOUNDARY_TERMS = {"distill", "semantic", "prototype"}


def _stream() -> Stream:
    """Two experiences of two separable classes each (1x8x8 grey images)."""
    generator = torch.Generator().manual_seed(0)
    parts = []
    for t in range(2):
        classes = (2 * t, 2 * t + 1)
        y = torch.tensor(classes).repeat_interleave(30)
        x = torch.randint(0, 256, (60, 1, 8, 8), generator=generator, dtype=torch.uint8)
        for c in classes:  # a bright stripe per class
            x[y == c, :, c] = 255
        parts.append(Experience(t, classes, ImageSet(x, y), ImageSet(x[:20], y[:20])))
    return Stream("synthetic", tuple(parts), 4, "class-il", GREY, ("0", "1", "2", "3"))


def _online(stream: Stream, **overrides: object) -> SARL:
    generator = seed_everything(0)
    net = BACKBONES.get("mlp").build(MLPConfig(hidden=(16,)), stream.image_shape, 4)
    ctx = MethodContext(
        net, 4, stream.image_shape, stream.transform, torch.device("cpu"), generator
    )
    settings = {"lr": 0.05, "buffer_size": 40, "minibatch_size": 8, **overrides}
    return SARL(METHODS.get("sarl_online").make_config(settings), ctx)


def _batches(method: SARL, stream: Stream, t: int, steps: int) -> list[Batch]:
    """``steps`` batches of 10 from experience ``t``, drawn as the loop draws them."""
    cpu = torch.device("cpu")
    data = stream[t].train
    return list(batches(data, steps, 10, 2, stream.transform, False, method.ctx.generator, cpu, t))


class FeatureSpy:
    """Records the input of every call of the network's head (the penultimate features)."""

    def __init__(self, method: SARL) -> None:
        self.calls: list[torch.Tensor] = []
        method.net.head.register_forward_pre_hook(self._record)

    def _record(self, module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        self.calls.append(args[0].detach().clone())

    def current(self) -> torch.Tensor:
        """Features of the current batch: ``observe`` runs the head on them last."""
        return self.calls[-1]


def _class_sums(features: list[torch.Tensor], labels: list[torch.Tensor]) -> torch.Tensor:
    """Hand computation: per-class sums (4, D) of L2-normalised features."""
    sums = torch.zeros(4, features[0].shape[1])
    for f, y in zip(features, labels, strict=True):
        unit = f / f.norm(dim=1, keepdim=True).clamp(min=1e-12)
        for i, c in enumerate(y.tolist()):
            sums[c] += unit[i]
    return sums


def test_running_sums_start_after_the_warmup_iterations_and_restart_per_experience() -> None:
    stream = _stream()
    method = _online(stream, warmup_iters=3)
    spy = FeatureSpy(method)
    method.train()
    method.before_experience(stream[0])
    steps = _batches(method, stream, 0, 5)
    for batch in steps[:3]:
        method.observe(batch)
    assert method.running_count.sum().item() == 0
    assert not method.running_sum.any()
    method.observe(steps[3])
    counts = torch.bincount(steps[3].y, minlength=4).float()
    assert torch.equal(method.running_count, counts)
    expected = _class_sums([spy.current()], [steps[3].y])
    torch.testing.assert_close(method.running_sum, expected)
    method.observe(steps[4])
    assert method.running_count.sum().item() == 20
    method.after_experience(stream[0])
    assert method.steps == 0
    assert not method.running_count.any() and not method.running_sum.any()


def test_distillation_and_semantic_terms_only_after_the_warmup_of_later_experiences() -> None:
    stream = _stream()
    warmup, steps = 3, 6
    method = _online(stream, warmup_iters=warmup)
    spy = FeatureSpy(method)
    method.train()
    seen: list[list[set[str]]] = []
    for t in range(2):
        method.before_experience(stream[t])
        seen.append([])
        for i, batch in enumerate(_batches(method, stream, t, steps)):
            assert method.grouped == (t > 0 and i > warmup)
            seen[t].append(set(method.observe(batch).terms))
            if t == 1 and i == warmup:
                # grouping used the running prototypes of this first post-warm-up batch only
                unit = F.normalize(spy.current(), dim=1)
                for c in batch.y.unique().tolist():
                    mean = unit[batch.y == c].mean(0)
                    torch.testing.assert_close(method.running[c], mean)
                    assert method.similar[c, c]
                assert not method.similar[:2].any()
        method.after_experience(stream[t])
    # experience 0: only CE and the buffer terms, before and after its warm-up
    assert all(not terms & BOUNDARY_TERMS for terms in seen[0])
    assert all(terms >= {"ce"} for terms in seen[0])
    # experience 1: prototype regularisation from the first step (buffer non-empty) ...
    assert all("prototype" in terms for terms in seen[1])
    # ... distillation and the semantic ratio from step warmup + 1 on, never during warm-up
    assert all(not terms & {"distill", "semantic"} for terms in seen[1][:warmup])
    assert all(terms >= {"distill", "semantic"} for terms in seen[1][warmup:])


def test_prototypes_at_experience_end_are_the_running_means_of_the_new_classes() -> None:
    stream = _stream()
    warmup, steps = 2, 6
    method = _online(stream, warmup_iters=warmup)
    spy = FeatureSpy(method)
    method.train()
    expected = []
    for t in range(2):
        method.before_experience(stream[t])
        features, labels = [], []
        for i, batch in enumerate(_batches(method, stream, t, steps)):
            method.observe(batch)
            if i >= warmup:
                features.append(spy.current())
                labels.append(batch.y)
        if t == 1:
            old = method.prototypes[:2].clone()
        method.after_experience(stream[t])
        sums = _class_sums(features, labels)
        counts = torch.bincount(torch.cat(labels), minlength=4).float()
        new = [2 * t, 2 * t + 1]
        expected.append(sums[new] / counts[new][:, None])
        torch.testing.assert_close(method.prototypes[new], expected[t])
    assert method.learned.all()
    # classes of experience 0 keep the prototypes stored at their own boundary
    torch.testing.assert_close(method.prototypes[:2], old)
    torch.testing.assert_close(method.prototypes[:2], expected[0])
    # means of unit vectors of one class: non-trivial, norm at most 1
    norms = method.prototypes.norm(dim=1)
    assert torch.all(norms > 0.1) and torch.all(norms <= 1 + 1e-6)


@pytest.mark.parametrize(
    ("field", "value"), [("warmup_epochs", 3), ("lr_steps", (5,)), ("warmup_iters", -1)]
)
def test_epoch_settings_are_refused_with_a_message_naming_the_field(
    field: str, value: object
) -> None:
    with pytest.raises(ConfigError, match=f"method.{field}"):
        METHODS.get("sarl_online").make_config({field: value})


def _run(tmp_path: Path, *args: str) -> tuple[int, Path]:
    run_dir = tmp_path / "run"
    code = main(["run", *FAST, "--run-dir", str(run_dir), "--method", "sarl_online", *args])
    return code, run_dir


def _steps(run_dir: Path) -> list[dict[str, object]]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if r["kind"] == "step"]


def test_cli_run_on_seq_digits(tmp_path: Path) -> None:
    code, run_dir = _run(
        tmp_path,
        *("--dataset", "seq-digits", "--iters", "6", "--buffer-size", "50"),
        *("--set", "warmup_iters=3", "--set", "train.log_every=1"),
    )
    assert code == 0
    results = json.loads((run_dir / "results.json").read_text())
    assert results["completed"] and results["num_experiences"] == 5
    assert len(results["protocols"]["class-il"]["matrix"]) == 5
    assert "name: sparse_mlp" in (run_dir / "config.yaml").read_text()
    steps = _steps(run_dir)
    assert len(steps) == 5 * 6
    for record in steps:
        index = (int(record["step"]) - 1) % 6  # step within its experience
        late = record["experience"] > 0 and index >= 3
        assert ({"distill", "semantic"} <= record.keys()) == late, record


def _write_fake_mnist(root: Path, per_class: int) -> None:
    """A tiny valid MNIST in torchvision's layout (gzip-compressed IDX files).

    Like MNIST, images are mostly zero: 15 % random pixels on, plus two rows per class.
    """
    rng = np.random.default_rng(0)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix in ("train", "t10k"):
        labels = np.repeat(np.arange(10), per_class).astype(np.uint8)
        images = (rng.random((len(labels), 28, 28)) < 0.15).astype(np.uint8) * 255
        for c in range(10):
            images[labels == c, 2 * c + 4 : 2 * c + 6] = 255
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            shape = b"".join(d.to_bytes(4, "big") for d in array.shape)
            header = bytes([0, 0, 0x08, array.ndim]) + shape
            (raw / f"{prefix}-{kind}-ubyte.gz").write_bytes(gzip.compress(header + array.tobytes()))


def test_mnist360_preset_runs_and_boundary_terms_never_activate(tmp_path: Path) -> None:
    """One experience (setting ``general``): only CE and the buffer terms, as in the reference."""
    _write_fake_mnist(tmp_path / "data", per_class=24)
    code, run_dir = _run(
        tmp_path,
        *("--preset", "mnist-360/sarl_online", "--data-root", str(tmp_path / "data")),
        *("--set", "warmup_iters=1", "--set", "train.log_every=1"),
    )
    assert code == 0
    results = json.loads((run_dir / "results.json").read_text())
    assert results["completed"] and results["num_experiences"] == 1
    config = (run_dir / "config.yaml").read_text()
    assert "name: sparse_mlp" in config and "lr: 0.2" in config
    steps = _steps(run_dir)
    assert len(steps) > 2
    assert all(not record.keys() & BOUNDARY_TERMS for record in steps)
    assert all({"ce", "logit_mse", "replay_ce"} <= record.keys() for record in steps[1:])
