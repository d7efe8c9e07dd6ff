"""New Instances and Classes (NIC) streams: many small experiences over one shared test set.

The NIC scenario comes from Lomonaco & Maltoni, "CORe50: a New Dataset and Benchmark for
Continuous Object Recognition" (CoRL 2017); NICv2, where a first batch of 10 classes is followed
by hundreds of small single-class batches, from Lomonaco, Maltoni & Pellegrini, "Rehearsal-Free
Continual Learning over Small Non-I.I.D. Batches" (CVPR-W 2020). :mod:`lifelong.data.core50` reads
the official CORe50 tables; :func:`nic_plan` builds a NICv2-like stream from any labelled dataset:

- experience 0 holds one chunk of ``first_classes`` classes drawn at random;
- every class's remaining training examples are cut into chunks of about ``chunk`` examples,
  and each later experience is one such chunk (a single class);
- the later chunks come in a random order, so classes already seen come back with new
  examples while new classes keep appearing until every class has been seen. NICv2-391 has the
  same shape: 50 classes of 8 sessions each, 10 sessions in batch 0, 390 single-session batches.

Every training example is used exactly once. The order depends only on ``seed`` (the
``dataset.run`` field, as CORe50's runs are fixed batch orders), not on the training seed.

Evaluation: one test set shared by every experience. As in the reference, the accuracy after
each experience is the top-1 accuracy over all classes on the *whole* test set (single head, no
task labels), so every experience holds the same :class:`ImageSet` object as its test set.
The stream's setting is ``gcil`` rather than ``class-il``: ``class-il`` also reports task-IL,
which masks the logits to an experience's classes and would score one-class experiences on a
test set of all classes, which means nothing; ``gcil`` (classes recur, class-IL only) is exactly
this protocol. Row ``t`` of the accuracy matrix then holds the same value in every column, so
average accuracy is the accuracy on the shared test set after experience ``t`` and average
incremental accuracy is the mean of the reference's accuracy curve.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch

from lifelong.data.scenarios import DatasetConfig
from lifelong.data.stream import Experience, Stream
from lifelong.data.tensors import ImageSet, TrainTest
from lifelong.data.transforms import ImageTransform
from lifelong.errors import ConfigError

log = logging.getLogger(__name__)

DataLoader = Callable[[DatasetConfig], TrainTest]
"""Loads a dataset's train and test splits for a scenario's config."""


def shared_test_experiences(batches: Sequence[ImageSet], test: ImageSet) -> tuple[Experience, ...]:
    """One experience per training batch, all holding the same ``test`` object.

    Args:
        batches: The training data of each experience, in stream order.
        test: The test set every experience is evaluated on (shared, not copied).

    Returns:
        The experiences; each one's ``classes`` are the labels present in its batch.
    """
    return tuple(
        Experience(t, tuple(int(c) for c in torch.unique(batch.y)), batch, test)
        for t, batch in enumerate(batches)
    )


def _chunks(index: torch.Tensor, chunk: int) -> list[torch.Tensor]:
    """Cut ``index`` into ``round(len / chunk)`` (at least one) parts of near-equal size."""
    if len(index) == 0:
        return []
    parts = max(1, round(len(index) / chunk))
    return list(torch.tensor_split(index, parts))


def nic_plan(labels: torch.Tensor, first_classes: int, chunk: int, seed: int) -> list[torch.Tensor]:
    """Indices of the training examples of each experience of a NIC stream.

    Args:
        labels: Training labels (N,), int64.
        first_classes: Classes in the first experience (capped at the classes present).
        chunk: Examples per chunk: the first experience takes one chunk of each of its classes,
            every later experience is one chunk of a single class.
        seed: Seeds the choice of the first classes, the chunks and their order.

    Returns:
        One int64 index tensor per experience; together they hold every index exactly once.

    Raises:
        ConfigError: if ``first_classes`` or ``chunk`` is not positive.
    """
    if first_classes < 1 or chunk < 1:
        raise ConfigError(
            f"NIC needs positive first classes and chunk size, got {first_classes} and {chunk}: "
            "set dataset.nic_first_classes and dataset.nic_chunk"
        )
    generator = torch.Generator().manual_seed(seed)
    present = torch.unique(labels)
    if first_classes > len(present):
        log.warning("only %d classes present; the first experience holds all of them", len(present))
    shuffled = present[torch.randperm(len(present), generator=generator)]
    first = set(shuffled[:first_classes].tolist())
    first_parts: list[torch.Tensor] = []
    later: list[torch.Tensor] = []
    for c in present.tolist():
        index = torch.nonzero(labels == c).flatten()
        index = index[torch.randperm(len(index), generator=generator)]
        if c in first:
            first_parts.append(index[:chunk])
            index = index[chunk:]
        later += _chunks(index, chunk)
    order = torch.randperm(len(later), generator=generator).tolist()
    return [torch.cat(first_parts), *(later[i] for i in order)]


def nic_stream(
    name: str,
    data: TrainTest,
    transform: ImageTransform,
    first_classes: int,
    chunk: int,
    seed: int,
) -> Stream:
    """A NIC stream of ``data`` (see :func:`nic_plan`) over its whole test set, shared.

    Args:
        name: Scenario name.
        data: The dataset; its full test split is the shared test set.
        transform: Normalisation and training augmentation of the dataset.
        first_classes: Classes in the first experience.
        chunk: Examples per chunk.
        seed: Seeds the plan.
    """
    plan = nic_plan(data.train.y, first_classes, chunk, seed)
    batches = [data.train.select(index) for index in plan]
    experiences = shared_test_experiences(batches, data.test)
    log.info(
        "%s: %d experiences, the first with %d classes and %d examples",
        name, len(experiences), len(experiences[0].classes), len(batches[0]),
    )  # fmt: skip
    return Stream(name, experiences, data.num_classes, "gcil", transform, data.class_names)


def nic_scenario(
    name: str, load: DataLoader, transform: ImageTransform, first_classes: int, chunk: int
) -> Callable[[DatasetConfig, int], Stream]:
    """A scenario builder for :func:`nic_stream` with default first classes and chunk size.

    ``dataset.nic_first_classes`` and ``dataset.nic_chunk`` override the defaults, and
    ``dataset.run`` seeds the plan.
    """

    def build(cfg: DatasetConfig, seed: int) -> Stream:
        data = load(cfg)
        first = cfg.nic_first_classes or first_classes
        return nic_stream(name, data, transform, first, cfg.nic_chunk or chunk, cfg.run)

    return build
