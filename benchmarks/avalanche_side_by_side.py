"""Avalanche's implementations beside ours on the DER paper's MNIST protocols (issue 15).

For every method Avalanche also ships (finetune as a protocol check, EWC, online EWC, LwF, GEM,
A-GEM, iCaRL, GSS, MER) this runs Avalanche's strategy on exactly the stream, initial weights and
hyper-parameters of our run with the same preset and seed, and prints both means ± stds in one
table, flagging the rows where the two differ by more than both stds.

How it keeps the protocol identical:
- Avalanche runs in its own virtual environment (``benchmarks/out/avalanche-venv``, created on
  first use with ``avalanche-lib==0.6.0`` and this repository installed editable), so its pinned
  dependencies never touch ours.
- Each Avalanche run calls lifelong's own ``build`` with the preset and seed: the same stream
  (class order, permutations, rotations), the same normalisation and the same freshly initialised
  MLP; Avalanche gets those experiences as tensors and that network.
- Our side is read from ``benchmarks/der_table.py``'s runs (``benchmarks/out/der_table``) and run
  here when missing, so both tables share their cells.
- Accuracy: after the last experience, the mean over experiences of the accuracy on each
  experience's test set (class-IL on seq-mnist, domain-IL on perm-/rot-mnist), as our
  ``average_accuracy``.

Mappings and the documented differences between the two implementations are in ``MAPPINGS``.

Usage:
    python benchmarks/avalanche_side_by_side.py --datasets seq-mnist --seeds 0 1 2
    python benchmarks/avalanche_side_by_side.py --datasets perm-mnist --rows agem-200 --jobs 2
    python benchmarks/avalanche_side_by_side.py --datasets perm-mnist \
        --rows ewc_online+our_importance --seeds 0
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / "benchmarks" / "out" / "avalanche-venv"
AVALANCHE = "avalanche-lib==0.6.0"
REPRODUCED = REPO / "benchmarks" / "out" / "reproduce"  # `lifelong reproduce`'s runs

# Our method name -> what Avalanche's strategy gets from our preset, and how the two differ.
MAPPINGS: dict[str, str] = {
    "finetune": "Naive: plain SGD (protocol check: both should forget alike)",
    "ewc": "EWC(mode='separate', ewc_lambda=λ/2): Avalanche's penalty has no ½; its importance "
    "is the squared gradient of each minibatch's mean loss (true labels), ours the mean of "
    "per-example squared gradients (weighted by p(y|x) as in mammoth)",
    "ewc_online": "EWC(mode='online', decay_factor=γ, ewc_lambda=λ/2): importances as for ewc",
    "lwf": "LwF(alpha, temperature), SGD weight decay as the preset; no warm-up of the new head",
    "gem": "GEM(patterns_per_exp=buffer/experiences, memory_strength=γ)",
    "agem": "AGEM(patterns_per_exp=buffer/experiences, sample_size=minibatch_size)",
    "icarl": "ICaRL(body, head, memory_size=buffer, fixed_memory=True): herding, NCM, BCE",
    "gss": "GSS_greedy(mem_size=buffer, mem_strength=gss_minibatch_size): Avalanche scores with "
    "gss_minibatch_size gradients of buffer batches, ours with per-example gradients of "
    "gss_minibatch_size buffer examples; Avalanche replays through a ReplayDataLoader",
    "mer": "MER(mem_size=buffer, batch_size_mem=minibatch_size, n_inner_steps=batch_num, beta, "
    "gamma)",
}

DEFAULT_ROWS = {
    "seq-mnist": [
        "finetune",
        "ewc_online",
        "ewc",
        "lwf",
        "gem-200",
        "gem-500",
        "gem-5120",
        "agem-200",
        "agem-500",
        "agem-5120",
        "icarl-200",
        "icarl-500",
        "icarl-5120",
        "gss-200",
        "gss-500",
        "gss-5120",
        "mer-200",
        "mer-500",
        "mer-5120",
        "mer_example-200",
        "mer_example-500",
        "mer_example-5120",
    ],
}
for _d in ("perm-mnist", "rot-mnist"):
    DEFAULT_ROWS[_d] = [
        r for r in DEFAULT_ROWS["seq-mnist"] if not r.startswith(("icarl", "lwf", "mer"))
    ]


MER_EXAMPLES = 100
"""Training examples per experience of the ``mer_example-*`` rows (both sides)."""
OUR_IMPORTANCE = "+our_importance"
"""Suffix of an EWC row (``ewc+our_importance``, ``ewc_online+our_importance``): Avalanche with
lifelong's importance estimator patched into ``EWCPlugin.compute_importances`` and everything
else its own; our side is the plain row's run. It isolates the importance estimator."""


def base_row(row: str) -> str:
    """The row without the :data:`OUR_IMPORTANCE` suffix."""
    return row.removesuffix(OUR_IMPORTANCE)


def preset_and_override(row: str) -> tuple[str, dict[str, Any]]:
    """The preset a row runs and its override.

    ``ewc``: the online-EWC preset as plain EWC (separate Fisher and anchor per experience),
    keeping the preset's λ, learning rate and Fisher weighting (:func:`raw_config`).
    ``mer_example-B``: ``mer-B`` with MER's own schedule, one SGD step per example
    (``step_on: example``, as Avalanche's MER), which costs 129 single-example steps per
    incoming example (about 2.6 h per seed on this CPU); so both sides train on
    ``MER_EXAMPLES`` random examples of each experience (``train.iters``, batch 1).
    """
    row = base_row(row)
    if row == "ewc":
        return "ewc_online", {}
    if row.startswith("mer_example-"):
        override = {"method": {"step_on": "example"}, "train": {"iters": MER_EXAMPLES}}
        return row.replace("mer_example-", "mer-"), override
    return row, {}


def raw_config(dataset: str, row: str, seed: int, data_root: str) -> dict[str, Any]:
    """The raw configuration of one row and seed, as der_table.py builds it."""
    from lifelong.config import merge
    from lifelong.config.presets import load_preset
    from lifelong.data.scenarios import SCENARIOS

    preset, override = preset_and_override(row)
    raw = merge(SCENARIOS.get(dataset).defaults, load_preset(f"{dataset}/{preset}"))
    raw = merge(raw, override)
    if base_row(row) == "ewc":  # renaming the section in a merge would drop the preset's fields
        kept = {k: v for k, v in raw["method"].items() if k != "gamma"}
        raw = {**raw, "method": {**kept, "name": "ewc"}}
    return merge(raw, {"dataset": {"root": data_root}, "seed": seed, "train": {"progress": False}})


# --------------------------------------------------------------------------- Avalanche side


class _Normalize:
    """uint8 (C, H, W) → float, (x / 255 − mean) / std per channel (Avalanche's per-sample hook)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        import torch

        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def __call__(self, x: Any) -> Any:
        return (x.float() / 255.0 - self.mean) / self.std


def _strategy(method: str, cfg: Any, net: Any, n_exp: int, shape: tuple[int, ...]) -> Any:
    """Avalanche's strategy for one of our method configs (see ``MAPPINGS``)."""
    import torch
    from avalanche.training import supervised as s
    from avalanche.training.plugins import EvaluationPlugin

    m, t = cfg.method, cfg.train
    wd = getattr(m, "weight_decay", 0.0)
    opt = torch.optim.SGD(net.parameters(), lr=m.lr, weight_decay=wd)
    common: dict[str, Any] = {
        "train_mb_size": t.batch_size,
        "train_epochs": t.epochs,
        "eval_mb_size": 512,
        "device": "cpu",
        "evaluator": EvaluationPlugin(loggers=[]),
    }
    ce = torch.nn.CrossEntropyLoss()
    per_exp = getattr(m, "buffer_size", 0) // n_exp
    if method == "finetune":
        return s.Naive(model=net, optimizer=opt, criterion=ce, **common)
    if method in ("ewc", "ewc_online"):
        online = method == "ewc_online"
        return s.EWC(
            model=net,
            optimizer=opt,
            criterion=ce,
            ewc_lambda=m.ewc_lambda / 2,
            mode="online" if online else "separate",
            decay_factor=m.gamma if online else None,
            **common,
        )
    if method == "lwf":
        return s.LwF(
            model=net,
            optimizer=opt,
            criterion=ce,
            alpha=m.alpha,
            temperature=m.temperature,
            **common,
        )
    if method == "gem":
        return s.GEM(
            model=net,
            optimizer=opt,
            criterion=ce,
            patterns_per_exp=per_exp,
            memory_strength=m.gamma,
            **common,
        )
    if method == "agem":
        return s.AGEM(
            model=net,
            optimizer=opt,
            criterion=ce,
            patterns_per_exp=per_exp,
            sample_size=m.minibatch_size,
            **common,
        )
    if method == "icarl":
        return s.ICaRL(
            feature_extractor=net.body,
            classifier=net.head,
            optimizer=opt,
            memory_size=m.buffer_size,
            buffer_transform=None,
            fixed_memory=True,
            **common,
        )
    if method == "gss":
        return s.GSS_greedy(
            model=net,
            optimizer=opt,
            criterion=ce,
            mem_size=m.buffer_size,
            mem_strength=m.gss_minibatch_size,
            input_size=list(shape),
            **common,
        )
    if method == "mer":
        return s.MER(
            model=net,
            optimizer=opt,
            criterion=ce,
            mem_size=m.buffer_size,
            batch_size_mem=m.minibatch_size,
            n_inner_steps=m.batch_num,
            beta=m.beta,
            gamma=m.gamma,
            **common,
        )
    raise SystemExit(f"no Avalanche mapping for {method!r}")


def run_avalanche(dataset: str, row: str, seed: int, data_root: str, out: Path) -> None:
    """One Avalanche run (inside the Avalanche venv); writes ``out`` as JSON."""
    import warnings

    warnings.simplefilter("ignore")
    import torch
    from avalanche.benchmarks import tensors_benchmark
    from avalanche.training.determinism.rng_manager import RNGManager

    from lifelong.config import resolve
    from lifelong.running.run import build

    torch.set_num_threads(1)
    preset, _ = preset_and_override(row)
    cfg = resolve(raw_config(dataset, row, seed, data_root), f"{dataset}/{preset}")
    built = build(cfg)  # our stream and our freshly initialised network for this seed
    stream, net = built.stream, built.method.net
    RNGManager.set_random_seeds(seed)
    normalize = _Normalize(stream.transform.mean, stream.transform.std)
    train = [(e.train.x, e.train.y) for e in stream]
    if row.startswith("mer_example-"):  # as our train.iters: random examples of each experience
        draw = torch.Generator().manual_seed(seed)
        picks = [torch.randperm(len(x), generator=draw)[:MER_EXAMPLES] for x, _ in train]
        train = [(x[i], y[i]) for (x, y), i in zip(train, picks, strict=True)]
    benchmark = tensors_benchmark(
        train_tensors=train,
        test_tensors=[(e.test.x, e.test.y) for e in stream],
        task_labels=[0] * len(stream),
        train_transform=normalize,
        eval_transform=normalize,
    )
    # What Avalanche's class-incremental plugins (iCaRL) read from an NCScenario.
    benchmark.n_classes_per_exp = [len(e.classes) for e in stream]
    benchmark.classes_order = [c for e in stream for c in e.classes]
    if row.endswith(OUR_IMPORTANCE):
        _use_our_importance(cfg.method.weight_by_probability)
    strategy = _strategy(cfg.method_name, cfg, net, len(stream), stream.image_shape)
    started = time.perf_counter()
    for experience in benchmark.train_stream:
        strategy.train(experience)
    seconds = time.perf_counter() - started
    model = strategy.model.eval()
    accuracies = []
    with torch.no_grad():
        for e in stream:
            correct = 0
            for i in range(0, len(e.test), 1000):
                x = stream.transform.normalize(e.test.x[i : i + 1000])
                correct += int((model(x).argmax(1) == e.test.y[i : i + 1000]).sum())
            accuracies.append(100.0 * correct / len(e.test))
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"accuracy": statistics.mean(accuracies), "per_experience": accuracies}
    if cfg.method_name == "gss":
        result["buffer_experiences"] = _gss_buffer_experiences(strategy, stream, normalize)
    out.write_text(json.dumps(result | {"seconds": seconds, "avalanche": AVALANCHE}) + "\n")


def _use_our_importance(weight_by_probability: bool) -> None:
    """Replace Avalanche's EWC importance with lifelong's estimator (:data:`OUR_IMPORTANCE`).

    Ours: the mean over the experience's examples of each example's squared gradient of log
    p(y|x), weighted by p(y|x) when the preset says so; Avalanche's: the mean over minibatches of
    the squared gradient of the minibatch's mean loss.
    """
    from avalanche.training.plugins import ewc
    from avalanche.training.utils import zerolike_params_dict
    from torch.utils.data import DataLoader

    from lifelong.nn.fisher import empirical_fisher_diagonal

    def compute_importances(
        self: Any, model: Any, criterion: Any, optimizer: Any, dataset: Any, device: Any, *_: Any
    ) -> Any:
        chunks = ((b[0].to(device), b[1].to(device)) for b in DataLoader(dataset, batch_size=64))
        parameters = list(model.named_parameters())
        fisher = empirical_fisher_diagonal(model, parameters, chunks, weight_by_probability)
        importances = zerolike_params_dict(model)
        for importance, value in zip(importances.values(), fisher, strict=True):
            importance.data.copy_(value)
        return importances

    ewc.EWCPlugin.compute_importances = compute_importances


def _gss_buffer_experiences(strategy: Any, stream: Any, normalize: _Normalize) -> list[int]:
    """Rows of Avalanche's GSS buffer per experience of the stream (last: rows matching none).

    Each stored row is mapped back to uint8 pixels and looked up among every experience's
    training images (a permuted or rotated copy belongs to exactly one experience).
    """
    import hashlib

    import torch
    from avalanche.training.plugins import GSS_greedyPlugin

    plugin = next(p for p in strategy.plugins if isinstance(p, GSS_greedyPlugin))
    stored = plugin.ext_mem_list_x[: plugin.ext_mem_list_current_index].cpu()
    pixels = torch.round((stored * normalize.std + normalize.mean) * 255).clamp(0, 255)
    owner: dict[bytes, int] = {}
    for e in stream:
        for image in e.train.x:
            owner.setdefault(hashlib.blake2b(image.numpy().tobytes()).digest(), e.id)
    counts = [0] * (len(stream) + 1)
    for row in pixels.to(torch.uint8):
        counts[owner.get(hashlib.blake2b(row.numpy().tobytes()).digest(), len(stream))] += 1
    return counts


# --------------------------------------------------------------------------- driver


def ensure_venv() -> Path:
    """Create the Avalanche environment on first use; return its python."""
    python = VENV / "bin" / "python"
    if (VENV / ".ready").exists():
        return python
    print(f"creating {VENV} with {AVALANCHE} (a few minutes, once)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, AVALANCHE, "torch>=2.4", "torchvision>=0.19"], check=True)
    subprocess.run([*pip, "-e", str(REPO)], check=True)
    (VENV / ".ready").write_text(AVALANCHE + "\n")
    return python


def ours(dataset: str, row: str, seed: int, data_root: str, out: Path) -> float:
    """Our final average accuracy for a row and seed.

    Read from a finished run of ``der_table.py`` (``out``) or of ``lifelong reproduce``
    (``REPRODUCED``, same preset and seed), otherwise run now into ``out``.
    """
    sys.path.insert(0, str(REPO / "benchmarks"))
    from der_table import run_config

    row = base_row(row)  # our side of an OUR_IMPORTANCE row is the plain row's run
    preset, _ = preset_and_override(row)
    raw = raw_config(dataset, row, seed, data_root)
    run_dir = out / dataset / row / f"seed{seed}"
    reproduced = REPRODUCED / dataset / row / "run" / f"seed{seed}"
    if preset == row and not _completed(run_dir) and _completed(reproduced):
        run_dir = reproduced
    return run_config(raw, f"{dataset}/{preset}", run_dir)[0]


def _completed(run_dir: Path) -> bool:
    from lifelong.reporting.results import read_results

    return (run_dir / "results.json").exists() and bool(read_results(run_dir)["completed"])


def avalanche(python: Path, job: tuple[str, str, int], data_root: str, out: Path) -> float:
    """Avalanche's accuracy for a row and seed, run in the Avalanche venv unless already done."""
    dataset, row, seed = job
    path = out / dataset / row / f"seed{seed}.json"
    if not path.exists():
        command = [str(python), __file__, "--worker", dataset, row, str(seed), data_root, str(path)]
        subprocess.run(command, check=True)
    return float(json.loads(path.read_text())["accuracy"])


def both(
    task: tuple[tuple[str, str, int], Path, str, Path, Path],
) -> tuple[tuple[str, str, int], float, float]:
    """Ours (in this worker process) then Avalanche's (in its venv) for one row and seed."""
    job, python, data_root, ours_out, out = task
    return job, ours(*job, data_root, ours_out), avalanche(python, job, data_root, out)


def _cell(values: list[float]) -> str:
    if not values:
        return "–"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {std:.2f}"


def table(results: dict[tuple[str, str], tuple[list[float], list[float]]]) -> str:
    """Markdown: ours and Avalanche's mean ± std per dataset and row, with the disagreement flag."""
    lines = [
        "| dataset | row | ours | Avalanche | Δ (ours − Avalanche) | apart by more than both"
        " stds |",
        "|---|---|---|---|---|---|",
    ]
    for (dataset, row), (mine, theirs) in results.items():
        if not mine or not theirs:
            continue
        delta = statistics.mean(mine) - statistics.mean(theirs)
        spread = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in (mine, theirs)]
        apart = "**yes**" if abs(delta) > max(spread) else "no"
        if min(len(mine), len(theirs)) < 2:
            apart = "– (one seed)"
        lines.append(
            f"| {dataset} | {row} | {_cell(mine)} | {_cell(theirs)} | {delta:+.2f} | {apart} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--datasets", nargs="+", default=["seq-mnist"])
    parser.add_argument("--rows", nargs="+", help="rows to run (default: every row per dataset)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=1, help="parallel runs (1 thread each)")
    parser.add_argument("--ours-out", type=Path, default=REPO / "benchmarks/out/der_table")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/out/avalanche")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        dataset, row, seed, data_root, out = args.worker
        run_avalanche(dataset, row, int(seed), data_root, Path(out))
        return
    for row in args.rows or []:
        if row.endswith(OUR_IMPORTANCE) and base_row(row) not in ("ewc", "ewc_online"):
            parser.error(f"{OUR_IMPORTANCE} applies to the ewc and ewc_online rows, not {row}")
    python = ensure_venv()
    jobs = [
        (d, r, s)
        for d in args.datasets
        for r in (args.rows or DEFAULT_ROWS[d])
        if base_row(r) in DEFAULT_ROWS[d]
        for s in args.seeds
    ]
    results: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    tasks = [(job, python, args.data_root, args.ours_out, args.out) for job in jobs]
    with ProcessPoolExecutor(args.jobs) as pool:
        for (dataset, row, seed), mine, theirs in pool.map(both, tasks):
            print(f"{dataset:<11} {row:<11} seed {seed}: ours {mine:6.2f}  Avalanche {theirs:6.2f}")
            pair = results.setdefault((dataset, row), ([], []))
            pair[0].append(mine)
            pair[1].append(theirs)
    markdown = table(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(markdown + "\n")
    print(markdown)


if __name__ == "__main__":
    main()
