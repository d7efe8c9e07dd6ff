"""Learning tests of the gradient-based rehearsal methods: GEM, A-GEM, GSS (slow, CPU).

seq-digits (5 experiences x 2 classes), buffer 200, scenario defaults (MLP 2 x 100, batch 16,
SGD lr 0.1) unless stated; means over seeds 0 and 1. Measured (class-IL / task-IL):

- finetune (5 epochs): 18.6 / 95.5 and 18.9 / 93.5.
- GEM, one epoch per experience (GEM computes one gradient per past memory at each step, so
  the test runs it for one epoch instead of five): 86.7 / 96.0 and 90.1 / 98.3.
- A-GEM, 5 epochs, reference minibatch 128 as in the DER paper's presets: 27.0 / 98.0 and
  32.4 / 98.6. A-GEM only removes the part of the update that conflicts with the reference
  gradient, which keeps the old experiences' features (task-IL) but not their place in the
  shared head (class-IL), as in the DER paper (Seq-MNIST: 45.7 class-IL, 98.6 task-IL).
- GSS, one epoch per experience (per-example gradients at every step make it the slowest
  method): 62.1 / 96.6 and 62.3 / 92.4.
"""

from __future__ import annotations

import statistics

import pytest

pytestmark = pytest.mark.slow

SEEDS = (0, 1)
BUFFER = ("--buffer-size", "200")


def mean_accuracy(train_results, protocol: str, method: str, *flags: str) -> float:
    return statistics.mean(
        float(
            train_results("--method", method, "--seed", str(seed), *flags)["protocols"][protocol][
                "summary"
            ]["average_accuracy"]
        )
        for seed in SEEDS
    )


def test_gem_beats_finetune_by_a_wide_margin(train_results):
    gem = mean_accuracy(train_results, "class-il", "gem", *BUFFER, "--epochs", "1")
    finetune = mean_accuracy(train_results, "class-il", "finetune")
    assert gem - finetune >= 50, (gem, finetune)


def test_agem_keeps_the_tasks_but_only_part_of_the_shared_head(train_results):
    flags = (*BUFFER, "--set", "method.minibatch_size=128")
    agem = mean_accuracy(train_results, "class-il", "agem", *flags)
    finetune = mean_accuracy(train_results, "class-il", "finetune")
    assert agem - finetune >= 5, (agem, finetune)
    agem_task = mean_accuracy(train_results, "task-il", "agem", *flags)
    finetune_task = mean_accuracy(train_results, "task-il", "finetune")
    assert agem_task - finetune_task >= 2, (agem_task, finetune_task)


def test_gss_beats_finetune_by_a_wide_margin(train_results):
    gss = mean_accuracy(train_results, "class-il", "gss", *BUFFER, "--epochs", "1")
    finetune = mean_accuracy(train_results, "class-il", "finetune")
    assert gss - finetune >= 25, (gss, finetune)
