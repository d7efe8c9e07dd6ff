"""Generalised class-incremental learning (GCIL; Mi et al., 2020), as used by CLS-ER and SARL.

Each of ``phases`` experiences draws a random number of classes (1 to ``class_upper``, among
classes with unused training data), then ``samples_per_phase`` draws among them, uniform or
long-tailed (weight ``0.984 ** class``, about 20x between the first and the last class of
CIFAR-100), repeated until every chosen class appears. Samples are used at most once; a class can
come back in a later phase with new samples. Labels are renumbered in order of first appearance,
and each phase's test set holds the test images of every class seen so far. The training set must
hold at least ``phases * samples_per_phase`` images (20,000 of CIFAR-100's 50,000 by default);
a smaller one is a :class:`~lifelong.errors.DataError`, not a shorter stream.

Differences from the reference (CLS-ER's ``GCIL_CIFAR100``): it uses NumPy's legacy global
generator seeded with ``gil_seed``, which also resets the generator its buffer uses; we use our
own ``numpy.random.default_rng(gil_seed)``, so the phase sequence is, as in the reference, the
same for every run seed, but it is not the same sequence as the reference's.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from lifelong.data.stream import Experience
from lifelong.data.tensors import ImageSet, TrainTest
from lifelong.errors import DataError

Weights = Literal["unif", "longtail"]
LONGTAIL_BASE = 0.984
DEFAULT_PHASES = 20
"""Phases of the reference's GCIL-CIFAR-100."""
DEFAULT_SAMPLES_PER_PHASE = 1000
"""Training samples per phase in the reference."""


REDRAWS = 100
"""Draws of a phase's samples before the fallback that gives every chosen class one sample."""


def _draw_phase(
    rng: np.random.Generator,
    remaining: dict[int, list[int]],
    weights: Weights,
    class_upper: int,
    samples: int,
) -> dict[int, int]:
    """Classes of one phase and how many samples each gets (capped by what is left).

    As the reference, the samples are redrawn until every chosen class appears. When that is
    unlikely (many classes for few samples) it would never end: after :data:`REDRAWS` draws
    every chosen class gets one sample and the rest are drawn by weight (with the reference's
    1,000 samples and at most 50 classes the first draw practically always succeeds).
    """
    available = [c for c, left in remaining.items() if left]
    # every chosen class must appear in the phase, so a phase has at most ``samples`` classes
    n_classes = int(rng.integers(1, min(len(available), class_upper, samples) + 1))
    chosen = rng.choice(available, n_classes, replace=False)
    w = np.ones(n_classes) if weights == "unif" else LONGTAIL_BASE ** chosen.astype(float)
    for _ in range(REDRAWS):
        draws = rng.choice(chosen, samples, p=w / w.sum())
        if len(np.unique(draws)) == n_classes:
            break
    else:
        draws = np.concatenate([chosen, rng.choice(chosen, samples - n_classes, p=w / w.sum())])
    counts = {int(c): int((draws == c).sum()) for c in chosen}
    return {c: min(n, len(remaining[c])) for c, n in counts.items()}


def _too_few_images(phases: int, samples_per_phase: int, available: int) -> DataError:
    """The one-line error for data that cannot fill ``phases`` phases of ``samples_per_phase``."""
    return DataError(
        f"GCIL asks for {phases} phases of {samples_per_phase} samples "
        f"({phases * samples_per_phase} training images, each used once) but the data hold "
        f"{available} training images, enough for {available // samples_per_phase} phases; "
        "use the complete training set (CIFAR-100: 50,000 images), or lower "
        "dataset.n_experiences (the phases) or dataset.gcil_samples_per_phase"
    )


def gcil_experiences(
    data: TrainTest,
    weights: Weights,
    phases: int = DEFAULT_PHASES,
    class_upper: int = 50,
    samples_per_phase: int = DEFAULT_SAMPLES_PER_PHASE,
    gil_seed: int = 1993,
) -> tuple[tuple[Experience, ...], TrainTest]:
    """Build the GCIL phases; also return the data with labels in first-appearance order.

    Raises:
        DataError: if the training set holds fewer than ``phases * samples_per_phase`` images,
            so that fewer phases than asked (or phases short of samples) would be built.
    """
    if phases * samples_per_phase > len(data.train):
        raise _too_few_images(phases, samples_per_phase, len(data.train))
    rng = np.random.default_rng(gil_seed)
    labels = data.train.y.numpy()
    remaining = {
        c: rng.permutation(np.flatnonzero(labels == c)).tolist() for c in range(data.num_classes)
    }
    plans = []
    for _ in range(phases):
        if not any(remaining.values()):  # cannot happen after the check above; never go short
            raise _too_few_images(phases, samples_per_phase, len(data.train))
        counts = _draw_phase(rng, remaining, weights, class_upper, samples_per_phase)
        picked = {c: [remaining[c].pop() for _ in range(n)] for c, n in counts.items()}
        plans.append(picked)
    order: list[int] = []
    for picked in plans:
        order += [c for c in sorted(picked) if c not in order]
    order += [c for c in range(data.num_classes) if c not in order]
    remap = torch.empty(data.num_classes, dtype=torch.int64)
    remap[torch.tensor(order)] = torch.arange(data.num_classes)
    train = ImageSet(data.train.x, remap[data.train.y])
    test = ImageSet(data.test.x, remap[data.test.y])
    names = tuple(data.class_names[c] for c in order)
    experiences = []
    seen: set[int] = set()
    for t, picked in enumerate(plans):
        index = torch.tensor([i for ids in picked.values() for i in ids], dtype=torch.int64)
        classes = tuple(sorted(int(remap[c]) for c in picked))
        seen.update(classes)
        experiences.append(
            Experience(t, classes, train.select(index), test.with_classes(tuple(sorted(seen))))
        )
    return tuple(experiences), TrainTest(train, test, names)
