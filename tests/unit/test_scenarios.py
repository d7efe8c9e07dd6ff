"""Scenario builders on synthetic data, the offline digits stream and the MNIST IDX reader."""

from __future__ import annotations

import dataclasses
import gzip
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from lifelong.data import mnist
from lifelong.data.catalog import build_stream
from lifelong.data.scenarios import (
    SCENARIOS,
    SHAPING_FIELDS,
    DatasetConfig,
    class_order,
    rotate,
    split_as_domains,
    split_by_classes,
    transformed_experiences,
)
from lifelong.data.stream import Experience, Stream
from lifelong.data.tensors import ImageSet, TrainTest
from lifelong.data.transforms import ImageTransform
from lifelong.errors import ConfigError, DataError

NUM_CLASSES = 10


def _synthetic(train_per_class: int = 6, test_per_class: int = 3) -> TrainTest:
    """10 classes of 1x8x8 images; every image is unique and encodes its split index in pixel 0."""

    def part(per_class: int, offset: int) -> ImageSet:
        n = NUM_CLASSES * per_class
        g = torch.Generator().manual_seed(offset)
        x = torch.randint(0, 256, (n, 1, 8, 8), generator=g, dtype=torch.uint8)
        x[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8)  # identity of the example
        y = torch.arange(n) % NUM_CLASSES  # interleaved labels
        return ImageSet(x, y)

    names = tuple(f"c{i}" for i in range(NUM_CLASSES))
    return TrainTest(part(train_per_class, 1), part(test_per_class, 2), names)


def _ids(images: ImageSet) -> list[int]:
    return images.x[:, 0, 0, 0].tolist()


# ---------------------------------------------------------------------------------------------
# class-incremental splits


@pytest.mark.parametrize("shuffle", [False, True])
def test_split_by_classes_is_a_disjoint_complete_partition(shuffle: bool) -> None:
    data = _synthetic()
    order = class_order(NUM_CLASSES, shuffle, seed=3)
    experiences = split_by_classes(data, 2, order)
    assert len(experiences) == 5
    assert [e.id for e in experiences] == list(range(5))
    assert [c for e in experiences for c in e.classes] == order
    for split in ("train", "test"):
        full: ImageSet = getattr(data, split)
        seen: list[int] = []
        for experience in experiences:
            part: ImageSet = getattr(experience, split)
            assert set(part.y.tolist()) == set(experience.classes)
            seen += _ids(part)
            # the images travel with their own labels
            for i, label in zip(_ids(part), part.y.tolist(), strict=True):
                assert int(full.y[i]) == label
                assert torch.equal(full.x[i], part.x[_ids(part).index(i)])
        assert sorted(seen) == list(range(len(full)))  # each example in exactly one experience


def test_class_order_fixed_and_seeded_shuffle() -> None:
    assert class_order(7, shuffle=False, seed=123) == list(range(7))
    shuffled = class_order(10, shuffle=True, seed=0)
    assert sorted(shuffled) == list(range(10))
    assert shuffled == class_order(10, shuffle=True, seed=0)
    orders = {tuple(class_order(10, shuffle=True, seed=s)) for s in range(5)}
    assert len(orders) > 1
    assert any(order != tuple(range(10)) for order in orders)


def test_split_with_too_few_classes_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="classes_per_experience"):
        split_by_classes(_synthetic(), 11, list(range(NUM_CLASSES)))


def test_split_drops_trailing_classes() -> None:
    experiences = split_by_classes(_synthetic(), 4, list(range(NUM_CLASSES)))
    assert [e.classes for e in experiences] == [(0, 1, 2, 3), (4, 5, 6, 7)]


def test_split_logs_the_number_of_dropped_classes(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="lifelong.data.scenarios"):
        split_by_classes(_synthetic(), 4, list(range(NUM_CLASSES)))
    assert "dropping 2 classes" in caplog.text


def test_stream_seen_classes_and_protocols() -> None:
    data = _synthetic()
    experiences = split_by_classes(data, 2, [9, 8, 1, 0, 5, 4, 3, 2, 7, 6])
    transform = ImageTransform((0.0,), (1.0,))
    stream = Stream("synthetic", experiences, NUM_CLASSES, "class-il", transform, data.class_names)
    assert len(stream) == 5
    assert stream.image_shape == (1, 8, 8)
    assert stream.protocols == ("class-il", "task-il")
    assert stream.seen_classes(0) == (8, 9)
    assert stream.seen_classes(1) == (0, 1, 8, 9)
    assert stream.seen_classes(4) == tuple(range(10))
    assert [e.id for e in stream] == list(range(5))
    domain = Stream("d", experiences, NUM_CLASSES, "domain-il", transform, data.class_names)
    assert domain.protocols == ("domain-il",)


# ---------------------------------------------------------------------------------------------
# domain-incremental streams


def test_permuted_experiences_apply_one_permutation_per_experience() -> None:
    data = _synthetic()
    # make the first training image 0..63 so that its permuted version reveals the permutation
    x = data.train.x.clone()
    x[0, 0] = torch.arange(64, dtype=torch.uint8).view(8, 8)
    data = TrainTest(ImageSet(x, data.train.y), data.test, data.class_names)
    experiences = transformed_experiences(data, 3, seed=0, kind="permute")
    assert len(experiences) == 3
    permutations = []
    for t, experience in enumerate(experiences):
        assert experience.id == t
        assert experience.classes == tuple(range(NUM_CLASSES))
        assert torch.equal(experience.train.y, data.train.y)
        assert torch.equal(experience.test.y, data.test.y)
        perm = experience.train.x[0, 0].flatten().long()
        assert sorted(perm.tolist()) == list(range(64))
        permutations.append(perm)
        for split in ("train", "test"):
            original: ImageSet = getattr(data, split)
            permuted: ImageSet = getattr(experience, split)
            flat = original.x.flatten(1)
            assert torch.equal(permuted.x.flatten(1), flat[:, perm])  # same permutation for all
            assert torch.equal(permuted.x.flatten(1).sort(1).values, flat.sort(1).values)
    assert not torch.equal(permutations[0], permutations[1])
    assert not torch.equal(permutations[1], permutations[2])
    # seeded: the same seed gives the same stream
    again = transformed_experiences(data, 3, seed=0, kind="permute")
    assert torch.equal(again[2].test.x, experiences[2].test.x)


def test_rotate_by_180_flips_both_axes() -> None:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (4, 1, 8, 8), generator=g, dtype=torch.uint8)
    rotated = rotate(images, 180.0)
    assert rotated.dtype == torch.uint8
    assert rotated.shape == images.shape
    expected = images.flip(-1).flip(-2)
    # interior pixels: bilinear sampling at (almost) exact pixel centres
    diff = (rotated.int() - expected.int())[..., 1:-1, 1:-1].abs()
    assert int(diff.max()) <= 1


def test_rotate_by_zero_is_identity() -> None:
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (2, 1, 8, 8), generator=g, dtype=torch.uint8)
    assert torch.equal(rotate(images, 0.0), images)


def test_rotate_by_90_is_counter_clockwise() -> None:
    image = torch.zeros(1, 1, 8, 8, dtype=torch.uint8)
    image[0, 0, 0:2, 6:8] = 200  # top-right corner
    rotated = rotate(image, 90.0)
    # counter-clockwise (torch.rot90 from the row axis to the column axis): top-right → top-left
    assert torch.equal(rotated, torch.rot90(image, 1, (-2, -1)))


def test_rotated_experiences_keep_labels_and_change_images() -> None:
    data = _synthetic()
    experiences = transformed_experiences(data, 2, seed=0, kind="rotate")
    assert len(experiences) == 2
    for experience in experiences:
        assert torch.equal(experience.train.y, data.train.y)
        assert torch.equal(experience.test.y, data.test.y)
        assert experience.train.x.shape == data.train.x.shape
        assert experience.train.x.dtype == torch.uint8
        assert not torch.equal(experience.train.x, data.train.x)
    assert not torch.equal(experiences[0].train.x, experiences[1].train.x)


# ---------------------------------------------------------------------------------------------
# offline digits stream


def test_seq_digits_stream() -> None:
    stream = build_stream(DatasetConfig(name="seq-digits"), seed=0)
    assert stream.name == "seq-digits"
    assert len(stream) == 5
    assert stream.setting == "class-il"
    assert stream.protocols == ("class-il", "task-il")
    assert stream.image_shape == (1, 8, 8)
    assert stream.num_classes == 10
    assert [e.classes for e in stream] == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    for experience in stream:
        assert set(experience.train.y.tolist()) == set(experience.classes)
        assert set(experience.test.y.tolist()) == set(experience.classes)
    total = sum(len(e.train) + len(e.test) for e in stream)
    assert total == 1797
    assert "seq-digits" in SCENARIOS


def test_test_subsample_keeps_every_kth_test_image_and_all_training_images() -> None:
    full = build_stream(DatasetConfig(name="seq-digits"), seed=0)
    thin = build_stream(DatasetConfig(name="seq-digits", test_subsample=3), seed=0)
    all_test = torch.cat([e.test.x for e in full])
    kept = torch.cat([e.test.x for e in thin])
    assert sum(len(e.test) for e in thin) == -(-sum(len(e.test) for e in full) // 3)
    assert all(torch.equal(a.train.x, b.train.x) for a, b in zip(full, thin, strict=True))
    rows = {bytes(image.numpy()) for image in all_test}
    assert all(bytes(image.numpy()) in rows for image in kept)
    assert [set(e.test.y.tolist()) for e in thin] == [set(e.classes) for e in thin]


def test_validation_holds_out_a_class_balanced_seeded_share_of_the_training_images() -> None:
    full = build_stream(DatasetConfig(name="seq-digits"), seed=0)
    held = build_stream(DatasetConfig(name="seq-digits", validation=0.2), seed=0)
    again = build_stream(DatasetConfig(name="seq-digits", validation=0.2), seed=0)
    other = build_stream(DatasetConfig(name="seq-digits", validation=0.2), seed=1)
    assert held.has_validation and not full.has_validation
    for before, after, same, moved in zip(full, held, again, other, strict=True):
        assert after.val is not None and same.val is not None and moved.val is not None
        assert torch.equal(after.test.x, before.test.x)  # the test set is untouched
        for label in before.classes:
            n = int((before.train.y == label).sum())
            n_val = int((after.val.y == label).sum())
            assert n_val == round(0.2 * n) and int((after.train.y == label).sum()) == n - n_val
        train_rows = {bytes(image.numpy()) for image in after.train.x}
        val_rows = [bytes(image.numpy()) for image in after.val.x]
        assert not train_rows.intersection(val_rows)  # disjoint (digits has no duplicates)
        assert torch.equal(same.val.x, after.val.x)  # the seed fixes the choice
        assert not torch.equal(moved.val.x, after.val.x)


def test_validation_on_a_scenario_without_it_is_a_config_error(monkeypatch) -> None:
    from lifelong.data import catalog

    plain = build_stream(DatasetConfig(name="seq-digits"), seed=0)
    scenario = catalog.SCENARIOS.get("seq-digits")
    fake = type(scenario)(lambda cfg, seed: plain, "no validation")
    monkeypatch.setattr(catalog.SCENARIOS, "get", lambda name: fake)
    with pytest.raises(ConfigError, match=r"dataset\.validation is not supported by seq-digits"):
        build_stream(DatasetConfig(name="seq-digits", validation=0.1), seed=0)
    with pytest.raises(ConfigError, match=r"dataset.validation must be in \[0, 1\)"):
        DatasetConfig(name="seq-digits", validation=1.0)


def test_dataset_classes_keeps_a_relabelled_subset() -> None:
    full = build_stream(DatasetConfig(name="seq-digits"), seed=0)
    cfg = DatasetConfig(name="seq-digits", classes=(3, 7, 1, 9), classes_per_experience=2)
    subset = build_stream(cfg, seed=0)
    assert subset.num_classes == 4 and len(subset) == 2
    assert subset.class_names == tuple(full.class_names[c] for c in (3, 7, 1, 9))
    assert [e.classes for e in subset] == [(0, 1), (2, 3)]
    for new, old in enumerate((3, 7, 1, 9)):
        source = next(e for e in full if old in e.classes)
        target = subset[new // 2]
        assert torch.equal(
            target.train.x[target.train.y == new], source.train.x[source.train.y == old]
        )
    with pytest.raises(ConfigError, match="label 10; the data hold 10 classes"):
        build_stream(DatasetConfig(name="seq-digits", classes=(2, 10)), seed=0)
    with pytest.raises(ConfigError, match="distinct labels"):
        DatasetConfig(name="seq-digits", classes=(2, 2))


def test_n_experiences_splits_a_class_incremental_stream_evenly() -> None:
    stream = build_stream(DatasetConfig(name="seq-digits", n_experiences=2), seed=0)
    assert [e.classes for e in stream] == [(0, 1, 2, 3, 4), (5, 6, 7, 8, 9)]
    subset = DatasetConfig(name="seq-digits", classes=(0, 1, 2, 3), n_experiences=4)
    assert [e.classes for e in build_stream(subset, seed=0)] == [(0,), (1,), (2,), (3,)]
    with pytest.raises(ConfigError, match="n_experiences=3 cannot split 10 classes evenly"):
        build_stream(DatasetConfig(name="seq-digits", n_experiences=3), seed=0)
    both = DatasetConfig(name="seq-digits", n_experiences=5, classes_per_experience=2)
    with pytest.raises(ConfigError, match="not both"):
        build_stream(both, seed=0)


def test_seq_digits_shuffled_classes_follow_the_seed() -> None:
    stream = build_stream(DatasetConfig(name="seq-digits", shuffle_classes=True), seed=4)
    order = [c for e in stream for c in e.classes]
    assert order == class_order(10, shuffle=True, seed=4)


def test_load_digits_is_deterministic_and_stratified() -> None:
    first, second = mnist.load_digits(), mnist.load_digits()
    assert torch.equal(first.train.x, second.train.x)
    assert torch.equal(first.test.y, second.test.y)
    assert first.train.x.dtype == torch.uint8
    assert int(first.train.x.max()) == 255  # 0..16 rescaled to 0..255
    assert len(first.train) + len(first.test) == 1797
    for c in range(10):
        n_test = int((first.test.y == c).sum())
        n_total = n_test + int((first.train.y == c).sum())
        assert abs(n_test - 0.2 * n_total) <= 1
    # the split shuffles before choosing: the test set is not simply the first examples
    from sklearn.datasets import load_digits

    raw = np.rint(load_digits().images * (255.0 / 16.0)).astype(np.uint8)
    first_test = first.test.x[:, 0].numpy()
    assert not np.array_equal(first_test[:20], raw[:20])


# ---------------------------------------------------------------------------------------------
# MNIST IDX files


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_read_idx_gz_and_plain(tmp_path: Path) -> None:
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    gz = tmp_path / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(_idx_bytes(images)))
    np.testing.assert_array_equal(mnist.read_idx(gz), images)
    plain = tmp_path / "train-labels-idx1-ubyte"
    labels = np.array([7, 0, 9], dtype=np.uint8)
    plain.write_bytes(_idx_bytes(labels))
    np.testing.assert_array_equal(mnist.read_idx(plain), labels)


def test_read_idx_truncated_payload_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    data = _idx_bytes(np.zeros((4, 28, 28), dtype=np.uint8))
    path.write_bytes(gzip.compress(data[:-100]))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz.*truncated"):
        mnist.read_idx(path)


def test_read_idx_truncated_gzip_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    compressed = gzip.compress(_idx_bytes(np.arange(200, dtype=np.uint8)))
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz"):
        mnist.read_idx(path)


def test_read_idx_rejects_non_idx_files(tmp_path: Path) -> None:
    path = tmp_path / "not-idx"
    path.write_bytes(b"hello world, this is not an IDX file")
    with pytest.raises(DataError, match="not an IDX"):
        mnist.read_idx(path)


def test_load_mnist_from_idx_files(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 12), ("t10k", 5)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(images)))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx_bytes(labels))
    data = mnist.load_mnist(str(tmp_path))
    assert data.train.x.shape == (12, 1, 28, 28)
    assert data.test.x.shape == (5, 1, 28, 28)
    assert data.train.y.dtype == torch.int64
    assert data.train.y.tolist() == [i % 10 for i in range(12)]
    assert data.num_classes == 10


def test_load_mnist_missing_folder_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="MNIST"):
        mnist.load_mnist(str(tmp_path / "nowhere"))


def test_experience_is_immutable() -> None:
    data = _synthetic()
    experience = Experience(0, (0, 1), data.train, data.test)
    with pytest.raises(AttributeError):
        experience.id = 3  # type: ignore[misc]


def test_split_as_domains_relabels_each_pair_to_shared_units() -> None:
    y = torch.arange(6).repeat_interleave(3)  # 6 classes, 3 images each; image value = class
    x = y.to(torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()
    data = TrainTest(ImageSet(x, y), ImageSet(x.clone(), y.clone()), tuple("abcdef"))
    experiences = split_as_domains(data, 2, [4, 1, 0, 5, 3, 2])
    assert [e.classes for e in experiences] == [(0, 1)] * 3
    for experience, pair in zip(experiences, [(4, 1), (0, 5), (3, 2)], strict=True):
        for split in (experience.train, experience.test):
            original = split.x[:, 0, 0, 0].long()  # the image remembers its class
            assert set(original.tolist()) == set(pair)
            expected = torch.where(original == pair[0], 0, 1)
            assert torch.equal(split.y, expected)


def test_padding_and_an_unpermuted_first_experience_as_the_bir_code() -> None:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(1, 256, (6, 1, 28, 28), generator=g, dtype=torch.uint8)
    data = TrainTest(
        ImageSet(images, torch.arange(6) % 3),
        ImageSet(images[:3], torch.arange(3)),
        ("a", "b", "c"),
    )
    plain = transformed_experiences(data, 3, seed=5, kind="permute")
    padded = transformed_experiences(data, 3, seed=5, kind="permute", pad=2, first_unpermuted=True)
    first = padded[0].train.x
    assert first.shape == (6, 1, 32, 32)
    assert torch.equal(first[:, :, 2:30, 2:30], images)  # the original pixel order, framed
    assert first.sum() == images.sum()  # the frame is zeros
    assert not torch.equal(plain[0].train.x, images)  # without the option it is permuted
    # later permutations are drawn as without the option (of 32x32 pixels here)
    assert padded[1].train.x.shape == (6, 1, 32, 32)
    assert sorted(padded[1].train.x[0].flatten().tolist()) == sorted(first[0].flatten().tolist())


def test_pad_out_of_range_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"dataset\.pad"):
        DatasetConfig(pad=-1)


SET_VALUES = {
    "shuffle_classes": True,
    "classes_per_experience": 3,
    "n_experiences": 3,
    "gcil_samples_per_phase": 3,
    "image_size": 3,
    "run": 3,
    "test_subsample": 3,
    "nic_first_classes": 3,
    "nic_chunk": 3,
    "pad": 2,
    "first_unpermuted": True,
}


@pytest.mark.parametrize("name", SCENARIOS.names())
def test_a_scenario_refuses_the_optional_fields_it_would_ignore(name: str) -> None:
    scenario = SCENARIOS.get(name)
    assert set(SET_VALUES) == set(SHAPING_FIELDS)
    assert scenario.reads <= set(SHAPING_FIELDS)
    scenario.check_fields(DatasetConfig(name=name))  # the defaults are always accepted
    for field_name in SHAPING_FIELDS:
        cfg = DatasetConfig(name=name, **{field_name: SET_VALUES[field_name]})
        if field_name in scenario.reads:
            scenario.check_fields(cfg)
        else:
            with pytest.raises(ConfigError, match=f"dataset.{field_name} has no effect on {name}"):
                scenario.check_fields(cfg)


def test_an_ignored_field_is_refused_before_the_data_are_read(tmp_path: Path) -> None:
    # no MNIST under root: the field check comes first, so the error is the config's
    cfg = DatasetConfig(name="rot-mnist", root=str(tmp_path), first_unpermuted=True)
    with pytest.raises(
        ConfigError, match=r"first_unpermuted has no effect on rot-mnist \(it reads"
    ):
        build_stream(cfg, seed=0)
    with pytest.raises(ConfigError, match="classes_per_experience has no effect on perm-mnist"):
        build_stream(DatasetConfig(name="perm-mnist", classes_per_experience=2), seed=0)
    with pytest.raises(ConfigError, match="image_size has no effect on seq-digits"):
        build_stream(DatasetConfig(name="seq-digits", image_size=32), seed=0)


def test_split_mnist_domain_takes_n_experiences(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 20), ("t10k", 10)):
        images = np.zeros((n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(_idx_bytes(images))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx_bytes(labels))
    cfg = DatasetConfig(name="split-mnist-domain", root=str(tmp_path), n_experiences=2)
    stream = build_stream(cfg, seed=0)
    assert len(stream) == 2
    assert stream.num_classes == 5  # five digits share five output units per experience
    with pytest.raises(ConfigError, match="cannot split 10 classes evenly"):
        build_stream(dataclasses.replace(cfg, n_experiences=3), seed=0)
