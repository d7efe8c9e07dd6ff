"""Several probes and probing modes on a trained encoder (``lifelong probe RUN_DIR``).

The continual-SSL reference (spec ``cssl.md`` §5) scores an encoder with several probes at once
(ridge, k-NN, linear: :func:`lifelong.evaluation.probes.run_probes`) under three modes:

* ``separate``: one probe per experience, fitted on that experience's training images and
  tested on its test images (its classes only); the mode's score is the mean over experiences;
* ``joint``: one probe fitted on every experience's training images and tested on the whole
  test set (all classes); the reference's final accuracy;
* ``upto`` is what a ``cssl`` run's accuracy matrix already holds after each experience, so it is
  not repeated here.

Each probe's training set keeps a uniform sample of ``per_class`` images per class (the
``cssl`` probe's cap); with ``val_ratio`` > 0 that fraction of each class is held out and the
linear probe stops early on it, as the reference does. Features are the encoder's, before any
projector, in eval mode: a ``cssl`` run's evaluation encoder (BYOL: the momentum encoder), any
other method's backbone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from lifelong.backbones import Backbone
from lifelong.data.stream import Stream
from lifelong.data.tensors import ImageSet
from lifelong.errors import ConfigError
from lifelong.evaluation.probe_head import balanced_sample, validation_split
from lifelong.evaluation.probe_names import PROBE_KINDS, PROBING_MODES
from lifelong.evaluation.probes import Features, ProbeConfig, extract_features, run_probes

log = logging.getLogger(__name__)


def probe_encoder(
    encoder: nn.Module,
    encode: Callable[[torch.Tensor], torch.Tensor],
    stream: Stream,
    probes: Sequence[str],
    modes: Sequence[str],
    cfg: ProbeConfig,
    per_class: int,
    val_ratio: float,
    generator: torch.Generator,
    device: torch.device,
) -> dict[str, dict[str, Any]]:
    """Accuracy (%) of each probe under each mode: ``{mode: {probe: value or per-experience}}``.

    ``separate`` gives, per probe, ``{"experiences": [...], "mean": m}``; ``joint`` a number.

    Raises:
        ConfigError: For an unknown probe or mode, or a bad ``per_class`` / ``val_ratio``.
    """
    unknown = [p for p in probes if p not in PROBE_KINDS] + [
        m for m in modes if m not in PROBING_MODES
    ]
    if unknown or not probes or not modes:
        raise ConfigError(
            f"probes must be among {', '.join(PROBE_KINDS)} and modes among "
            f"{', '.join(PROBING_MODES)} (got {', '.join(unknown) or 'none'})"
        )
    if per_class < 1 or not 0 <= val_ratio < 1:
        raise ConfigError(
            f"per_class must be >= 1 and val_ratio in [0, 1), got {per_class}, {val_ratio}"
        )
    chosen = ProbeConfig(
        ridge="ridge" in probes,
        knn="knn" in probes,
        linear="linear" in probes,
        ridge_alpha=cfg.ridge_alpha,
        knn_k=cfg.knn_k,
        batch_size=cfg.batch_size,
    )

    def features(images: ImageSet) -> Features:
        return extract_features(
            encoder, images, stream.transform, chosen.batch_size, device, encode
        )

    def fit_and_test(train_images: ImageSet, test_images: ImageSet) -> dict[str, float]:
        keys = torch.rand(len(train_images), generator=generator)
        kept = balanced_sample(train_images.y, keys, per_class)
        train = features(train_images.select(kept))
        held = validation_split(train.y.cpu(), keys[kept], val_ratio).to(train.y.device)
        val = Features(train.x[held], train.y[held]) if held.any() and not held.all() else None
        if val is not None:
            train = Features(train.x[~held], train.y[~held])
        return run_probes(chosen, train, features(test_images), generator, val)

    results: dict[str, dict[str, Any]] = {}
    if "separate" in modes:
        rows = [fit_and_test(e.train, e.test) for e in stream]
        results["separate"] = {
            p: {
                "experiences": [row[p] for row in rows],
                "mean": sum(r[p] for r in rows) / len(rows),
            }
            for p in probes
        }
    if "joint" in modes:
        train = ImageSet.concat([e.train for e in stream])
        test = ImageSet.concat([e.test for e in stream])
        results["joint"] = dict(fit_and_test(train, test))
    return results


def probe_after_experience(
    encoder: Backbone,
    stream: Stream,
    probes: Sequence[str],
    modes: Sequence[str],
    settings: ProbeConfig,
    per_class: int,
    val_ratio: float,
    t: int,
) -> dict[str, dict[str, Any]]:
    """``probes`` in ``modes`` on ``encoder`` after experience ``t`` (``train.probes``).

    ``settings`` gives the ridge and k-NN parameters and the batch size. The sampling and the
    linear probe draw from a generator seeded with ``t``, so training's random stream is the
    same with and without probes; the device is the encoder's.
    """
    device = next(encoder.parameters()).device
    results = probe_encoder(
        encoder, encoder.features, stream, probes, modes, settings, per_class, val_ratio,
        torch.Generator().manual_seed(t), device,
    )  # fmt: skip
    scores = [
        f"{mode} {probe} {value['mean'] if isinstance(value, dict) else value:.2f}"
        for mode, by_probe in results.items()
        for probe, value in by_probe.items()
    ]
    log.info("probes after experience %d: %s", t + 1, ", ".join(scores))
    return results
