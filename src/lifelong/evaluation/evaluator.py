"""Accuracy of a method on every experience of a stream, under each protocol of the stream."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol as TypingProtocol
from typing import runtime_checkable

import torch

from lifelong.data.stream import Experience, Protocol, Stream
from lifelong.data.tensors import ImageSet
from lifelong.evaluation.confusion import PredictionTally


class Predictor(TypingProtocol):
    """What the evaluator needs of a model: logits for inputs, and a train/eval switch.

    Every :class:`~lifelong.methods.base.Method` is one (it is an ``nn.Module`` with
    ``predict``); so is any module a user wraps, without importing the method layer.
    """

    training: bool

    def train(self, mode: bool = True) -> object:
        """Switch training mode (``nn.Module.train``)."""
        ...

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, num_classes]`` for a normalised batch ``x``."""
        ...


@runtime_checkable
class TaskConditioned(Predictor, TypingProtocol):
    """A predictor whose task-IL logits depend on the task id (BI-R with XdG gates)."""

    def task_logits(self, x: torch.Tensor, experience_id: int) -> torch.Tensor | None:
        """Logits of ``x`` given its experience, or None to mask :meth:`predict`'s logits."""
        ...


def task_mask(num_classes: int, classes: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Additive logit mask: 0 for ``classes``, -inf elsewhere (task-incremental evaluation)."""
    mask = torch.full((num_classes,), float("-inf"), device=device)
    mask[list(classes)] = 0.0
    return mask


@contextmanager
def evaluation_mode(method: Predictor) -> Iterator[None]:
    """Put ``method`` in eval mode for the block, then restore its previous mode."""
    was_training = method.training
    method.train(False)
    try:
        yield
    finally:
        method.train(was_training)


@dataclass(frozen=True)
class Evaluation:
    """One evaluation pass: accuracy rows, and the predictions counted on the seen test sets.

    Attributes:
        rows: Protocol → accuracy (%) on every experience (NaN for those not tested).
        confusion: (K, K) counts of true class × predicted class (argmax over all units) on the
            test sets of the experiences seen so far.
        top5: Top-5 accuracy (%) on those test sets; NaN with ten classes or fewer.
        test_sizes: Test examples of every experience of the stream.
    """

    rows: dict[str, list[float]]
    confusion: torch.Tensor
    top5: float
    test_sizes: list[int]


@dataclass(frozen=True)
class Evaluator:
    """Computes accuracies (in %) on the test sets of a stream.

    Class-IL and domain-IL take the argmax over all output units; task-IL masks the logits to
    the classes of the experience being tested (a :class:`TaskConditioned` method's own
    logits for that experience, when it gives them).

    Attributes:
        stream: The stream whose test sets are used.
        batch_size: Test batch size.
        device: Where to run.
    """

    stream: Stream
    batch_size: int
    device: torch.device

    @torch.inference_mode()
    def accuracy(
        self,
        method: Predictor,
        experience: Experience,
        images: ImageSet | None = None,
        tally: PredictionTally | None = None,
    ) -> dict[Protocol, float]:
        """Accuracy on one experience's test set (or ``images``) under every protocol.

        With ``tally`` the argmax predictions over all units are also counted into it.
        """
        test = experience.test if images is None else images
        correct = dict.fromkeys(self.stream.protocols, 0)
        mask = task_mask(self.stream.num_classes, experience.classes, self.device)
        transform = self.stream.transform
        conditioned = "task-il" in correct and isinstance(method, TaskConditioned)
        for start in range(0, len(test), self.batch_size):
            x = transform.normalize(test.x[start : start + self.batch_size].to(self.device))
            y = test.y[start : start + self.batch_size].to(self.device)
            logits = method.predict(x)
            predictions = logits.argmax(1)
            if tally is not None:
                tally.add(logits, predictions, y)
            own = method.task_logits(x, experience.id) if conditioned else None  # type: ignore[attr-defined]
            task_logits = logits if own is None else own
            for protocol in correct:
                chosen = (task_logits + mask).argmax(1) if protocol == "task-il" else predictions
                correct[protocol] += int((chosen == y).sum())
        return {p: 100.0 * c / max(len(test), 1) for p, c in correct.items()}

    def validate(self, method: Predictor) -> dict[str, list[float]]:
        """Accuracies on every experience's validation set (the stream must hold them)."""
        rows: dict[str, list[float]] = {p: [] for p in self.stream.protocols}
        with evaluation_mode(method):
            for experience in self.stream:
                if experience.val is None:
                    raise ValueError(f"experience {experience.id} has no validation set")
                for protocol, value in self.accuracy(method, experience, experience.val).items():
                    rows[protocol].append(value)
        return rows

    def evaluate(self, method: Predictor, upto: int | None = None) -> dict[str, list[float]]:
        """Accuracies on experiences ``0..upto`` (all when None); NaN for the rest.

        The method is put in eval mode for the evaluation and restored afterwards.
        """
        return self.evaluate_counting(method, upto).rows

    def evaluate_counting(
        self, method: Predictor, upto: int | None = None, seen: int | None = None
    ) -> Evaluation:
        """As :meth:`evaluate`, also counting the predictions on the test sets of ``0..seen``.

        Args:
            method: The model to evaluate (eval mode for the pass, its mode restored after).
            upto: Last experience tested (all when None).
            seen: Last experience whose test predictions are counted (``upto`` when None);
                no larger than ``upto``.
        """
        last = len(self.stream) - 1 if upto is None else upto
        seen = last if seen is None else min(seen, last)
        tally = PredictionTally(self.stream.num_classes, self.device)
        tallied: set[int] = set()
        rows: dict[str, list[float]] = {p: [] for p in self.stream.protocols}
        done: dict[tuple[int, tuple[int, ...]], dict[Protocol, float]] = {}
        with evaluation_mode(method):
            for experience in self.stream:
                accs: dict[str, float] | dict[Protocol, float]
                if experience.id > last:
                    accs = dict.fromkeys(rows, float("nan"))
                else:  # experiences sharing one test set (NIC streams) are scored once
                    key = (id(experience.test), experience.classes if "task-il" in rows else ())
                    if key not in done:
                        counted = experience.id <= seen and id(experience.test) not in tallied
                        if counted:
                            tallied.add(id(experience.test))
                        done[key] = self.accuracy(
                            method, experience, tally=tally if counted else None
                        )
                    accs = done[key]
                for protocol, value in accs.items():
                    rows[protocol].append(value)
        sizes = [len(experience.test) for experience in self.stream]
        return Evaluation(rows, tally.confusion(), tally.top_k_accuracy(), sizes)
