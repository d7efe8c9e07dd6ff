"""Scenario builders: class-incremental splits, permuted and rotated domain-incremental streams.

Each registered scenario turns a :class:`DatasetConfig` into a :class:`Stream` and declares the
training defaults of the paper that introduced it (epochs, batch size, backbone).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

from lifelong.data.stream import Experience, Setting, Stream
from lifelong.data.tensors import ImageSet, TrainTest
from lifelong.errors import ConfigError
from lifelong.registry import Registry

log = logging.getLogger(__name__)

MAX_PAD = 64
"""The most zero pixels ``dataset.pad`` adds on a side."""


@dataclass(frozen=True)
class DatasetConfig:
    """Which scenario to build and where its data lives."""

    name: str = "seq-digits"
    """Registered scenario name (see ``lifelong list datasets``)."""
    root: str = "data"
    """Folder holding the dataset in its official layout."""
    download: bool = False
    """Fetch the dataset if it is missing (needs internet; never used by tests)."""
    shuffle_classes: bool = False
    """Shuffle the class order with the run seed instead of the fixed 0..C-1 order."""
    classes_per_experience: int | None = None
    """Classes per experience for class-incremental scenarios (None: the scenario's default)."""
    n_experiences: int | None = None
    """Experiences (class-incremental: classes split evenly; GCIL: phases; None: the default)."""
    gcil_samples_per_phase: int | None = None
    """GCIL: training samples drawn per phase (None: 1,000, as CLS-ER)."""
    image_size: int | None = None
    """Resize images to this side (CIFAR, ImageNet-100, Tiny-ImageNet, CORe50; None: native)."""
    run: int = 0
    """NIC scenarios: CORe50's official batch order (run 0-9); for the others, the order's seed."""
    test_subsample: int | None = None
    """Keep every k-th test image (None: all; CORe50: 20, the reference's 2,249 images)."""
    nic_first_classes: int | None = None
    """NIC scenarios built from a dataset: classes in the first experience (None: default)."""
    nic_chunk: int | None = None
    """NIC scenarios from a dataset: examples per later one-class experience (None: default)."""
    augment: bool = True
    """Apply the dataset's training augmentation (random crop, flip); False: plain images."""
    validation: float = 0.0
    """Fraction of each class's training images held out for validation (0: none)."""
    classes: tuple[int, ...] | None = None
    """Keep only these labels of the dataset, relabelled 0..k-1 in this order (None: all)."""
    pad: int = 0
    """Permuted/rotated MNIST: zero pixels added on each side first (BI-R's permMNIST: 2)."""
    first_unpermuted: bool = False
    """Permuted MNIST: the first experience keeps the pixel order (BI-R's code for seeds < 10)."""

    def __post_init__(self) -> None:
        names = ("classes_per_experience", "n_experiences", "image_size", "test_subsample")
        for name in (*names, "nic_first_classes", "nic_chunk", "gcil_samples_per_phase"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"dataset.{name} must be positive, got {value}")
        if self.run < 0:
            raise ConfigError(f"dataset.run must be 0 or more, got {self.run}")
        if self.classes is not None and (
            not self.classes or len(set(self.classes)) != len(self.classes) or min(self.classes) < 0
        ):
            raise ConfigError(f"dataset.classes must be distinct labels >= 0, got {self.classes}")
        if not 0 <= self.pad <= MAX_PAD:
            raise ConfigError(f"dataset.pad must be in [0, {MAX_PAD}], got {self.pad}")
        if not 0.0 <= self.validation < 1.0:
            raise ConfigError(f"dataset.validation must be in [0, 1), got {self.validation}")


Builder = Callable[[DatasetConfig, int], Stream]


SHAPING_FIELDS = (
    "shuffle_classes", "classes_per_experience", "n_experiences", "gcil_samples_per_phase",
    "image_size", "run", "test_subsample", "nic_first_classes", "nic_chunk", "pad",
    "first_unpermuted",
)  # fmt: skip
"""Dataset fields that only some scenarios read; a scenario refuses the others when set."""


@dataclass(frozen=True)
class Scenario:
    """A registered scenario: how to build it and the paper defaults that go with it."""

    build: Builder
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)
    reads: frozenset[str] = frozenset()
    """The :data:`SHAPING_FIELDS` the builder reads; setting another one is a ConfigError."""
    setting: Setting = "class-il"
    """The built stream's setting, known before the data load (``build_stream`` checks it)."""

    def check_fields(self, cfg: DatasetConfig) -> None:
        """Refuse a shaping field set away from its default that this scenario would ignore.

        Raises:
            ConfigError: naming the first such field and the ones the scenario reads.
        """
        default = DatasetConfig()
        for name in SHAPING_FIELDS:
            if name not in self.reads and getattr(cfg, name) != getattr(default, name):
                reads = ", ".join(f"dataset.{f}" for f in SHAPING_FIELDS if f in self.reads)
                raise ConfigError(
                    f"dataset.{name} has no effect on {cfg.name} "
                    f"(it reads {reads or 'none of the optional dataset fields'}): remove it"
                )


SCENARIOS: Registry[Scenario] = Registry("dataset")


def class_order(num_classes: int, shuffle: bool, seed: int) -> list[int]:
    """The fixed order 0..C-1, or a permutation drawn from ``seed`` when ``shuffle`` is set."""
    if not shuffle:
        return list(range(num_classes))
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(num_classes, generator=generator).tolist()


def split_by_classes(
    data: TrainTest, classes_per_experience: int, order: list[int]
) -> tuple[Experience, ...]:
    """Split ``data`` into experiences of ``classes_per_experience`` classes in ``order``.

    Trailing classes that do not fill a whole experience are dropped (and logged).
    """
    n = len(order) // classes_per_experience
    if n == 0:
        raise ConfigError(
            f"{len(order)} classes cannot fill one experience of {classes_per_experience} classes: "
            "lower dataset.classes_per_experience"
        )
    if n * classes_per_experience < len(order):
        dropped = len(order) - n * classes_per_experience
        log.warning("dropping %d classes that do not fill an experience", dropped)
    experiences = []
    for t in range(n):
        classes = tuple(order[t * classes_per_experience : (t + 1) * classes_per_experience])
        experiences.append(
            Experience(
                t, classes, data.train.with_classes(classes), data.test.with_classes(classes)
            )
        )
    return tuple(experiences)


def keep_classes(data: TrainTest, classes: tuple[int, ...] | None) -> TrainTest:
    """Keep only ``classes`` of ``data`` (train and test), relabelled 0..k-1 in that order.

    ``None`` returns ``data`` unchanged. Used to hold classes out of a stream, e.g. to pre-train
    on some classes and learn the others continually.
    """
    if classes is None:
        return data
    if max(classes) >= data.num_classes:
        raise ConfigError(
            f"dataset.classes has label {max(classes)}; the data hold {data.num_classes} classes"
        )
    table = torch.full((data.num_classes,), -1, dtype=torch.int64)
    table[list(classes)] = torch.arange(len(classes))

    def subset(images: ImageSet) -> ImageSet:
        kept = images.select(table[images.y] >= 0)
        return ImageSet(kept.x, table[kept.y])

    names = tuple(data.class_names[c] for c in classes)
    return TrainTest(subset(data.train), subset(data.test), names)


def hold_out_validation(
    data: TrainTest, fraction: float, seed: int
) -> tuple[TrainTest, ImageSet | None]:
    """Hold out ``fraction`` of each class's training images (at least one) for validation.

    The choice is class-balanced and drawn from ``seed``; the held-out images leave the
    training set. ``fraction`` 0 returns ``data`` unchanged and no validation set.
    """
    if fraction == 0.0:
        return data, None
    generator = torch.Generator().manual_seed(seed)
    held = []
    for label in torch.unique(data.train.y).tolist():
        members = torch.nonzero(data.train.y == label).flatten()
        if len(members) < 2:
            raise ConfigError(f"class {label} has {len(members)} training image: cannot validate")
        count = min(len(members) - 1, max(1, round(fraction * len(members))))
        held.append(members[torch.randperm(len(members), generator=generator)[:count]])
    mask = torch.zeros(len(data.train), dtype=torch.bool)
    mask[torch.cat(held)] = True
    kept = TrainTest(data.train.select(~mask), data.test, data.class_names)
    return kept, data.train.select(mask)


def with_validation(
    experiences: tuple[Experience, ...], val: ImageSet | None
) -> tuple[Experience, ...]:
    """Give each experience the images of ``val`` from its classes (unchanged when None)."""
    if val is None:
        return experiences
    return tuple(replace(e, val=val.with_classes(e.classes)) for e in experiences)


def split_as_domains(
    data: TrainTest, classes_per_experience: int, order: list[int]
) -> tuple[Experience, ...]:
    """Domain-incremental split: experiences of new classes sharing one small label space.

    Experience ``t`` holds classes ``order[t*k : (t+1)*k]`` relabelled to their position
    ``0..k-1`` in it, as in split MNIST's domain-incremental scenario (van de Ven & Tolias, "Three
    scenarios for continual learning", 2019: is it the first or the second digit of the pair?).
    """
    experiences = []
    for experience in split_by_classes(data, classes_per_experience, order):
        position = torch.full((data.num_classes,), -1, dtype=torch.int64)
        position[list(experience.classes)] = torch.arange(classes_per_experience)
        train, test = experience.train, experience.test
        experiences.append(
            Experience(
                experience.id,
                tuple(range(classes_per_experience)),
                ImageSet(train.x, position[train.y]),
                ImageSet(test.x, position[test.y]),
            )
        )
    return tuple(experiences)


def permute_pixels(images: torch.Tensor, permutation: torch.Tensor) -> torch.Tensor:
    """Apply one fixed pixel permutation to every image of a (N, C, H, W) batch."""
    n, c, h, w = images.shape
    return images.reshape(n, c, h * w)[:, :, permutation].reshape(n, c, h, w)


def rotate(images: torch.Tensor, degrees: float | torch.Tensor) -> torch.Tensor:
    """Rotate uint8 images counter-clockwise about the centre (bilinear, zero fill).

    Args:
        images: (N, C, H, W) uint8.
        degrees: One angle for all images, or a tensor of N angles, one per image.
    """
    angles = torch.as_tensor(degrees, dtype=torch.float32).expand(images.shape[0])
    theta = torch.deg2rad(angles)
    cos, sin, zero = theta.cos(), theta.sin(), torch.zeros_like(theta)
    matrix = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = torch.nn.functional.affine_grid(matrix, list(images.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(images.float(), grid, align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)


def transformed_experiences(
    data: TrainTest,
    n: int,
    seed: int,
    kind: str,
    pad: int = 0,
    first_unpermuted: bool = False,
) -> tuple[Experience, ...]:
    """Domain-incremental experiences: all classes, each with its own pixel permutation or rotation.

    As in the DER paper (Buzzega et al., 2020): P-MNIST draws a random pixel permutation per
    experience; R-MNIST draws a rotation angle uniformly in [0, 180) degrees per experience.
    ``pad`` adds zero pixels on every side first; with ``first_unpermuted`` the first experience
    keeps the original order (its permutation is still drawn, so the others do not change), as
    the BI-R code's permuted MNIST (32×32 after padding 2).
    """
    generator = torch.Generator().manual_seed(seed)
    classes = tuple(range(data.num_classes))
    if pad:
        data = TrainTest(
            ImageSet(F.pad(data.train.x, (pad,) * 4), data.train.y),
            ImageSet(F.pad(data.test.x, (pad,) * 4), data.test.y),
            data.class_names,
        )
    experiences = []
    for t in range(n):
        if kind == "permute":
            perm = torch.randperm(
                data.train.x[0].numel() // data.train.x.shape[1], generator=generator
            )
            if t == 0 and first_unpermuted:
                perm = torch.arange(len(perm))
            train_x, test_x = permute_pixels(data.train.x, perm), permute_pixels(data.test.x, perm)
        else:
            angle = float(torch.rand(1, generator=generator)) * 180.0
            train_x, test_x = rotate(data.train.x, angle), rotate(data.test.x, angle)
        experiences.append(
            Experience(t, classes, ImageSet(train_x, data.train.y), ImageSet(test_x, data.test.y))
        )
    return tuple(experiences)


def thin_test_set(data: TrainTest, every: int | None) -> TrainTest:
    """Keep every ``every``-th test image (a cheaper evaluation; None or 1 keeps them all)."""
    if every is None or every == 1:
        return data
    kept = data.test.select(torch.arange(0, len(data.test), every))
    log.info("keeping every %d-th test image: %d of %d", every, len(kept), len(data.test))
    return replace(data, test=kept)


def classes_per_experience_for(n_experiences: int, num_classes: int, per: int | None) -> int:
    """The classes per experience that split ``num_classes`` into ``n_experiences`` equal ones.

    Raises:
        ConfigError: if ``dataset.classes_per_experience`` is set too, or the split is uneven.
    """
    if per is not None:
        raise ConfigError(
            "set dataset.n_experiences or dataset.classes_per_experience, not both: "
            "each fixes the other on a class-incremental stream"
        )
    if num_classes % n_experiences:
        raise ConfigError(
            f"dataset.n_experiences={n_experiences} cannot split {num_classes} classes evenly: "
            "choose a divisor or set dataset.classes_per_experience"
        )
    return num_classes // n_experiences
