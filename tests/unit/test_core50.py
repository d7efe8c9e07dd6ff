"""The CORe50 loader and its scenarios, on a tiny CORe50 written in the official format."""

from __future__ import annotations

import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.io import encode_png, write_file

from lifelong.data import core50, core50_download
from lifelong.data.catalog import build_stream
from lifelong.data.core50 import load_core50
from lifelong.data.scenarios import SCENARIOS, DatasetConfig
from lifelong.data.stream import Stream
from lifelong.errors import ConfigError, DataError

pytestmark = pytest.mark.filterwarnings(
    "ignore:The image decoding and encoding capabilities of TorchVision:DeprecationWarning"
)
SIDE = 8
PER_BATCH = 2  # images per training batch (batch 0: per class)
N_TEST = 101  # test images: every 20th → 6


@dataclass(frozen=True)
class Fixture:
    """What was written: the images (paths.pkl order) and the nicv2_391 tables of run 0 and 1."""

    root: Path
    images: np.ndarray
    paths: list[str]
    lookup: dict[str, list[list[list[int]]]]
    labels: dict[str, list[list[list[int]]]]


def _entries(rng: np.random.Generator) -> list[list[tuple[int, int]]]:
    """(session, object) of every image of each nicv2_391 entry; the last entry is the test set."""
    first = [(1, o) for o in range(1, 51, 5) for _ in range(PER_BATCH)]  # o1, o6, ..., o46
    later = [[(2 + b % 8, 1 + int(rng.integers(50)))] * PER_BATCH for b in range(390)]
    test = [(3, 1 + i % 50) for i in range(N_TEST)]
    return [first, *later, test]


def _write(root: Path, *, npz: bool = True, png: bool = True, seed: int = 0) -> Fixture:
    """A CORe50 with 391 + 1 nicv2_391 entries per run, images shuffled in paths.pkl order."""
    rng = np.random.default_rng(seed)
    runs = [_entries(rng), _entries(rng)]
    items = [
        (r, e, k)
        for r, run in enumerate(runs)
        for e, ent in enumerate(run)
        for k in range(len(ent))
    ]
    order = rng.permutation(len(items))
    position = {items[i]: p for p, i in enumerate(order)}
    paths = [""] * len(items)
    for (r, e, k), p in position.items():
        session, obj = runs[r][e][k]
        paths[p] = f"s{session}/o{obj}/C_{session:02d}_{obj:02d}_{p:05d}.png"
    lookup = {
        "nicv2_391": [
            [[position[r, e, k] for k in range(len(ent))] for e, ent in enumerate(run)]
            for r, run in enumerate(runs)
        ]
    }
    labels = {"nicv2_391": [[[o - 1 for _, o in ent] for ent in run] for run in runs]}
    images = rng.integers(0, 256, (len(paths), SIDE, SIDE, 3), dtype=np.uint8)
    root.mkdir(parents=True, exist_ok=True)
    for name, table in (("paths.pkl", paths), ("LUP.pkl", lookup), ("labels.pkl", labels)):
        (root / name).write_bytes(pickle.dumps(table))
    if npz:
        np.savez(root / "core50_imgs.npz", x=images)
    if png:
        for path, image in zip(paths, images, strict=True):
            file = root / "core50_128x128" / path
            file.parent.mkdir(parents=True, exist_ok=True)
            write_file(str(file), encode_png(torch.from_numpy(image).permute(2, 0, 1).contiguous()))
    return Fixture(root, images, paths, lookup, labels)


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFELONG_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    return _write(tmp_path_factory.mktemp("core50") / "core50")


def _chw(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2)


def _stream(root: Path, run: int = 0, test_subsample: int = 20) -> Stream:
    cfg = DatasetConfig("core50-nicv2-391", str(root), run=run, test_subsample=test_subsample)
    return build_stream(cfg, 0)


def test_nicv2_391_stream_has_the_tables_shape(written: Fixture) -> None:
    stream = _stream(written.root.parent)  # <root>/core50 is found
    assert len(stream) == 391
    assert stream[0].classes == tuple(range(0, 50, 5))  # 10 classes, one object per category
    assert all(len(e.classes) == 1 for e in list(stream)[1:])
    assert [len(e.train) for e in stream] == [10 * PER_BATCH] + [PER_BATCH] * 390
    assert stream.num_classes == 50 and stream.setting == "gcil"
    assert stream.protocols == ("class-il",)
    assert all(e.test is stream[0].test for e in stream)
    assert stream.image_shape == (3, SIDE, SIDE)
    assert stream.transform.mean == (0.485, 0.456, 0.406) and not stream.transform.augments
    assert stream.class_names[0] == "plug_adapter1" and stream.class_names[49] == "remote_control5"


def test_images_and_labels_follow_the_lookup_table(written: Fixture) -> None:
    stream = _stream(written.root)
    for t in (0, 1, 200, 390):
        index = written.lookup["nicv2_391"][0][t]
        assert torch.equal(stream[t].train.x, _chw(written.images[index]))
        assert stream[t].train.y.tolist() == written.labels["nicv2_391"][0][t]
        objects = [int(written.paths[i].split("/")[1][1:]) for i in index]
        assert stream[t].train.y.tolist() == [o - 1 for o in objects]  # label = object id - 1


def test_test_set_keeps_every_20th_image_by_default(written: Fixture) -> None:
    test_index = written.lookup["nicv2_391"][0][-1]
    test_labels = written.labels["nicv2_391"][0][-1]
    test = _stream(written.root)[0].test
    assert len(test) == 6  # ceil(101 / 20), as the reference's 2,249 of 44,972
    assert torch.equal(test.x, _chw(written.images[test_index[::20]]))
    assert test.y.tolist() == test_labels[::20]
    full = _stream(written.root, test_subsample=1)[0].test
    assert len(full) == N_TEST and full.y.tolist() == test_labels


def test_npz_and_png_folders_give_identical_tensors(written: Fixture, tmp_path: Path) -> None:
    png_only = tmp_path / "png"
    shutil.copytree(written.root, png_only)
    (png_only / "core50_imgs.npz").unlink()
    for size in (None, 5):
        from_npz = load_core50(str(written.root), size=size)
        from_png = load_core50(str(png_only), size=size)
        assert from_npz.test.x.shape[-1] == (size or SIDE)
        assert torch.equal(from_npz.test.x, from_png.test.x)
        for a, b in zip(from_npz.batches, from_png.batches, strict=True):
            assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)


def test_run_field_picks_the_batch_order(written: Fixture) -> None:
    run1 = _stream(written.root, run=1)
    assert torch.equal(run1[5].train.x, _chw(written.images[written.lookup["nicv2_391"][1][5]]))
    with pytest.raises(ConfigError, match=r"dataset\.run must be below 2"):
        _stream(written.root, run=2)


def test_decoded_images_are_cached(written: Fixture, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_core50(str(written.root))

    def no_decode(*args: object) -> torch.Tensor:
        raise AssertionError("decoded again instead of using the cache")

    monkeypatch.setattr(core50, "_npz_pixels", no_decode)
    again = load_core50(str(written.root))
    assert torch.equal(again.batches[3].x, first.batches[3].x)
    with pytest.raises(AssertionError, match="decoded again"):
        load_core50(str(written.root), size=4)  # another size is another cache entry


def test_missing_folder_names_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        _stream(tmp_path / "nowhere")
    message = str(info.value)
    assert str(tmp_path / "nowhere" / "core50") in message and "paths.pkl" in message
    assert core50_download.TABLES_URL in message and "--download" in message


def test_missing_images_name_both_sources(tmp_path: Path) -> None:
    fixture = _write(tmp_path / "core50", npz=False, png=False)
    with pytest.raises(DataError, match="core50_128x128") as info:
        load_core50(str(fixture.root))
    assert "core50_imgs.npz" in str(info.value)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_table_is_a_data_error(tmp_path: Path, damage: str) -> None:
    fixture = _write(tmp_path / "core50", png=False)
    table = fixture.root / "LUP.pkl"
    data = table.read_bytes()
    table.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not a pickle at all")
    with pytest.raises(DataError, match=r"LUP\.pkl"):
        load_core50(str(fixture.root))


def test_truncated_npz_is_a_data_error(tmp_path: Path) -> None:
    fixture = _write(tmp_path / "core50", png=False)
    npz = fixture.root / "core50_imgs.npz"
    npz.write_bytes(npz.read_bytes()[:-5000])
    with pytest.raises(DataError, match=r"core50_imgs\.npz"):
        load_core50(str(fixture.root))


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def test_tampered_table_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    fixture = _write(tmp_path / "core50", png=False)
    marker = tmp_path / "marker"
    evil = pickle.dumps({"nicv2_391": [_Payload(marker)]})
    pickle.loads(evil)  # the payload is live: plain pickle runs it
    assert marker.exists()
    marker.unlink()
    (fixture.root / "labels.pkl").write_bytes(evil)
    with pytest.raises(DataError, match=r"refuses to load .*system"):
        load_core50(str(fixture.root))
    assert not marker.exists()


def test_numpy_tables_pickled_by_python2_era_protocol_load_the_same(tmp_path: Path) -> None:
    fixture = _write(tmp_path / "core50", png=False)
    plain = load_core50(str(fixture.root))
    lookup = {
        "nicv2_391": [[np.asarray(e, np.int32) for e in run] for run in fixture.lookup["nicv2_391"]]
    }
    labels = {
        "nicv2_391": [
            [[np.int64(v) for v in e] for e in run] for run in fixture.labels["nicv2_391"]
        ]
    }
    (fixture.root / "LUP.pkl").write_bytes(pickle.dumps(lookup, protocol=2))
    (fixture.root / "labels.pkl").write_bytes(pickle.dumps(labels, protocol=2))
    with_numpy = load_core50(str(fixture.root))
    assert torch.equal(with_numpy.batches[7].x, plain.batches[7].x)
    assert torch.equal(with_numpy.test.y, plain.test.y)


def test_class_names_follow_the_objects_not_the_label_numbers(tmp_path: Path) -> None:
    fixture = _write(tmp_path / "core50", png=False)
    swap = {0: 5, 5: 0}  # a table that numbers o1 and o6 the other way round
    labels = {
        "nicv2_391": [
            [[swap.get(v, v) for v in e] for e in run] for run in fixture.labels["nicv2_391"]
        ]
    }
    (fixture.root / "labels.pkl").write_bytes(pickle.dumps(labels))
    names = load_core50(str(fixture.root)).class_names
    assert names[0] == "mobile_phone1" and names[5] == "plug_adapter1"
    labels["nicv2_391"][0][0][0] = 1  # an image of o1 labelled as o2, which the test set has
    (fixture.root / "labels.pkl").write_bytes(pickle.dumps(labels))
    with pytest.raises(DataError, match="gives label 1 to objects"):
        load_core50(str(fixture.root))


def test_tables_with_the_wrong_shape_are_data_errors(tmp_path: Path) -> None:
    fixture = _write(tmp_path / "core50", png=False)
    lookup = {"nicv2_391": [run[:100] for run in fixture.lookup["nicv2_391"]]}
    (fixture.root / "LUP.pkl").write_bytes(pickle.dumps(lookup))
    with pytest.raises(DataError, match=r"has 100 entries, expected 392"):
        load_core50(str(fixture.root))
    (fixture.root / "LUP.pkl").write_bytes(pickle.dumps({"ni": []}))
    with pytest.raises(DataError, match="no scenario 'nicv2_391'"):
        load_core50(str(fixture.root))
    with pytest.raises(ConfigError, match="unknown CORe50 scenario"):
        load_core50(str(fixture.root), scenario="nicv3")


def test_registered_scenarios_and_defaults() -> None:
    names = {"core50-ni", "core50-nc", "core50-nic", "core50-nicv2-79", "core50-nicv2-196"}
    assert names | {"core50-nicv2-391"} <= set(SCENARIOS.names())
    defaults = SCENARIOS.get("core50-nicv2-391").defaults
    assert defaults == {
        "train": {"epochs": 4, "batch_size": 128},
        "backbone": {"name": "mobilenet_v1"},
    }


def test_ar1_star_preset_runs_the_whole_nicv2_391_fixture(written: Fixture, tmp_path: Path) -> None:
    import json

    from lifelong.cli import main

    run_dir = tmp_path / "run"
    argv = ["run", "--preset", "core50-nicv2-391/ar1_star", "--data-root", str(written.root)]
    # the preset with a small MLP instead of MobileNetV1, to keep 391 experiences fast
    argv += ["--backbone", "mlp", "--set", "latent_layer=fc1", "--set", "rm_sz=30", "--epochs", "1"]
    argv += ["--batch-size", "8", "--no-progress", "--no-tensorboard", "--run-dir", str(run_dir)]
    assert main(argv) == 0
    results = json.loads((run_dir / "results.json").read_text())
    assert results["completed"] and results["num_experiences"] == 391
    assert list(results["protocols"]) == ["class-il"]
    steps = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    memory = [s["memory_mb"] for s in steps if s.get("kind") == "step" and "memory_mb" in s]
    assert memory and memory[-1] > 0  # the latent memory filled and its size is logged
