"""Every way to get input wrong ends in ONE line ``lifelong: error: ...``, exit 2, nothing lost.

One table of hostile inputs, one row per way: YAML alias bombs and oversized files, type-confused
names, unreadable and malformed files, out-of-range values, and the multi-line messages of PyYAML
and ``torch.load``. Each row writes its files into ``tmp_path`` (``{tmp}`` in its command line),
may copy a finished run there to tamper with (``{copy}``), and runs ``lifelong`` in-process. A
finished run made once per module (``{run}``) must be byte-identical after every row.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import pytest
import torch

from lifelong.cli import main

FAST = ("--no-progress", "--no-tensorboard")
ROW_SECONDS = 60
"""A row that takes longer than this hangs (the alias bomb used to never return)."""

BOMB = "\n".join(
    [
        'seed: [&a ["x","x","x","x","x","x","x","x","x"],',
        *(
            f"  &{b} [{','.join(['*' + a] * 9)}],"
            for a, b in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "]",
    ]
)
"""About 330 bytes that expand to 9**9 strings ("billion laughs")."""
BOMB_VALUE = BOMB.split(": ", 1)[1].replace("\n", " ")
"""The bomb as one ``--set`` value."""

NOT_UTF8 = b"method:\n  name: \xff\xfe er\n"
BAD_YAML = "method:\n  name: er\n   lr: [0.1\n"
RESULTS_WITHOUT_SUMMARY = json.dumps(
    {
        "completed": True,
        "experiences_trained": 1,
        "num_experiences": 1,
        "train_seconds": [0.1],
        "protocols": {"class-il": {"matrix": [[50.0]], "initial": [None]}},
        "config": {"method": {"name": "er"}, "dataset": {"name": "seq-digits"}},
    }
)
"""A results file of one experience whose protocol lacks its summary."""


def results_with(**fields: object) -> bytes:
    """A valid results file of one experience with ``fields`` replaced (the fields runs add)."""
    results = json.loads(RESULTS_WITHOUT_SUMMARY)
    names = ("average_accuracy", "average_incremental_accuracy", "forgetting")
    names += ("backward_transfer", "forward_transfer")
    results["protocols"]["class-il"]["summary"] = dict.fromkeys(names, 50.0)
    results["config"]["backbone"] = {"name": "mlp"}
    return json.dumps({**results, **fields}).encode()


LEDGER_ROW = "rows:\n- {id: x, paper: p, table: t, value: 1, std: 0, verified: maybe}\n"
"""A ledger row with a bad field (and missing ones)."""


def poisoned_checkpoint() -> bytes:
    """A checkpoint holding a Python object that ``weights_only=True`` refuses."""
    buffer = io.BytesIO()
    torch.save({"method": argparse.Namespace(evil=True)}, buffer)
    return buffer.getvalue()


@dataclass(frozen=True)
class Row:
    """One hostile input: the files written first, the command line and a needle of the line."""

    argv: tuple[str, ...]
    needle: str
    files: dict[str, str | bytes | Callable[[], bytes]] = field(default_factory=dict)
    copy_run: bool = False


def run(*argv: str) -> tuple[str, ...]:
    """A ``lifelong run`` command line of a tiny run (placeholders are filled per row)."""
    tiny = ("--dataset", "seq-digits", "--iters", "1", *FAST)
    return ("run", *tiny, "--run-dir", "{tmp}/new", *argv)


SWEEP = "common:\n  method: {name: er}\nexperiments:\n  a: {}\nout: {tmp}/out\n"
"""A valid one-trial sweep file (the rows that use it break a flag, not the file)."""

ROWS: dict[str, Row] = {
    # 7. alias bombs and oversized files: bounded parsing and bounded quoting
    "bomb-config": Row(run("--config", "{tmp}/bomb.yaml"), "alias", {"bomb.yaml": BOMB}),
    "bomb-sweep": Row(("sweep", "{tmp}/bomb.yaml", "--dry-run"), "alias", {"bomb.yaml": BOMB}),
    "bomb-resume": Row(
        ("run", "--resume", "{copy}"), "alias", {"copy/config.yaml": BOMB}, copy_run=True
    ),
    "huge-config": Row(
        run("--config", "{tmp}/huge.yaml"),
        "larger than",
        {"huge.yaml": "# padding\n" * 200_000 + "seed: 1\n"},
    ),
    "bomb-set-value": Row(run("--set", "seed=" + BOMB_VALUE), "seed"),
    # 8. type-confused names and unreadable or malformed files
    "name-list": Row(run("--set", "method.name=[er]"), "method.name"),
    "name-number": Row(run("--set", "dataset.name=5"), "dataset.name"),
    "icarl-replay-mode": Row(
        run("--method", "icarl", "--set", "method.exemplar_replay=both"), "exemplar_replay"
    ),
    "er-ace-mask-unseen": Row(
        run("--method", "er_ace", "--set", "method.mask_unseen=maybe"), "mask_unseen"
    ),
    "pretrain-class-out-of-range": Row(
        ("pretrain", "--dataset", "seq-digits", "--classes", "99", "--out", "{tmp}/c.pt"),
        "dataset.classes",
    ),
    "pretrain-image-size": Row(
        ("pretrain", "--dataset", "seq-digits", "--image-size", "0", "--out", "{tmp}/c.pt"),
        "image_size",
    ),
    "probes-unknown": Row(run("--set", "train.probes=[ridge,svm]"), "train.probes"),
    "probes-repeated": Row(run("--set", "train.probes=[knn,knn]"), "twice"),
    "probes-no-mode": Row(
        run("--set", "train.probes=[ridge]", "--set", "train.probe_modes=[]"), "probe_modes"
    ),
    "probes-val-ratio": Row(run("--set", "train.probe_val_ratio=1"), "probe_val_ratio"),
    "probes-string": Row(run("--set", "train.probes=ridge"), "train.probes"),
    "bir-xdg-without-task-il": Row(
        run("--method", "bir", "--set", "method.xdg_prop=0.5"), "method.task_il"
    ),
    "bir-xdg-prop-one": Row(
        run("--method", "bir", "--set", "method.task_il=true", "--set", "method.xdg_prop=1"),
        "xdg_prop",
    ),
    "conv-mlp-frozen-random": Row(
        run("--backbone", "conv_mlp", "--set", "backbone.freeze_conv=true"), "freeze_conv"
    ),
    "conv-mlp-missing-file": Row(
        run("--backbone", "conv_mlp", "--set", "backbone.pretrained={tmp}/none.pt"),
        "no pre-trained conv layers",
    ),
    "conv-mlp-foreign-file": Row(
        run("--backbone", "conv_mlp", "--set", "backbone.pretrained={tmp}/c.pt"),
        "does not hold conv layers",
        {"c.pt": b"not a checkpoint"},
    ),
    "gr-conv-depth": Row(run("--method", "gr", "--set", "method.conv_depth=-1"), "conv_depth"),
    "gdumb-min-lr": Row(run("--method", "gdumb", "--set", "method.min_lr=1"), "min_lr"),
    "gdumb-cutmix-prob": Row(
        run("--method", "gdumb", "--set", "method.cutmix_prob=2"), "cutmix_prob"
    ),
    "lucir-top-k": Row(run("--method", "lucir", "--set", "method.top_k=0"), "top_k"),
    "bic-val-fraction": Row(
        run("--method", "bic", "--set", "method.val_fraction=1.0"), "val_fraction"
    ),
    "cls-er-update-freq": Row(
        run("--method", "cls_er", "--set", "method.stable_model_update_freq=1.5"),
        "stable_model_update_freq",
    ),
    "scommer-dropout-layers": Row(
        run("--method", "scommer", "--set", "method.dropout_layers=[5]"), "dropout_layers"
    ),
    "xder-gamma": Row(run("--method", "xder", "--set", "method.gamma=1.5"), "gamma"),
    "precision-fp16": Row(run("--precision", "fp16"), "train.precision"),
    "compile-not-bool": Row(run("--compile", "soon"), "compile"),
    "dataset-pad": Row(run("--set", "dataset.pad=100"), "dataset.pad"),
    "n-experiences-uneven": Row(run("--set", "dataset.n_experiences=3"), "evenly"),
    "lr-milestones-unsorted": Row(run("--set", "train.lr_milestones=[3,2]"), "lr_milestones"),
    "lr-milestones-text": Row(run("--set", "train.lr_milestones=soon"), "lr_milestones"),
    "lr-gamma-zero": Row(run("--set", "train.lr_gamma=0"), "lr_gamma"),
    "lr-milestones-with-sarl-steps": Row(
        run("--method", "sarl", "--lr_milestones", "3", "4"), "method.lr_steps"
    ),
    "lr-scheduler-cosine": Row(run("--lr_scheduler", "cosine"), "multisteplr"),
    "lr-milestones-one-value": Row(run("--lr_milestones", "35"), "one value: [35]"),
    "dataset-field-ignored": Row(
        run("--set", "dataset.image_size=32"), "has no effect on seq-digits"
    ),
    "probe-val-ratio": Row(("probe", "{run}", "--val-ratio", "1.5"), "val-ratio"),
    "probe-unknown": Row(("probe", "{run}", "--probes", "svm"), "svm"),
    "cssl-optimizer": Row(
        run("--method", "cssl", "--set", "method.optimizer=rmsprop"), "optimizer"
    ),
    "imagenet-weights-width": Row(
        run("--backbone", "mobilenet_v1", "--pretrained", "imagenet", "--width", "0.5"),
        "width 1.0",
    ),
    "xder-rpc-fixed-head": Row(run("--method", "xder_rpc", "--set", "method.head=linear"), "head"),
    "section-number": Row(run("--config", "{tmp}/c.yaml"), "method", {"c.yaml": "method: 5\n"}),
    "name-number-file": Row(
        run("--config", "{tmp}/c.yaml"), "backbone.name", {"c.yaml": "backbone:\n  name: 7\n"}
    ),
    "mixed-keys": Row(run("--config", "{tmp}/c.yaml"), "unknown", {"c.yaml": "1: 2\nzz: 3\n"}),
    "sweep-name-list": Row(
        ("sweep", "{tmp}/s.yaml", "--dry-run"),
        "method",
        {"s.yaml": "common:\n  method: {name: [er]}\nexperiments:\n  a: {}\nout: {tmp}/out\n"},
    ),
    "config-is-folder": Row(run("--config", "{tmp}"), "folder"),
    "config-not-utf8": Row(run("--config", "{tmp}/c.yaml"), "UTF-8", {"c.yaml": NOT_UTF8}),
    "sweep-not-utf8": Row(("sweep", "{tmp}/s.yaml", "--dry-run"), "UTF-8", {"s.yaml": NOT_UTF8}),
    "report-not-utf8": Row(("report", "{tmp}/r"), "UTF-8", {"r/results.json": b'{"\xff": 1}'}),
    "report-empty-object": Row(("report", "{tmp}/r"), "results.json", {"r/results.json": "{}"}),
    "report-list": Row(("report", "{tmp}/r"), "results.json", {"r/results.json": "[]"}),
    "report-missing-keys": Row(
        ("report", "{tmp}/r"), "summary", {"r/results.json": RESULTS_WITHOUT_SUMMARY}
    ),
    "report-bad-confusion": Row(
        ("report", "{copy}"),
        "confusion matrix",
        {"copy/confusion/after_5.csv": "true_class,0,1\n0,3,x\n1,0,2\n"},
        copy_run=True,
    ),
    "report-ragged-confusion": Row(
        ("report", "{copy}"),
        "square",
        {"copy/confusion/after_5.csv": "true_class,0,1\n0,3\n1,0,2\n"},
        copy_run=True,
    ),
    "report-bad-cost": Row(
        ("report", "{tmp}/r"), "'cost'", {"r/results.json": lambda: results_with(cost="fast")}
    ),
    "report-bad-per-class": Row(
        ("report", "{tmp}/r"),
        "per_class_accuracy",
        {"r/results.json": lambda: results_with(per_class_accuracy={"after": [["x"]]})},
    ),
    "report-bad-eval-seconds": Row(
        ("report", "{tmp}/r"),
        "eval_seconds",
        {"r/results.json": lambda: results_with(eval_seconds=3)},
    ),
    "compare-no-config": Row(
        ("compare", "{tmp}/r", "--out", "{tmp}/cmp"),
        "results.json",
        {"r/results.json": '{"completed": true}'},
    ),
    "compare-list": Row(
        ("compare", "{tmp}/r", "--out", "{tmp}/cmp"), "results.json", {"r/results.json": "[1, 2]"}
    ),
    "resume-bad-yaml": Row(
        ("run", "--resume", "{copy}"), "line", {"copy/config.yaml": BAD_YAML}, copy_run=True
    ),
    "resume-python-tag": Row(
        ("run", "--resume", "{copy}"),
        "python/object",
        {"copy/config.yaml": "seed: !!python/object/apply:os.system ['true']\n"},
        copy_run=True,
    ),
    "resume-not-utf8": Row(
        ("run", "--resume", "{copy}"), "UTF-8", {"copy/config.yaml": NOT_UTF8}, copy_run=True
    ),
    # Weights & Biases flags (--wandb, --wandb-mode, mammoth's --wandb_project/--nowand)
    "wandb-empty-project": Row(run("--wandb", ""), "Weights & Biases name"),
    "wandb-slash-project": Row(run("--wandb", "team/p"), "none of /"),
    "wandb-long-project": Row(run("--wandb", "p" * 500), "1 to 128"),
    "wandb-bad-mode": Row(run("--wandb", "p", "--wandb-mode", "cloud"), "--wandb-mode"),
    "wandb-mode-alone": Row(run("--wandb-mode", "offline"), "--wandb PROJECT"),
    "wandb-entity-alone": Row(run("--wandb_entity", "lab"), "--wandb PROJECT"),
    "wandb-two-projects": Row(run("--wandb", "a", "--wandb_project", "b"), "two"),
    "wandb-nowand": Row(run("--wandb", "p", "--nowand"), "--nowand"),
    "wandb-bad-entity": Row(run("--wandb", "p", "--wandb_entity", "a:b"), "entity"),
    "sweep-wandb-mode-alone": Row(
        ("sweep", "{tmp}/s.yaml", "--wandb-mode", "offline"), "--wandb PROJECT", {"s.yaml": SWEEP}
    ),
    "sweep-wandb-slash-project": Row(
        ("sweep", "{tmp}/s.yaml", "--wandb", "team/p"), "none of /", {"s.yaml": SWEEP}
    ),
    # 9. out-of-range values
    "huge-buffer": Row(run("--buffer-size", str(10**12)), "buffer"),
    "huge-epochs": Row(
        ("run", "--dataset", "seq-digits", "--epochs", str(10**15), *FAST, "--run-dir", "{tmp}/n"),
        "train.epochs",
    ),
    "huge-seed": Row(run("--seed", str(10**30)), "seed"),
    "negative-seed": Row(run("--seed", "-1"), "seed"),
    "long-data-root": Row(run("--data-root", "{tmp}/" + "d" * 300), "dataset.root"),
    "long-config-name": Row(run("--config", "{tmp}/" + "c" * 300 + ".yaml"), "too long"),
    "device-meta": Row(run("--device", "meta"), "device"),
    "device-mps": Row(run("--device", "mps"), "device"),
    "device-missing-gpu": Row(run("--device", "cuda:99"), "device"),
    # 10. multi-line messages of PyYAML and torch.load
    "config-bad-yaml": Row(run("--config", "{tmp}/c.yaml"), "line 3", {"c.yaml": BAD_YAML}),
    "sweep-bad-yaml": Row(("sweep", "{tmp}/s.yaml", "--dry-run"), "line 3", {"s.yaml": BAD_YAML}),
    "config-python-tag": Row(
        run("--config", "{tmp}/c.yaml"),
        "python/object",
        {"c.yaml": "seed: !!python/object/apply:os.system ['true']\n"},
    ),
    "resume-poisoned-checkpoint": Row(
        ("run", "--resume", "{copy}"),
        "argparse.Namespace",
        {"copy/checkpoint.pt": poisoned_checkpoint},
        copy_run=True,
    ),
    # 11. lifelong reproduce: rows, ledgers, results files, seeds and data roots
    "reproduce-no-mode": Row(("reproduce",), "give row ids"),
    "reproduce-two-modes": Row(("reproduce", "--list", "--table"), "exactly one"),
    "reproduce-unknown-row": Row(("reproduce", "der-seq-mnist-er-20"), "der-seq-mnist-er-200"),
    "reproduce-bad-seeds": Row(
        ("reproduce", "der-seq-mnist-er-200", "--seeds", "-1", "--data-root", "{tmp}"), "--seeds"
    ),
    "reproduce-no-data-root": Row(("reproduce", "der-seq-mnist-er-200"), "--data-root"),
    "reproduce-missing-data-root": Row(
        ("reproduce", "der-seq-mnist-er-200", "--data-root", "{tmp}/no", "--out", "{tmp}/o"),
        "not a folder",
    ),
    "reproduce-empty-data-root": Row(
        ("reproduce", "der-seq-mnist-er-200", "--data-root", "{tmp}/d", "--out", "{tmp}/o"),
        "MNIST",
        {"d/readme.txt": "no dataset here\n"},
    ),
    "reproduce-bad-jobs": Row(("reproduce", "--all", "--smoke", "--jobs", "0"), "--jobs"),
    "reproduce-ledger-row": Row(
        ("reproduce", "--list", "--ledger", "{tmp}/l.yaml"), "row 'x'", {"l.yaml": LEDGER_ROW}
    ),
    "reproduce-ledger-list": Row(
        ("reproduce", "--list", "--ledger", "{tmp}/l.yaml"), "rows:", {"l.yaml": "- id: x\n"}
    ),
    "reproduce-ledger-bomb": Row(
        ("reproduce", "--list", "--ledger", "{tmp}/bomb.yaml"), "alias", {"bomb.yaml": BOMB}
    ),
    "reproduce-ledger-missing": Row(
        ("reproduce", "--list", "--ledger", "{tmp}/none.yaml"), "none.yaml"
    ),
    "reproduce-results-malformed": Row(
        ("reproduce", "--table", "--results", "{tmp}/r.yaml"), "results file", {"r.yaml": "a: 5\n"}
    ),
    "reproduce-results-not-utf8": Row(
        ("reproduce", "--table", "--results", "{tmp}/r.yaml"), "UTF-8", {"r.yaml": NOT_UTF8}
    ),
    "reproduce-results-folder": Row(
        ("reproduce", "der-seq-mnist-er-200", "--data-root", "{tmp}", "--results", "{tmp}"),
        "folder",
    ),
    **(
        {}
        if torch.cuda.is_available()
        else {"reproduce-gpu-rows-no-cuda": Row(("reproduce", "--gpu-rows"), "CUDA")}
    ),
}


def digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``, by relative path."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A tiny finished run and the hashes of its files."""
    run_dir = tmp_path_factory.mktemp("earlier") / "run"
    argv = ["run", "--dataset", "seq-digits", "--iters", "1", *FAST, "--run-dir", str(run_dir)]
    assert main(argv) == 0
    return run_dir, digest(run_dir)


@pytest.fixture
def time_limit() -> Iterator[None]:
    """Fail a row that runs longer than :data:`ROW_SECONDS` instead of hanging the suite."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"a hostile input ran longer than {ROW_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(ROW_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("name", list(ROWS))
def test_hostile_input_is_one_line_and_loses_nothing(
    name: str,
    tmp_path: Path,
    finished_run: tuple[Path, dict[str, str]],
    cli: Callable[..., object],
    one_line_error: Callable[..., str],
    time_limit: None,
) -> None:
    row = ROWS[name]
    run_dir, before = finished_run
    if row.copy_run:
        shutil.copytree(run_dir, tmp_path / "copy")
    for relative, content in row.files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content() if callable(content) else content
        if isinstance(data, str):
            path.write_text(data.replace("{tmp}", str(tmp_path)))
        else:
            path.write_bytes(data)
    places = {"{tmp}": str(tmp_path), "{copy}": str(tmp_path / "copy"), "{run}": str(run_dir)}
    argv = []
    for arg in row.argv:
        for mark, value in places.items():
            arg = arg.replace(mark, value)
        argv.append(arg)
    start = time.perf_counter()
    result = cli(*argv)
    seconds = time.perf_counter() - start
    message = one_line_error(result, row.needle)
    assert len(message) < 1000, message
    if name.startswith("bomb"):
        assert seconds < 1.0, f"{name} took {seconds:.1f} s"
    assert digest(run_dir) == before
