"""Experiences and streams: immutable sequences, no hidden task cursor."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from lifelong.data.tensors import ImageSet
from lifelong.data.transforms import ImageTransform

Setting = Literal["class-il", "domain-il", "gcil", "general"]
Protocol = Literal["class-il", "task-il", "domain-il"]


@dataclass(frozen=True)
class Experience:
    """One experience of a stream.

    Attributes:
        id: Position in the stream (0-based).
        classes: Labels present in this experience.
        train: Training images of this experience.
        test: Test images of this experience.
        val: Validation images held out of this experience's training data (``dataset.validation``
            > 0), or None.
    """

    id: int
    classes: tuple[int, ...]
    train: ImageSet
    test: ImageSet
    val: ImageSet | None = None


@dataclass(frozen=True)
class Stream:
    """An immutable sequence of experiences plus what evaluating it needs.

    Attributes:
        name: Scenario name (e.g. ``seq-mnist``).
        experiences: The experiences in order.
        num_classes: Size of the shared output head.
        setting: ``class-il`` (new classes per experience; task-IL is reported too),
            ``domain-il`` (same classes, new input distribution) or ``gcil`` (generalised
            class-incremental: classes recur, test sets are cumulative, class-IL only) or
            ``general`` (general continual: one ordered stream without boundaries, class-IL only).
        ordered: Whether the order of each experience's training data is part of the scenario
            (the loop then takes it in order instead of shuffling).
        transform: Normalisation and training augmentation of this dataset.
        class_names: Human-readable class names, indexed by label.
    """

    name: str
    experiences: tuple[Experience, ...]
    num_classes: int
    setting: Setting
    transform: ImageTransform
    class_names: tuple[str, ...]
    ordered: bool = False

    def __len__(self) -> int:
        return len(self.experiences)

    def __getitem__(self, index: int) -> Experience:
        return self.experiences[index]

    def __iter__(self) -> Iterator[Experience]:
        return iter(self.experiences)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the inputs."""
        return self.experiences[0].train.image_shape

    @property
    def protocols(self) -> tuple[Protocol, ...]:
        """Evaluation protocols reported for this stream."""
        if self.setting == "class-il":
            return ("class-il", "task-il")
        return ("domain-il",) if self.setting == "domain-il" else ("class-il",)

    @property
    def has_validation(self) -> bool:
        """Whether every experience holds a validation set."""
        return all(e.val is not None for e in self.experiences)

    def seen_classes(self, upto: int) -> tuple[int, ...]:
        """Sorted labels of experiences ``0..upto`` inclusive."""
        return tuple(sorted({c for e in self.experiences[: upto + 1] for c in e.classes}))
