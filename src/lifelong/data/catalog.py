"""The registered scenarios (``lifelong list datasets``) and their paper defaults."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from lifelong.data import mnist
from lifelong.data.core50 import core50_scenario
from lifelong.data.nic import nic_scenario
from lifelong.data.scenarios import (
    SCENARIOS,
    DatasetConfig,
    Scenario,
    class_order,
    classes_per_experience_for,
    hold_out_validation,
    keep_classes,
    split_as_domains,
    split_by_classes,
    thin_test_set,
    transformed_experiences,
    with_validation,
)
from lifelong.data.stream import Stream
from lifelong.data.tensors import TrainTest
from lifelong.data.transforms import ImageTransform
from lifelong.errors import ConfigError, DataError

log = logging.getLogger(__name__)

Loader = Callable[[str, bool], TrainTest]

GREY = ImageTransform(mean=(0.0,), std=(1.0,))
"""MNIST-like data: scaled to [0, 1], no augmentation (as in the DER paper)."""
CIFAR10 = ImageTransform((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2615), 4, True)
CIFAR100 = ImageTransform((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), 4, True)
TINYIMG = ImageTransform((0.4802, 0.4480, 0.3975), (0.2770, 0.2691, 0.2821), 4, True)
IMAGENET = ImageTransform((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 8, True)

MNIST_DEFAULTS = {"train": {"epochs": 1, "batch_size": 10}, "backbone": {"name": "mlp"}}
DOMAIN_DEFAULTS = {"train": {"epochs": 1, "batch_size": 128}, "backbone": {"name": "mlp"}}
RESNET_DEFAULTS = {"train": {"epochs": 50, "batch_size": 32}, "backbone": {"name": "resnet18"}}
CORE50_DEFAULTS = {"train": {"epochs": 4, "batch_size": 128}, "backbone": {"name": "mobilenet_v1"}}
CLASS_IL_READS = frozenset(
    {"shuffle_classes", "classes_per_experience", "n_experiences", "test_subsample"}
)
"""The optional fields every class-incremental ``seq-*`` scenario reads (see ``Scenario``)."""
GCIL_READS = frozenset({"n_experiences", "gcil_samples_per_phase"})
NIC_READS = frozenset({"nic_first_classes", "nic_chunk", "run"})
CORE50_SCENARIOS = {
    "ni": "NI: 8 batches of new sessions of all 50 objects",
    "nc": "NC: 9 batches of new objects",
    "nic": "NIC: 79 batches of new sessions of new and seen objects",
    "nicv2_79": "NICv2-79: a first batch of 10 objects, then 78 batches of new and seen objects",
    "nicv2_196": "NICv2-196: a first batch of 10 objects, then 195 batches of new and seen objects",
    "nicv2_391": "NICv2-391: a first batch of 10 objects, then 390 one-object sessions (AR1*)",
}


def _load_cifar10(root: str, download: bool) -> TrainTest:
    from lifelong.data.cifar import load_cifar10

    return load_cifar10(root, download)


def _load_cifar100(root: str, download: bool) -> TrainTest:
    from lifelong.data.cifar import load_cifar100

    return load_cifar100(root, download)


def tinyimg(cfg: DatasetConfig, seed: int) -> Stream:
    """Tiny-ImageNet (official layout, any subset of classes), 10 experiences.

    ``dataset.image_size`` other than 64 resizes the images once, when decoded.
    """
    from lifelong.data.tinyimagenet import load_tiny_imagenet

    def loader(root: str, download: bool) -> TrainTest:
        return load_tiny_imagenet(root, download, cfg.image_size or 64)

    return class_incremental("seq-tinyimg", loader, TINYIMG, 20, 10)(cfg, seed)


def imagenet100(cfg: DatasetConfig, seed: int) -> Stream:
    """ImageNet-100 from an ImageFolder layout (``train/<class>/``, ``val/<class>/``), 10 x 10.

    Images are resized (shorter side) and centre-cropped to ``dataset.image_size`` (224 by
    default) once, when loaded. Training augmentation is a padded random crop plus flip on those
    stored images; the reference instead resizes to 256 and random-crops 224 per sample. At 224
    the full 100 classes need about 19 GB of memory: pass a smaller ``dataset.image_size`` on
    small machines.
    """
    from lifelong.data.imagefolder import load_image_folder

    if cfg.download:
        raise ConfigError(
            "ImageNet-100 cannot be downloaded automatically: build the train/<class> and "
            "val/<class> folders from ImageNet and pass --data-root"
        )
    size = cfg.image_size or 224

    def loader(root: str, download: bool) -> TrainTest:
        return load_image_folder(root, size)

    return class_incremental("seq-imagenet100", loader, IMAGENET, 10, 10)(cfg, seed)


def mnist360(cfg: DatasetConfig, seed: int) -> Stream:
    """MNIST-360: one ordered, rotating stream of digits 0-8 (see ``lifelong.data.mnist360``)."""
    from lifelong.data.mnist360 import CLASSES, mnist360_experience

    data = mnist.load_mnist(cfg.root, cfg.download)
    experience = mnist360_experience(data, seed)
    names = data.class_names[:CLASSES]
    return Stream("mnist-360", (experience,), CLASSES, "general", GREY, names, ordered=True)


def gcil_cifar100(weights: str) -> Callable[[DatasetConfig, int], Stream]:
    """GCIL on CIFAR-100: 20 phases of 1000 samples, uniform or long-tailed class weights."""

    def build(cfg: DatasetConfig, seed: int) -> Stream:
        from lifelong.data import gcil

        data = _load_cifar100(cfg.root, cfg.download)
        experiences, data = gcil.gcil_experiences(
            data,
            "unif" if weights == "unif" else "longtail",
            phases=cfg.n_experiences or gcil.DEFAULT_PHASES,
            samples_per_phase=cfg.gcil_samples_per_phase or gcil.DEFAULT_SAMPLES_PER_PHASE,
        )
        name = "gcil-cifar100" + ("" if weights == "unif" else "-longtail")
        return Stream(name, experiences, data.num_classes, "gcil", CIFAR10, data.class_names)

    return build


def _nic_fmnist(cfg: DatasetConfig) -> TrainTest:
    return keep_classes(mnist.load_fmnist(cfg.root, cfg.download), cfg.classes)


def _nic_tinyimg(cfg: DatasetConfig) -> TrainTest:
    from lifelong.data.tinyimagenet import load_tiny_imagenet

    return keep_classes(
        load_tiny_imagenet(cfg.root, cfg.download, cfg.image_size or 64), cfg.classes
    )


def class_incremental(
    name: str,
    loader: Loader,
    transform: ImageTransform,
    per_experience: int,
    n_target: int,
    resize: bool = False,
) -> Callable[[DatasetConfig, int], Stream]:
    """Build a class-incremental scenario of ``per_experience`` classes per experience.

    When the data hold fewer classes than the full dataset (a subset of Tiny-ImageNet, say), the
    default keeps ``n_target`` experiences and shrinks the classes per experience, and logs it.
    With ``resize`` the loaded images are resized once to ``dataset.image_size`` (CIFAR).
    """

    def build(cfg: DatasetConfig, seed: int) -> Stream:
        data = keep_classes(loader(cfg.root, cfg.download), cfg.classes)
        if resize:
            data = data.resized(cfg.image_size)
        per = cfg.classes_per_experience
        if cfg.n_experiences is not None:
            per = classes_per_experience_for(cfg.n_experiences, data.num_classes, per)
        if per is None:
            per = per_experience
            if data.num_classes < per * n_target:
                per = max(1, data.num_classes // n_target)
                log.warning(
                    "%s: only %d classes present; using %d experiences of %d classes",
                    name, data.num_classes, data.num_classes // per, per,
                )  # fmt: skip
        order = class_order(data.num_classes, cfg.shuffle_classes, seed)
        data, val = hold_out_validation(
            thin_test_set(data, cfg.test_subsample), cfg.validation, seed
        )
        experiences = with_validation(split_by_classes(data, per, order), val)
        return Stream(name, experiences, data.num_classes, "class-il", transform, data.class_names)

    return build


def split_mnist_domain(cfg: DatasetConfig, seed: int) -> Stream:
    """Split MNIST, domain-incremental: 5 pairs of digits, label = position in the pair."""
    data = mnist.load_mnist(cfg.root, cfg.download)
    per = cfg.classes_per_experience
    if cfg.n_experiences is not None:
        per = classes_per_experience_for(cfg.n_experiences, data.num_classes, per)
    per = per or 2
    order = class_order(data.num_classes, cfg.shuffle_classes, seed)
    experiences = split_as_domains(data, per, order)
    names = tuple(f"digit {k + 1} of the experience" for k in range(per))
    return Stream("split-mnist-domain", experiences, per, "domain-il", GREY, names)


def domain_incremental(
    name: str, kind: str, n_default: int
) -> Callable[[DatasetConfig, int], Stream]:
    """Build a permuted or rotated MNIST stream of ``n_default`` experiences."""

    def build(cfg: DatasetConfig, seed: int) -> Stream:
        data = mnist.load_mnist(cfg.root, cfg.download)
        n = cfg.n_experiences or n_default
        experiences = transformed_experiences(data, n, seed, kind, cfg.pad, cfg.first_unpermuted)
        return Stream(name, experiences, data.num_classes, "domain-il", GREY, data.class_names)

    return build


def _register_all() -> None:
    """Register every scenario of this module (called once, at import)."""
    entries = {
        "seq-digits": Scenario(
            class_incremental("seq-digits", mnist.load_digits, GREY, 2, 5),
            "scikit-learn's bundled 8x8 digits, 5 experiences x 2 classes (offline default)",
            {"train": {"epochs": 5, "batch_size": 16}, "backbone": {"name": "mlp"}},
            reads=CLASS_IL_READS,
        ),
        "seq-mnist": Scenario(
            class_incremental("seq-mnist", mnist.load_mnist, GREY, 2, 5),
            "MNIST, 5 experiences x 2 classes (DER paper)",
            MNIST_DEFAULTS,
            reads=CLASS_IL_READS,
        ),
        "seq-fmnist": Scenario(
            class_incremental("seq-fmnist", mnist.load_fmnist, GREY, 2, 5),
            "Fashion-MNIST, 5 experiences x 2 classes",
            MNIST_DEFAULTS,
            reads=CLASS_IL_READS,
        ),
        "split-mnist-domain": Scenario(
            split_mnist_domain,
            "MNIST, 5 experiences x 2 digits sharing 2 output units (domain-IL split MNIST)",
            MNIST_DEFAULTS,
            reads=frozenset({"classes_per_experience", "n_experiences", "shuffle_classes"}),
            setting="domain-il",
        ),
        "perm-mnist": Scenario(
            domain_incremental("perm-mnist", "permute", 20),
            "Permuted MNIST, 20 domain-incremental experiences (DER paper)",
            DOMAIN_DEFAULTS,
            reads=frozenset({"n_experiences", "pad", "first_unpermuted"}),
            setting="domain-il",
        ),
        "rot-mnist": Scenario(
            domain_incremental("rot-mnist", "rotate", 20),
            "Rotated MNIST, 20 experiences, angle uniform in [0, 180) (DER paper)",
            DOMAIN_DEFAULTS,
            reads=frozenset({"n_experiences", "pad"}),
            setting="domain-il",
        ),
        "mnist-360": Scenario(
            mnist360,
            "MNIST-360: digits 0-8 in rotating pairs, one ordered online pass (DER paper)",
            {"train": {"epochs": 1, "batch_size": 16}, "backbone": {"name": "mlp"}},
            reads=frozenset(),
            setting="general",
        ),
        "seq-cifar10": Scenario(
            class_incremental("seq-cifar10", _load_cifar10, CIFAR10, 2, 5, resize=True),
            "CIFAR-10, 5 experiences x 2 classes (DER paper)",
            RESNET_DEFAULTS,
            reads=CLASS_IL_READS | {"image_size"},
        ),
        "seq-cifar100": Scenario(
            class_incremental("seq-cifar100", _load_cifar100, CIFAR100, 10, 10, resize=True),
            "CIFAR-100, 10 experiences x 10 classes (classes_per_experience=20 for SARL's 5 x 20)",
            RESNET_DEFAULTS,
            reads=CLASS_IL_READS | {"image_size"},
        ),
        "gcil-cifar100": Scenario(
            gcil_cifar100("unif"),
            "GCIL CIFAR-100: 20 phases x 1000 samples, random classes, uniform weights (CLS-ER)",
            RESNET_DEFAULTS,
            reads=GCIL_READS,
            setting="gcil",
        ),
        "gcil-cifar100-longtail": Scenario(
            gcil_cifar100("longtail"),
            "GCIL CIFAR-100 with long-tailed class weights 0.984^class (CLS-ER, SARL)",
            RESNET_DEFAULTS,
            reads=GCIL_READS,
            setting="gcil",
        ),
        "seq-imagenet100": Scenario(
            imagenet100,
            "ImageNet-100 (ImageFolder layout), 10 experiences x 10 classes, resized to image_size",
            {"train": {"epochs": 50, "batch_size": 32}, "backbone": {"name": "resnet18"}},
            reads=CLASS_IL_READS | {"image_size"},
        ),
        "seq-tinyimg": Scenario(
            tinyimg,
            "Tiny-ImageNet, 10 experiences x 20 classes (any subset of classes: 10 experiences)",
            {"train": {"epochs": 100, "batch_size": 32}, "backbone": {"name": "resnet18"}},
            reads=CLASS_IL_READS | {"image_size"},
        ),
        "nic-fmnist": Scenario(
            nic_scenario("nic-fmnist", _nic_fmnist, GREY, 2, 600),
            "Fashion-MNIST as NICv2: a first experience of 2 classes x 600 images, then 98 "
            "one-class chunks of ~600 in a seeded order (dataset.run; nic_first_classes, "
            "nic_chunk), one shared test set",
            {"train": {"epochs": 4, "batch_size": 32}, "backbone": {"name": "mlp"}},
            reads=NIC_READS,
            setting="gcil",
        ),
        "nic-tinyimg": Scenario(
            nic_scenario("nic-tinyimg", _nic_tinyimg, TINYIMG, 5, 125),
            "Tiny-ImageNet as NICv2: a first experience of 5 classes x 125 images, then one-class "
            "chunks of ~125 in a seeded order (76 experiences on the 20-class subset, 796 on the "
            "full set; dataset.run, nic_first_classes, nic_chunk), one shared test set",
            {"train": {"epochs": 4, "batch_size": 32}, "backbone": {"name": "resnet18"}},
            reads=NIC_READS | {"image_size"},
            setting="gcil",
        ),
    }
    for scenario_key, what in CORE50_SCENARIOS.items():
        entries["core50-" + scenario_key.replace("_", "-")] = Scenario(
            core50_scenario(scenario_key),
            f"CORe50 {what}, one shared test set of all 50 classes (every "
            "dataset.test_subsample-th image of sessions 3, 7, 10; dataset.run 0-9)",
            CORE50_DEFAULTS,
            frozenset({"run", "image_size", "test_subsample"}),
            "gcil",
        )
    for name, scenario in entries.items():
        SCENARIOS.add(name, scenario)


_register_all()


def build_stream(cfg: DatasetConfig, seed: int) -> Stream:
    """Build the stream named by ``cfg.name`` (raises ConfigError for unknown names).

    With ``dataset.augment`` off, the stream keeps its normalisation and drops its training
    augmentation.
    """
    scenario = SCENARIOS.get(cfg.name)
    scenario.check_fields(cfg)
    stream = scenario.build(cfg, seed)
    if stream.setting != scenario.setting:  # the registration is wrong: a bug, not a user error
        raise RuntimeError(
            f"{cfg.name} built a {stream.setting} stream, registered as {scenario.setting}"
        )
    if cfg.validation > 0 and not stream.has_validation:
        raise ConfigError(
            f"dataset.validation is not supported by {cfg.name}: only the class-incremental "
            "seq-* scenarios hold out validation images"
        )
    if cfg.classes is not None and stream.num_classes != len(cfg.classes):
        raise ConfigError(
            f"dataset.classes is not supported by {cfg.name}: only the class-incremental seq-* "
            "and the nic-fmnist / nic-tinyimg scenarios keep a subset of classes"
        )
    _check_test_sets(stream, cfg)
    if cfg.augment or not stream.transform.augments:
        return stream
    plain = dataclasses.replace(stream.transform, crop_padding=0, hflip=False)
    return dataclasses.replace(stream, transform=plain)


def _check_test_sets(stream: Stream, cfg: DatasetConfig) -> None:
    """Refuse experiences without a test image: they would score 0 % in every metric."""
    empty = [experience.id for experience in stream if len(experience.test) == 0]
    if not empty:
        return
    cause = (
        f"dataset.test_subsample={cfg.test_subsample} keeps too few test images"
        if cfg.test_subsample not in (None, 1)
        else "the data hold no test image of their classes"
    )
    raise DataError(
        f"{cfg.name}: experience(s) {', '.join(map(str, empty))} of {len(stream)} have an empty "
        f"test set ({cause}); an empty test set cannot be scored"
    )
