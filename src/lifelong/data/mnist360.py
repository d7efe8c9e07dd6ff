"""MNIST-360 (Buzzega et al., NeurIPS 2020): the DER paper's general-continual rotating stream.

Digits 0-8 arrive in pairs (0,1), (1,2), ..., (8,0), three rounds. Each class's training images
are split into 6 chunks, one per visit. Batches mix the two active classes in proportion to the
items left in their chunks; the pair switches as soon as one chunk is exhausted, and the rest of
the other chunk is dropped (as in the reference). Class ``j`` is rotated incrementally: its
``k``-th example by ``(j - 1) * 60 + k * 360 / N_j`` degrees, so each class sweeps a full turn over
the stream; test images of class ``j`` are rotated by ``k * 360 / M_j``.

The whole stream is one experience whose order is part of the data (``Stream.ordered``): the loop
takes it in order, in one pass. Differences from the reference (mammoth's ``MNIST360``): its
per-class loaders re-create an iterator for every example and so draw with replacement, and its
rotation counter advances with every draw; here each chunk is drawn without replacement and the
rotation follows the example's position. The mixing is computed for ``MIXING_BATCH`` (16, the
reference's default batch size); the loop slices the sequence into equal batches, so a batch
can straddle a pair switch where the reference would emit a short batch.
"""

from __future__ import annotations

import torch

from lifelong.data.scenarios import rotate
from lifelong.data.stream import Experience
from lifelong.data.tensors import ImageSet, TrainTest

CLASSES = 9
ROUNDS = 3
MIXING_BATCH = 16


def _chunks(indices: torch.Tensor, generator: torch.Generator) -> list[list[int]]:
    """Shuffle a class's indices and split them into ``2 * ROUNDS`` chunks (one per visit)."""
    shuffled = indices[torch.randperm(len(indices), generator=generator)].tolist()
    size = len(shuffled) // (2 * ROUNDS) + 1
    return [shuffled[k * size : (k + 1) * size] for k in range(2 * ROUNDS)]


def stream_batches(labels: torch.Tensor, generator: torch.Generator) -> list[list[int]]:
    """Training indices in MNIST-360 order, as the reference's mixing batches.

    A batch never spans a pair switch, so the last batch of a pair can be short.
    """
    chunks = {j: _chunks(torch.nonzero(labels == j).flatten(), generator) for j in range(CLASSES)}
    order: list[list[int]] = []
    for _ in range(ROUNDS):
        for first in range(CLASSES):
            pair = (first, (first + 1) % CLASSES)
            active = [chunks[pair[0]].pop(0), chunks[pair[1]].pop(0)]
            while active[0] and active[1]:
                left = len(active[0]) + len(active[1])
                take0 = min(round(len(active[0]) / left * MIXING_BATCH), len(active[0]))
                take1 = min(MIXING_BATCH - take0, len(active[1]))
                order.append(active[0][:take0] + active[1][:take1])
                active = [active[0][take0:], active[1][take1:]]
    return order


def incremental_angles(labels: torch.Tensor, start: bool) -> torch.Tensor:
    """Per-example angles: class ``j`` turns 360 degrees over its examples, in order."""
    angles = torch.zeros(len(labels))
    for j in range(CLASSES):
        members = torch.nonzero(labels == j).flatten()
        offset = (j - 1) * 60.0 if start else 0.0
        angles[members] = offset + torch.arange(len(members)) * (360.0 / max(len(members), 1))
    return angles


def mnist360_experience(data: TrainTest, seed: int) -> Experience:
    """The single ordered experience of MNIST-360 built from MNIST."""
    generator = torch.Generator().manual_seed(seed)
    flat = [i for batch in stream_batches(data.train.y, generator) for i in batch]
    order = torch.tensor(flat, dtype=torch.int64)
    train_y = data.train.y[order]
    train_x = rotate(data.train.x[order], incremental_angles(train_y, start=True))
    test = data.test.with_classes(tuple(range(CLASSES)))
    test_x = rotate(test.x, incremental_angles(test.y, start=False))
    return Experience(
        0, tuple(range(CLASSES)), ImageSet(train_x, train_y), ImageSet(test_x, test.y)
    )
