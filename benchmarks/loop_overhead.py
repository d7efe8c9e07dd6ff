"""Where the training loop's time goes beyond the compute floor (issue 19, item 4).

The ER seq-mnist workload of ``throughput.py`` (preset ``seq-mnist/er-200``: MLP 2×100, batch 10
+ 10 replayed, 6,002 steps), in ONE process, each part timed ``--repeats`` times alternating
with the others (the minimum is kept):

* ``floor``: ``throughput.compute_floor``, the bare SGD steps on pre-loaded tensors;
* ``end to end``: ``train_into`` as a run executes it (step logs, TensorBoard, evaluations,
  checkpoints), and the same without TensorBoard;
* from the end-to-end run's own records: the evaluations after each experience and the
  experience-boundary work (checkpoint and results files) as the rest of the wall time;
* the per-step library pieces alone, on the same number of steps: batch gathering and
  normalisation (``running.train.batches``), ER's replay sampling, concatenation and reservoir
  insertion, and the step log (``RunLogger.step`` without files).

What the parts leave of the end-to-end time beyond the floor is the Python around ``observe``
(the loop body, ``learning_rate``, the progress bar's update, the precision context).

Usage:
    python benchmarks/loop_overhead.py --data-root ../shared/data/mnist [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch

from lifelong.methods.rehearsal import with_replay
from lifelong.reporting.run_logger import RunLogger
from lifelong.running.run import build, train_into
from lifelong.running.train import FitState, batches
from lifelong.types import StepOutput
from throughput import compute_floor, mnist_config


def end_to_end(cfg: object, stream: object, tensorboard: bool) -> tuple[float, FitState]:
    """Wall time of ``train_into`` and its final state."""
    built = build(cfg, stream)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        state = train_into(built, cfg, Path(tmp), FitState(), tensorboard=tensorboard)  # type: ignore[arg-type]
        return time.perf_counter() - start, state


def batch_gathering(cfg: object, stream: object, steps_per_experience: list[int]) -> float:
    """Time of iterating ``batches`` over every experience (no training)."""
    built = build(cfg, stream)  # type: ignore[arg-type]
    start = time.perf_counter()
    for t, steps in enumerate(steps_per_experience):
        data = built.stream[t].train
        for _ in batches(
            data, steps, 10, 64, built.stream.transform, False, built.generator,
            torch.device("cpu"), t,
        ):  # fmt: skip
            pass
    return time.perf_counter() - start


def replay_work(cfg: object, stream: object, steps_per_experience: list[int]) -> float:
    """Time of ER's buffer work alone: sample + concatenate, then reservoir insertion."""
    built = build(cfg, stream)  # type: ignore[arg-type]
    method = built.method
    pieces = []
    for t, steps in enumerate(steps_per_experience):
        pieces += list(
            batches(
                built.stream[t].train, steps, 10, 64, built.stream.transform, False,
                built.generator, torch.device("cpu"), t,
            )
        )  # fmt: skip
    buffer = method.buffer  # type: ignore[attr-defined]
    start = time.perf_counter()
    for batch in pieces:
        with_replay(batch, buffer, 10, method.augment)
        buffer.add({"x": batch.x_clean, "y": batch.y, "experience": batch.experience_id})
    return time.perf_counter() - start


def step_logging(steps: int) -> float:
    """Time of ``RunLogger.step`` (no files) for ``steps`` steps of a detached loss."""
    logger = RunLogger(None, log_every=50)
    out = StepOutput(torch.tensor(0.5))
    start = time.perf_counter()
    for _ in range(steps):
        logger.step(out, 0, 0, 0.01)
    logger.flush(0, 0)
    return time.perf_counter() - start


def main() -> None:
    """Measure and print the breakdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="../shared/data/mnist")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = mnist_config(args.data_root)
    stream = build(cfg).stream
    best: dict[str, float] = {}
    evaluation = boundary = float("inf")
    for _ in range(args.repeats):
        wall, state = end_to_end(cfg, stream, tensorboard=True)
        best["end to end"] = min(best.get("end to end", wall), wall)
        if wall == best["end to end"]:
            evaluation = sum(state.eval_seconds)
            boundary = wall - sum(state.seconds) - evaluation
        wall, _ = end_to_end(cfg, stream, tensorboard=False)
        best["end to end, no TensorBoard"] = min(best.get("end to end, no TensorBoard", wall), wall)
        floor = compute_floor(cfg, stream, state.step, 20)
        best["floor"] = min(best.get("floor", floor), floor)
        steps = [math.ceil(len(experience.train) / 10) for experience in stream]
        gather = batch_gathering(cfg, stream, steps)
        best["batch gathering"] = min(best.get("batch gathering", gather), gather)
        replay = replay_work(cfg, stream, steps)
        best["replay sample + insert"] = min(best.get("replay sample + insert", replay), replay)
        logged = step_logging(state.step)
        best["step log"] = min(best.get("step log", logged), logged)
    floor, e2e = best["floor"], best["end to end"]
    print(f"{state.step} steps, 1 thread, minimum of {args.repeats} repeats")
    print(f"{'part':<34} {'seconds':>8} {'/ floor':>8}")
    rows = [
        ("floor (bare SGD steps)", floor),
        ("end to end", e2e),
        ("end to end, no TensorBoard", best["end to end, no TensorBoard"]),
        ("  of which evaluations", evaluation),
        ("  of which boundary files", boundary),
        ("batch gathering (alone)", best["batch gathering"]),
        ("replay sample + insert (alone)", best["replay sample + insert"]),
        ("step log (alone)", best["step log"]),
    ]
    for name, seconds in rows:
        print(f"{name:<34} {seconds:8.3f} {seconds / floor:8.3f}")
    explained = (
        evaluation
        + boundary
        + sum(best[k] for k in ("batch gathering", "replay sample + insert", "step log"))
    )
    rest = e2e - floor - explained
    print(f"{'the rest (loop body, Python)':<34} {rest:8.3f} {rest / floor:8.3f}")


if __name__ == "__main__":
    main()
