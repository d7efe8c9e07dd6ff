"""How concentrated is the balanced variant's replay? Effective sample size of its importance.

Trains ``sarl_enhanced_gelu_balanced`` with ``benchmarks/sarl_table.py``'s settings (2 epochs,
batch 10, replay 10, buffer 200, lr 0.03, ``warmup_epochs=0``) and records, at every replay
draw, the effective sample size ``(sum w)^2 / sum w^2`` of the importance weights ``w`` over the
buffer, as a fraction of the buffer's size (1: uniform; 0.05: as if only 5 % of the buffer were
replayed), and the probability mass of the 10 % most important items. Prints one row per
experience and the final class-IL average accuracy.

Usage:
    python benchmarks/balanced_replay.py --dataset seq-fmnist \
        --data-root ../shared/data/fashion-mnist --seed 0 [--set min_score=0.1]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
import yaml

from lifelong.config import merge, resolve
from lifelong.evaluation.metrics import average_accuracy
from lifelong.methods.sarl import SARL
from lifelong.running.run import build, train_into
from lifelong.running.train import FitState


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="seq-fmnist")
    parser.add_argument("--data-root", default="../shared/data/fashion-mnist")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], help="method settings, key=value")
    args = parser.parse_args()
    method = {
        "name": "sarl_enhanced_gelu_balanced",
        "lr": 0.03,
        "buffer_size": 200,
        "minibatch_size": 10,
        "warmup_epochs": 0,
    }
    for item in args.set:
        key, value = item.split("=", 1)
        method[key] = yaml.safe_load(value)
    raw = {
        "method": method,
        "dataset": {"name": args.dataset, "root": args.data_root},
        "backbone": {"name": "gelu_mlp"},
        "train": {"epochs": 2, "batch_size": 10, "progress": False},
        "seed": args.seed,
    }
    cfg = resolve(merge({}, raw))
    built = build(cfg, None)
    learner = built.method
    assert isinstance(learner, SARL) and learner.cfg.use_balanced_sampling
    records: list[tuple[int, float, float]] = []
    importance = learner.importance

    def recorded() -> torch.Tensor:
        weights = importance()
        share = weights / weights.sum()
        ess = float(1.0 / (share**2).sum()) / len(weights)
        top = max(1, len(weights) // 10)
        records.append((learner.experiences_done, ess, float(share.topk(top).values.sum())))
        return weights

    learner.importance = recorded  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        state = train_into(built, cfg, Path(tmp), FitState(), tensorboard=False)
    print(f"settings: {method}")
    print("| experience | draws | ESS / buffer (mean, min) | mass of top 10 % (mean) |")
    print("|---|---|---|---|")
    for t in range(len(built.stream)):
        rows = [r for r in records if r[0] == t]
        if rows:
            ess = [r[1] for r in rows]
            mass = sum(r[2] for r in rows) / len(rows)
            print(
                f"| {t + 1} | {len(rows)} | {sum(ess) / len(ess):.3f}, {min(ess):.3f} | "
                f"{mass:.3f} |"
            )
    print(f"class-IL average accuracy: {average_accuracy(np.array(state.rows['class-il'])):.2f}")


if __name__ == "__main__":
    main()
