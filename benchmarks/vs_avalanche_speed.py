"""End to end against Avalanche: wall time, peak memory and accuracy of ER and DER++ (issue 19).

The workloads of issue 19: Seq-MNIST (5 experiences of 2 classes), an MLP 2×100, buffer 200,
batch 10 + 10 replayed, one epoch, SGD lr 0.1, one thread; DER++ with α 0.2 and β 1.0.

* lifelong: ``lifelong run --preset seq-mnist/{er,derpp}-200`` with those fields set and its
  default outputs (TensorBoard, plots, checkpoints, CSV tables), a fresh process per run.
* Avalanche 0.6.0 (in ``benchmarks/out/avalanche-venv``, which
  ``avalanche_side_by_side.py`` creates): ``SplitMNIST`` read from the same MNIST files, its
  ``SimpleMLP`` (2 hidden layers of 100, no dropout), ``Naive`` with ``ReplayPlugin`` (its
  default storage policy: experience-balanced, filled at the end of each experience, where ours
  is a reservoir updated at every step; ``batch_size_mem`` 10) and ``DER``, evaluated on the
  test stream after each experience
  with its default evaluator (accuracy and loss metrics, the interactive logger), as a user
  runs it, a fresh process per run.

Wall time is the whole process as a user waits for it (``/usr/bin/time``), peak RSS its
``maxrss``; runs are interleaved and each side keeps the median of ``--repeats``. A bare
``python -c "import torch"`` process gives the memory floor. Accuracy: the final average class-IL
accuracy over ``--seeds`` seeds for both. Results also go to
``benchmarks/out/vs_avalanche_speed.json``.

Usage:
    python benchmarks/vs_avalanche_speed.py --data-root ../shared/data/mnist [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AVALANCHE_PYTHON = REPO / "benchmarks/out/avalanche-venv/bin/python"
WORKLOADS = {
    "ER": ("er", ["--lr", "0.1", "--minibatch-size", "10"]),
    "DER++": ("derpp", ["--lr", "0.1", "--minibatch-size", "10", "--alpha", "0.2", "--beta", "1"]),
}
COMMON = ["--batch-size", "10", "--buffer-size", "200", "--epochs", "1"]
AVALANCHE_RUN = """
import json, sys, warnings
warnings.simplefilter("ignore")
import torch
torch.set_num_threads(1)
from avalanche.benchmarks.classic import SplitMNIST
from avalanche.models import SimpleMLP
from avalanche.training import DER, Naive
from avalanche.training.plugins import ReplayPlugin
from avalanche.training.determinism.rng_manager import RNGManager

workload, seed, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
RNGManager.set_random_seeds(seed)
bench = SplitMNIST(n_experiences=5, seed=seed, dataset_root=root, return_task_id=False)
model = SimpleMLP(num_classes=10, hidden_size=100, hidden_layers=2, drop_rate=0.0)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
common = dict(train_mb_size=10, train_epochs=1, eval_mb_size=256, device="cpu")
if workload == "ER":
    replay = ReplayPlugin(mem_size=200, batch_size_mem=10)
    strategy = Naive(model=model, optimizer=opt, plugins=[replay], **common)
else:
    strategy = DER(model=model, optimizer=opt, mem_size=200, batch_size_mem=10, alpha=0.2,
                   beta=1.0, **common)
for experience in bench.train_stream:
    strategy.train(experience)
    metrics = strategy.eval(bench.test_stream)
per_exp = [v for k, v in metrics.items() if k.startswith("Top1_Acc_Exp/eval_phase/test_stream")]
print(json.dumps({"accuracy": 100 * sum(per_exp) / len(per_exp)}))
"""


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (GB) and stdout of one process, measured by ``/usr/bin/time``."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        full = ["/usr/bin/time", "-f", "%e %M", "-o", report.name, *command]
        out = subprocess.run(full, env=env, check=True, capture_output=True, text=True)
        wall, peak_kb = report.read().split()[-2:]
    return float(wall), float(peak_kb) / 1e6, out.stdout


def ours_command(workload: str, seed: int, data_root: str, run_dir: Path) -> list[str]:
    """``lifelong run`` for a workload and seed."""
    method, fields = WORKLOADS[workload]
    preset = ["--preset", f"seq-mnist/{method}-200", "--seed", str(seed), "--no-progress"]
    where = ["--data-root", data_root, "--run-dir", str(run_dir)]
    return [sys.executable, "-m", "lifelong", "run", *preset, *fields, *COMMON, *where]


def ours_accuracy(run_dir: Path) -> float:
    """The class-IL final average accuracy of a finished run."""
    results = json.loads((run_dir / "results.json").read_text())
    return float(results["protocols"]["class-il"]["summary"]["average_accuracy"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="../shared/data/mnist")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/out/vs_avalanche_speed.json")
    args = parser.parse_args()
    if not AVALANCHE_PYTHON.exists():
        raise SystemExit(f"no {AVALANCHE_PYTHON}: run benchmarks/avalanche_side_by_side.py once")
    data_root = str(Path(args.data_root).resolve())
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    avalanche_env = {**env, "PYTHONPATH": ""}
    record: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        floor = [timed([sys.executable, "-c", "import torch"], env)[1] for _ in range(3)]
        for repeat in range(args.repeats):  # interleaved: ours, Avalanche, per workload
            for workload in WORKLOADS:
                run_dir = Path(tmp) / f"{workload}-time-{repeat}"
                wall, peak, _ = timed(ours_command(workload, 0, data_root, run_dir), env)
                record.setdefault(f"ours {workload}", {}).setdefault("wall", []).append(wall)
                record[f"ours {workload}"].setdefault("peak", []).append(peak)
                command = [str(AVALANCHE_PYTHON), "-c", AVALANCHE_RUN, workload, "0", data_root]
                wall, peak, _ = timed(command, avalanche_env)
                record.setdefault(f"avalanche {workload}", {}).setdefault("wall", []).append(wall)
                record[f"avalanche {workload}"].setdefault("peak", []).append(peak)
                print(f"repeat {repeat} {workload}: done", flush=True)
        for workload in WORKLOADS:
            for seed in range(args.seeds):
                run_dir = Path(tmp) / f"{workload}-acc-{seed}"
                timed(ours_command(workload, seed, data_root, run_dir), env)
                ours = record[f"ours {workload}"]
                ours.setdefault("accuracy", []).append(ours_accuracy(run_dir))
                command = [str(AVALANCHE_PYTHON), "-c", AVALANCHE_RUN, workload, str(seed)]
                _, _, out = timed([*command, data_root], avalanche_env)
                accuracy = json.loads(out.strip().splitlines()[-1])["accuracy"]
                record[f"avalanche {workload}"].setdefault("accuracy", []).append(accuracy)
    torch_floor = statistics.median(floor)
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"bare `import torch` process: peak RSS {torch_floor:.2f} GB")
    print(
        "| workload | lifelong wall (s) / peak RSS (GB) / above torch | Avalanche wall / peak /"
        " above torch | wall ratio | above-torch RSS ratio | accuracy lifelong | Avalanche |"
    )
    print("|---|---|---|---|---|---|---|")  # fmt: skip
    for workload in WORKLOADS:
        ours, theirs = record[f"ours {workload}"], record[f"avalanche {workload}"]
        cells = []
        for side in (ours, theirs):
            wall, peak = statistics.median(side["wall"]), statistics.median(side["peak"])
            cells.append((wall, peak, peak - torch_floor))
        accuracy = [
            f"{statistics.mean(s['accuracy']):.2f} ± {statistics.stdev(s['accuracy']):.2f}"
            for s in (ours, theirs)
        ]
        print(
            f"| {workload} | {cells[0][0]:.2f} / {cells[0][1]:.2f} / {cells[0][2]:.2f} | "
            f"{cells[1][0]:.2f} / {cells[1][1]:.2f} / {cells[1][2]:.2f} | "
            f"{cells[1][0] / cells[0][0]:.2f}× | {cells[0][2] / cells[1][2]:.2f} | "
            f"{accuracy[0]} | {accuracy[1]} |"
        )
    args.out.write_text(json.dumps({"torch_floor_gb": floor, "runs": record}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
