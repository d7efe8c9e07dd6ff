"""End-to-end runs on a CIFAR-10 folder in torchvision's official format, written by the test."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

FAST = ("--no-progress", "--no-tensorboard")
NAMES = [
    name.encode()
    for name in ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
]


def _batch(seed: int, per_class: int) -> dict[bytes, object]:
    rng = np.random.default_rng(seed)
    labels = [c for c in range(10) for _ in range(per_class)]
    data = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
    for i, label in enumerate(labels):  # a class-dependent red channel makes classes learnable
        data[i, :1024] = 25 * label
    return {b"labels": labels, b"data": data, b"batch_label": b"fixture"}


def write_cifar10(root: Path) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(_batch(i, 2), protocol=2))
    (folder / "test_batch").write_bytes(pickle.dumps(_batch(0, 2), protocol=2))
    meta = {b"label_names": NAMES, b"num_cases_per_batch": 20, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return root


@pytest.mark.parametrize("method", ["er", "derpp", "sarl"])
def test_methods_run_on_a_cifar10_folder(cli, tmp_path: Path, method: str) -> None:
    root = write_cifar10(tmp_path / "data")
    run_dir = tmp_path / "run"
    args = ["--method", method, "--dataset", "seq-cifar10", "--data-root", root, "--epochs", "1"]
    args += ["--backbone", "sparse_resnet18", "--set", "backbone.nf=4", "--batch-size", "8"]
    result = cli("run", *FAST, "--run-dir", run_dir, *args, "--buffer-size", "20")
    assert result.code == 0, result.err
    results = json.loads((run_dir / "results.json").read_text())
    assert results["completed"] and results["num_experiences"] == 5
    assert len(results["protocols"]["class-il"]["matrix"]) == 5


@pytest.mark.parametrize(
    ("method", "backbone"),
    [
        ("sarl", "sparse_resnet18"),
        ("sarl_enhanced", "sparse_resnet18"),
        ("sarl_enhanced_gelu", "gelu_resnet18"),
        ("sarl_enhanced_gelu_balanced", "gelu_resnet18"),
    ],
)
def test_sarl_family_runs_on_a_cifar10_folder(
    cli, tmp_path: Path, method: str, backbone: str
) -> None:
    root = write_cifar10(tmp_path / "data")
    run_dir = tmp_path / "run"
    args = ["--method", method, "--dataset", "seq-cifar10", "--data-root", root, "--epochs", "2"]
    args += ["--set", "backbone.nf=4", "--set", "warmup_epochs=0", "--batch-size", "8"]
    result = cli(
        "run", *FAST, "--run-dir", run_dir, *args, "--buffer-size", "20", "--preset", "none"
    )
    assert result.code == 0, result.err
    assert f"name: {backbone}" in (run_dir / "config.yaml").read_text()
    steps = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    later = {key for s in steps if s["kind"] == "step" and s["experience"] > 0 for key in s}
    assert {"semantic", "distill", "prototype"} <= later
    if method != "sarl":
        assert "similarity_bce" in later


@pytest.mark.parametrize(
    ("preset", "backbone"),
    [
        ("seq-cifar10/sarl-200", "sparse_resnet18"),
        ("seq-cifar10/sarl_enhanced_gelu_balanced-200", "gelu_resnet18"),
    ],
)
def test_sarl_paper_preset_runs_on_the_fixture(
    cli, tmp_path: Path, preset: str, backbone: str
) -> None:
    root = write_cifar10(tmp_path / "data")
    run_dir = tmp_path / "run"
    args = ["--preset", preset, "--data-root", root, "--epochs", "2"]
    args += ["--set", "backbone.nf=4", "--set", "warmup_epochs=0"]
    result = cli("run", *FAST, "--run-dir", run_dir, *args)
    assert result.code == 0, result.err
    config = (run_dir / "config.yaml").read_text()
    assert f"name: {backbone}" in config and "op_weight: 0.5" in config
    steps = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    later = {key for s in steps if s["kind"] == "step" and s["experience"] > 0 for key in s}
    assert {"distill", "semantic", "prototype"} <= later


def write_image_folder(root: Path, classes: int, per_class: int) -> Path:
    """An ImageNet-style folder: train/<class>/*.png and val/<class>/*.png, 40x48 images."""
    import torch
    from torchvision.io import encode_png, write_file

    for split, count in (("train", per_class), ("val", 1)):
        for c in range(classes):
            folder = root / split / f"n{c:08d}"
            folder.mkdir(parents=True)
            for i in range(count):
                image = torch.full((3, 40, 48), 20 * c, dtype=torch.uint8)
                image[:, i : i + 4] = 255
                write_file(str(folder / f"img{i}.png"), encode_png(image))
    return root


@pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")
def test_seq_imagenet100_on_an_image_folder(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LIFELONG_CACHE_DIR", str(tmp_path / "cache"))
    root = write_image_folder(tmp_path / "imagenet100", classes=10, per_class=3)
    run_dir = tmp_path / "run"
    args = ["--dataset", "seq-imagenet100", "--data-root", root, "--epochs", "1", "--method", "er"]
    args += ["--set", "dataset.image_size=32", "--set", "backbone.nf=4", "--batch-size", "4"]
    result = cli("run", *FAST, "--run-dir", run_dir, *args)
    assert result.code == 0, result.err
    results = json.loads((run_dir / "results.json").read_text())
    # 10 classes present: 10 experiences of one class each (the subset rule of class_incremental)
    assert results["num_experiences"] == 10 and results["completed"]


def write_cifar100(root: Path, per_class: int) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("test", 1)):
        labels = [c for c in range(100) for _ in range(count)]
        data = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
        content = {
            b"fine_labels": labels,
            b"coarse_labels": [c // 5 for c in labels],
            b"data": data,
        }
        (folder / split).write_bytes(pickle.dumps(content, protocol=2))
    meta = {b"fine_label_names": [f"class{c}".encode() for c in range(100)]}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return root


@pytest.mark.parametrize("dataset", ["gcil-cifar100", "gcil-cifar100-longtail"])
def test_sarl_runs_on_gcil_cifar100(cli, tmp_path: Path, dataset: str) -> None:
    root = write_cifar100(tmp_path / "data", per_class=3)
    run_dir = tmp_path / "run"
    args = ["--method", "sarl", "--dataset", dataset, "--data-root", root, "--epochs", "1"]
    args += ["--set", "dataset.n_experiences=4", "--set", "dataset.gcil_samples_per_phase=60"]
    args += ["--backbone", "sparse_resnet18", "--set", "backbone.nf=4", "--batch-size", "16"]
    result = cli("run", *FAST, "--run-dir", run_dir, *args, "--buffer-size", "50")
    assert result.code == 0, result.err
    results = json.loads((run_dir / "results.json").read_text())
    assert results["completed"]
    assert list(results["protocols"]) == ["class-il"]  # task-IL is meaningless for GCIL
    assert results["num_experiences"] == 4


@pytest.mark.parametrize("dataset", ["gcil-cifar100", "gcil-cifar100-longtail"])
def test_gcil_on_too_small_a_cifar100_is_one_line_error(cli, tmp_path: Path, dataset: str) -> None:
    # 300 training images cannot fill 20 phases of 1000 samples; the old code trained on a
    # shorter stream without a word
    root = write_cifar100(tmp_path / "data", per_class=3)
    args = ["--method", "finetune", "--dataset", dataset, "--data-root", root, "--epochs", "1"]
    args += ["--backbone", "sparse_resnet18", "--set", "backbone.nf=4", "--batch-size", "16"]
    result = cli("run", *FAST, "--run-dir", tmp_path / "run", *args)
    assert result.code == 2, (result.code, result.err)
    assert "Traceback" not in result.err
    (line,) = result.err.splitlines()
    assert line.startswith("lifelong: error: GCIL asks for 20 phases of 1000 samples"), line
    for needle in ("hold 300 training images", "enough for 0 phases", "n_experiences"):
        assert needle in line, line


@pytest.mark.parametrize("archive", [None, b"a partial download"])
def test_cifar_download_failure_is_one_line_error(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, archive: bytes | None
) -> None:
    """No network (and maybe a corrupt archive in the folder): exit 2, one line, no traceback."""
    import urllib.error
    import urllib.request

    def no_network(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("[Errno 101] Network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    root = tmp_path / "data"
    if archive is not None:
        root.mkdir()
        (root / "cifar-10-python.tar.gz").write_bytes(archive)
    args = ["--method", "finetune", "--dataset", "seq-cifar10", "--data-root", root, "--download"]
    result = cli("run", *FAST, "--run-dir", tmp_path / "run", *args)
    assert result.code == 2, (result.code, result.err)
    assert "Traceback" not in result.err
    (line,) = result.err.splitlines()
    assert line.startswith(f"lifelong: error: cannot download CIFAR-10 into {root}: "), line
    assert "Network is unreachable" in line and "cifar-10-python.tar.gz by hand" in line
    assert ("does not match its official md5 checksum" in line) == (archive is not None)


def test_pretrain_writes_conv_layers_that_load(cli, tmp_path: Path) -> None:
    from lifelong.backbones.conv_encoder import ConvEncoder, ConvEncoderConfig

    root = write_cifar10(tmp_path / "data")
    out = tmp_path / "conv.pt"
    args = ["--data-root", root, "--out", out, "--epochs", "2", "--batch-size", "16"]
    result = cli("pretrain", *args, "--no-progress")
    assert result.code == 0, result.err
    assert "test accuracy" in result.out
    encoder = ConvEncoder(ConvEncoderConfig(), 3)
    before = encoder.layers[0].weight.clone()
    encoder.load_pretrained(out)
    assert not torch.equal(before, encoder.layers[0].weight)
    missing = cli("pretrain", "--data-root", tmp_path / "nowhere", "--out", out, "--epochs", "1")
    assert missing.code == 2 and "nowhere" in missing.err


def test_dataset_augment_false_keeps_normalisation_and_drops_augmentation(tmp_path: Path) -> None:
    from lifelong.data.catalog import build_stream
    from lifelong.data.scenarios import DatasetConfig

    root = write_cifar10(tmp_path / "data")
    augmented = build_stream(DatasetConfig("seq-cifar10", str(root)), 0)
    plain = build_stream(DatasetConfig("seq-cifar10", str(root), augment=False), 0)
    assert augmented.transform.augments and not plain.transform.augments
    assert plain.transform.mean == augmented.transform.mean
    assert plain.transform.std == augmented.transform.std
    x = plain[0].train.x[:4]
    g = torch.Generator().manual_seed(0)
    assert torch.equal(plain.transform.train(x, g), plain.transform.normalize(x))


def test_cssl_split_cifar100_preset_runs_on_the_official_format(cli, tmp_path: Path) -> None:
    root = write_cifar100(tmp_path / "data", per_class=2)
    run_dir = tmp_path / "run"
    small = ["backbone.nf=4", "method.ssl_dim_proj=16", "method.ssl_dim_pred=8", "train.iters=1"]
    args = ["--preset", "seq-cifar100/cssl", "--data-root", root, "--run-dir", run_dir]
    result = cli("run", *FAST, *args, *[f"--set={s}" for s in small])
    assert result.code == 0, result.err
    results = json.loads((run_dir / "results.json").read_text())
    assert results["completed"] and results["num_experiences"] == 20
    method = results["config"]["method"]
    assert (method["ssl_model"], method["strategy"], method["passes"]) == ("simsiam", "none", 3)
    matrix = results["protocols"]["class-il"]["matrix"]
    assert len(matrix) == 20 and all(0.0 <= a <= 100.0 for row in matrix for a in row)
