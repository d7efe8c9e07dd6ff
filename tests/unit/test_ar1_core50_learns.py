"""AR1* from random weights learns a small, learnable CORe50 in evaluation mode (issue 21).

Without pre-trained weights every norm layer starts from placeholder running statistics (mean 0,
std 1). Under a short schedule with a small momentum they stayed there, and evaluation, which
uses them, collapsed the features (std across images 1e-3 of their mean): every test image got
one class, 2 % on 50 classes, while the training loss fell. The norms now warm their statistics
up from the first batch (``BatchRenorm2d``'s bias-corrected rate).
"""

from __future__ import annotations

import dataclasses
import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from lifelong.config import resolve, set_key
from lifelong.config.presets import load_preset
from lifelong.evaluation.evaluator import Evaluator
from lifelong.reporting.run_logger import RunLogger
from lifelong.running.run import build
from lifelong.running.train import fit

SIDE = 32
FIRST = tuple(range(0, 50, 5))  # CORe50's first batch: one object per category
LATER = (1, 2, 3, 6)  # the one-class batches that follow (classes 1, 2, 3 are new)
TRAIN_EXPERIENCES = 1 + len(LATER)


def write_learnable_core50(root: Path, per_class: int = 16, per_batch: int = 16) -> None:
    """A CORe50 in the official format whose 50 classes are coarse colour patterns plus noise.

    ``paths.pkl``, ``LUP.pkl`` and ``labels.pkl`` (nicv2_391, run 0: 391 training batches and
    the test set) and ``core50_imgs.npz``. Batch 0 holds ``per_class`` images of each class of
    :data:`FIRST`, batches 1.. hold ``per_batch`` images of one class each (:data:`LATER`
    first, then class 0), the test set 4 images of each of the 50 classes.
    """
    rng = np.random.default_rng(0)
    prototypes = rng.integers(0, 256, (50, 4, 4, 3)).astype(np.float32)
    prototypes = prototypes.repeat(SIDE // 4, axis=1).repeat(SIDE // 4, axis=2)
    later = [*LATER, *([0] * (390 - len(LATER)))]
    entries = [[c for c in FIRST for _ in range(per_class)]]
    entries += [[c] * per_batch for c in later]
    entries.append([c for c in range(50) for _ in range(4)])
    labels = [c for entry in entries for c in entry]
    noise = rng.normal(0.0, 30.0, (len(labels), SIDE, SIDE, 3))
    images = np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8)
    paths = [f"s1/o{c + 1}/C_01_{c + 1:02d}_{i:05d}.png" for i, c in enumerate(labels)]
    starts = np.cumsum([0, *(len(e) for e in entries)])
    lookup = [list(range(starts[i], starts[i + 1])) for i in range(len(entries))]
    root.mkdir(parents=True)
    (root / "paths.pkl").write_bytes(pickle.dumps(paths))
    (root / "LUP.pkl").write_bytes(pickle.dumps({"nicv2_391": [lookup]}))
    (root / "labels.pkl").write_bytes(pickle.dumps({"nicv2_391": [entries]}))
    np.savez(root / "core50_imgs.npz", x=images)


@pytest.fixture(scope="module")
def core50_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("learnable") / "core50"
    write_learnable_core50(root)
    return root


@pytest.mark.slow
@pytest.mark.parametrize(
    ("batch_renorm", "train_lower"), [(True, False), (False, False)], ids=["preset", "batch-norm"]
)
def test_ar1_star_from_random_weights_beats_chance_in_evaluation_mode(
    core50_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    batch_renorm: bool,
    train_lower: bool,
) -> None:
    monkeypatch.setenv("LIFELONG_CACHE_DIR", str(tmp_path / "cache"))
    raw = load_preset("core50-nicv2-391/ar1_star")
    settings = {
        "dataset.root": str(core50_root),
        "dataset.test_subsample": 1,
        "backbone.width": 0.25,
        "backbone.batch_renorm": batch_renorm,
        "method.train_lower": train_lower,
        "method.lr": 0.05,  # the preset's 0.001 / 5e-5 suit ImageNet weights, not 20 steps
        "method.inc_lr": 0.0025,
        "train.progress": False,
    }
    for key, value in settings.items():
        raw = set_key(raw, key, value)
    cfg = resolve(raw)
    with caplog.at_level(logging.WARNING, logger="lifelong.methods.ar1_star"):
        built = build(cfg)
    random_frozen = [r for r in caplog.records if "random and stay frozen" in r.getMessage()]
    assert len(random_frozen) == (0 if train_lower else 1)
    stream = dataclasses.replace(
        built.stream, experiences=built.stream.experiences[:TRAIN_EXPERIENCES]
    )
    evaluator = Evaluator(stream, 1000, torch.device("cpu"))
    fit(built.method, stream, cfg.train, evaluator, RunLogger(None, 50), built.generator)

    seen = sorted({*FIRST, *LATER})
    test = stream[0].test
    keep = torch.isin(test.y, torch.tensor(seen))
    built.method.eval()
    with torch.no_grad():
        x = stream.transform.normalize(test.x[keep])
        predicted = built.method.predict(x).argmax(1)
        features = built.method.features(x)
    accuracy = float((predicted == test.y[keep]).float().mean())
    # the collapse: near-constant features (std across images ~1e-3 of the mean), one class
    spread = features.std(0).mean() / features.mean(0).abs().mean()
    assert spread > 0.1
    assert predicted.unique().numel() >= len(seen) // 2
    assert accuracy > 4 / len(seen)  # chance is 1 / 14
