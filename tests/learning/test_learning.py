"""Learning tests: the methods learn what the literature says they learn (slow, CPU).

On seq-digits (scikit-learn's 8x8 digits, offline, 5 experiences x 2 classes) every method runs
with the scenario defaults (MLP 2 x 100, 5 epochs of batch 16, SGD lr 0.1) over two seeds, and
the class-IL final average accuracies are compared by their mean. Measured (seeds 0, 1):
finetune 18.6 / 18.9, ER-200 91.3 / 91.5, DER++-200 93.2 / 94.1, joint 95.8 / 94.6.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from lifelong.cli import main
from lifelong.reporting.results import read_results

pytestmark = pytest.mark.slow

SEEDS = (0, 1)
BUFFER = ("--buffer-size", "200")


def class_il(results: dict) -> float:
    return float(results["protocols"]["class-il"]["summary"]["average_accuracy"])


def mean_class_il(train_results, method: str, *flags: str) -> float:
    return statistics.mean(
        class_il(train_results("--method", method, "--seed", str(seed), *flags)) for seed in SEEDS
    )


def test_finetune_forgets_everything_but_the_last_experience(train_results):
    finetune = mean_class_il(train_results, "finetune")
    # only the last 2 of 10 classes are predicted: about 20% class-IL
    assert 15 <= finetune <= 25
    for seed in SEEDS:
        results = train_results("--method", "finetune", "--seed", str(seed))
        # ...while task-IL (the task's own classes only) stays high: the features survive
        assert results["protocols"]["task-il"]["summary"]["average_accuracy"] > 85


def test_er_beats_finetune_by_a_wide_margin(train_results):
    er = mean_class_il(train_results, "er", *BUFFER)
    finetune = mean_class_il(train_results, "finetune")
    assert er - finetune >= 30, (er, finetune)
    assert er >= 80


def test_derpp_beats_finetune_by_a_wide_margin(train_results):
    derpp = mean_class_il(train_results, "derpp", *BUFFER)
    finetune = mean_class_il(train_results, "finetune")
    assert derpp - finetune >= 30, (derpp, finetune)


def test_joint_is_an_upper_bound_for_er(train_results):
    joint = mean_class_il(train_results, "joint")
    er = mean_class_il(train_results, "er", *BUFFER)
    assert joint >= er - 1, (joint, er)
    assert joint >= 90


def test_a_larger_buffer_forgets_less(train_results):
    small = mean_class_il(train_results, "er", "--buffer-size", "20")
    large = mean_class_il(train_results, "er", *BUFFER)
    assert large > small + 5, (large, small)


@pytest.mark.data
def test_er_on_real_seq_mnist_matches_the_der_paper(mnist_root: Path, tmp_path: Path, capsys):
    """ER, buffer 200, Seq-MNIST class-IL: the DER paper reports 80.43 +- 1.89 (Table 2)."""
    run_dir = tmp_path / "run"
    argv = ["run", "--method", "er", "--dataset", "seq-mnist", "--buffer-size", "200"]
    argv += [
        "--data-root",
        str(mnist_root),
        "--run-dir",
        str(run_dir),
        "--no-progress",
        "--no-tensorboard",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    results = read_results(run_dir)
    assert results["completed"] is True
    assert results["config"]["train"]["epochs"] == 1
    assert class_il(results) >= 75, class_il(results)
