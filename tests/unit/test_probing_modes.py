"""The probing modes against a hand-computed case: ``separate`` fits a probe per experience's
data, ``joint`` one probe on all of it (the continual-SSL reference's two modes)."""

from __future__ import annotations

import torch

from lifelong.data.stream import Experience, Stream
from lifelong.data.tensors import ImageSet
from lifelong.data.transforms import ImageTransform
from lifelong.evaluation.probes import ProbeConfig
from lifelong.evaluation.probing import probe_encoder


def _images(pairs: list[tuple[int, int]]) -> ImageSet:
    """One-pixel images: ``(pixel value, label)`` pairs."""
    x = torch.tensor([v for v, _ in pairs], dtype=torch.uint8).view(-1, 1, 1, 1)
    return ImageSet(x, torch.tensor([label for _, label in pairs]))


def test_separate_and_joint_1nn_probes_match_the_hand_computed_accuracies() -> None:
    # experience 0: class 0 at 10, class 1 at 100; experience 1: class 2 at 40, class 3 at 200.
    # The class-0 test image (30) is nearer class 2's training image (40) than class 0's (10):
    # a 1-NN probe over all classes (joint) calls it 2; within experience 0 (separate) it is 0.
    first = Experience(0, (0, 1), _images([(10, 0), (100, 1)]), _images([(30, 0), (100, 1)]))
    second = Experience(1, (2, 3), _images([(40, 2), (200, 3)]), _images([(45, 2), (190, 3)]))
    names = ("a", "b", "c", "d")
    stream = Stream("hand", (first, second), 4, "class-il", ImageTransform((0.0,), (1.0,)), names)
    flat = torch.nn.Flatten()
    results = probe_encoder(
        flat, flat, stream, ["knn"], ["separate", "joint"], ProbeConfig(knn_k=1),
        per_class=1, val_ratio=0.0, generator=torch.Generator().manual_seed(0),
        device=torch.device("cpu"),
    )  # fmt: skip
    assert results["separate"]["knn"] == {"experiences": [100.0, 100.0], "mean": 100.0}
    assert results["joint"]["knn"] == 75.0  # 3 of the 4 test images
