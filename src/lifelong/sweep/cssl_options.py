"""The continual-SSL library's ``main.py`` options, translated into a lifelong ``cssl`` run.

One table (:data:`OPTIONS`) says where each option of the reference command line
(``giacomo-cgn/ocl-self-supervised``, spec ``cssl.md`` §5) goes: a request field of
:func:`lifelong.config.layered_config` (``dataset``, ``lr``, ``seed``, ...), a config field
(``method.passes``), nothing (an option whose reference behaviour lifelong always has), or a
one-line refusal naming the lifelong equivalent. ``lifelong cssl`` (the ``main.py`` flags) and
``lifelong sweep config.json`` (``run_from_config.py``) both translate through :func:`translate`.

Where an option is not given, the reference's command-line default applies when it differs from
lifelong's scenario defaults: CIFAR-100, seed 42, one epoch, stream minibatches of 32 and a
shuffled class order (:data:`REFERENCE_DEFAULTS`).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from lifelong.errors import ConfigError

Raw = dict[str, Any]


def parse_bool(text: Any) -> bool:
    """``True``/``False`` (or ``1``/``0``, ``yes``/``no``) as the reference's ``str2bool``."""
    if isinstance(text, bool):
        return text
    lowered = str(text).strip().lower()
    if lowered in ("true", "1", "yes", "y", "t"):
        return True
    if lowered in ("false", "0", "no", "n", "f"):
        return False
    raise ConfigError(f"expected True or False, got {text!r}")


@dataclass(frozen=True)
class Option:
    """One ``main.py`` option: where its value goes in lifelong, or why it has none."""

    target: str = ""
    """A request field (:data:`lifelong.config.REQUEST_KEYS`) or a dotted config field;
    ``""``: accepted, sets nothing (lifelong always behaves so)."""
    parse: Callable[[Any], Any] = str
    """Turns the command-line text (or a JSON value) into the value."""
    values: Mapping[Any, Any] | None = None
    """Reference value → lifelong value (``None``: sets nothing); other values pass unchanged."""
    only: tuple[Any, ...] = ()
    """When not empty, the only values accepted; any other one is refused with ``refusal``."""
    refusal: str = ""
    """Why the option has no meaning in lifelong, naming the equivalent (refused when given)."""
    help: str = ""

    @property
    def is_flag(self) -> bool:
        """A boolean option (``--x`` alone means ``--x True``)."""
        return self.parse is parse_bool


def _refused(reason: str) -> Option:
    return Option(refusal=reason, help=f"refused: {reason}")


def _field(target: str, parse: Callable[[Any], Any] = str, **values: Any) -> Option:
    return Option(target, parse, values or None, help=f"→ {target}")


def _probe(kind: str) -> Option:
    return Option("method.probe", parse_bool, {True: kind, False: None}, help=f"→ probe {kind}")


def _always(value: Any, behaviour: str) -> Option:
    parse = parse_bool if isinstance(value, bool) else type(value)
    reason = f"lifelong always {behaviour}"
    return Option("", parse, only=(value,), refusal=reason, help=f"accepted: {reason}")


DATASETS = {
    "cifar100": "seq-cifar100",
    "cifar10": "seq-cifar10",
    "imagenet100": "seq-imagenet100",
    "tinyimagenet": "seq-tinyimg",
    "mnist": "seq-mnist",
    "fmnist": "seq-fmnist",
}
"""Reference dataset names → lifelong scenarios (a lifelong scenario name is accepted too)."""

CLASSES = {"seq-cifar100": 100, "seq-cifar10": 10, "seq-imagenet100": 100, "seq-tinyimg": 200}
CLASSES |= {"seq-mnist": 10, "seq-fmnist": 10, "seq-digits": 10}
"""Classes of the class-incremental scenarios ``--num-exps`` splits."""

NO_PROBE_SPLIT = "the probe is refitted after every experience on the data seen so far"
OPTIONS: dict[str, Option] = {
    "seed": _field("seed", int),
    "dataset_seed": _refused("the class order is drawn from --seed (dataset.shuffle_classes)"),
    "dataset": _field("dataset", str, **DATASETS),
    "data_path": _field("data_root"),
    "num_exps": Option("dataset.classes_per_experience", int, help="→ classes / num-exps"),
    "model": _field("method.ssl_model", str, emp="emp_ssl"),
    "strategy": _field("method.strategy", str, no_strategy="none", replay="er"),
    "encoder": _field("backbone"),
    "optim": _always("sgd", "trains cssl with SGD (no Adam, no LARS)"),
    "lr": _field("lr", float),
    "optim_momentum": _field("method.momentum", float),
    "weight_decay": _field("method.weight_decay", float),
    "lars_eta": _refused("cssl trains with SGD, there is no LARS (drop --lars-eta)"),
    "epochs": _field("epochs", int),
    "mb_passes": _field("method.passes", int),
    "tr_mb_size": _field("batch_size", int),
    "online_transforms": _always(True, "augments on the device, per sample"),
    "transforms_type": _always("common", "uses the common augmentations"),
    "eval_mb_size": _field("train.eval_batch_size", int),
    "probing_rr": _probe("ridge"),
    "probing_knn": _probe("knn"),
    "probing_torch": _probe("linear"),
    "knn_k": _field("method.knn_k", int),
    "probing_separate": Option("", parse_bool, help=f"accepted: {NO_PROBE_SPLIT}"),
    "probing_joint": Option("", parse_bool, help=f"accepted: {NO_PROBE_SPLIT}"),
    "probing_upto": Option("", parse_bool, help=f"accepted: {NO_PROBE_SPLIT}"),
    "probing_all_exp": Option("", parse_bool, help=f"accepted: {NO_PROBE_SPLIT}"),
    "probing_val_ratio": _field("dataset.validation", float),
    "use_probing_tr_ratios": _refused("no probe-data ratios; set method.probe_per_class"),
    "buffer_type": _field("method.buffer"),
    "mem_size": _field("buffer_size", int),
    "buffer_size": _field("buffer_size", int),
    "repl_mb_size": _field("method.replay_batch_size", int),
    "omega": _field("method.omega", float),
    "momentum_ema": _field("method.ema_momentum", float),
    "align_criterion": _field("method.align_criterion"),
    "use_aligner": _field("method.use_aligner", parse_bool),
    "align_after_proj": _always(True, "aligns the projections"),
    "aligner_dim": _field("method.aligner_dim", int),
    "features_buffer_ema": _field("method.feature_ema", float),
    "alpha_lump": _field("method.lump_alpha", float),
    "fifo_buffer_ratio": _refused("the arp_hybrid strategy is not in lifelong (`lifelong list`)"),
    "arp_hybrid_fifo_mb_ratio": _refused("the arp_hybrid strategy is not in lifelong"),
    "dim_proj": _field("method.ssl_dim_proj", int),
    "dim_pred": _field("method.ssl_dim_pred", int),
    "num_views": _field("method.ssl_num_views", int),
    "lambd": _field("method.ssl_lambd", float),
    "byol_momentum": _field("method.ssl_momentum", float),
    "return_momentum_encoder": _field("method.ssl_eval_momentum_encoder", parse_bool),
    "emp_tcr_param": _field("method.ssl_lambda_tcr", float),
    "emp_tcr_eps": _field("method.ssl_eps", float),
    "emp_patch_sim": _field("method.ssl_lambda_inv", float),
    "mae_mask_ratio": _field("method.ssl_mask_ratio", float),
    "mae_decoder_layer": _field("method.ssl_decoder_depth", int),
    "mae_decoder_head": _field("method.ssl_decoder_heads", int),
    "mae_emb_dim": _field("method.ssl_decoder_dim", int),
    "mae_patch_size": _field("backbone.patch_size", int),
    "vit_encoder_layer": _field("backbone.depth", int),
    "vit_encoder_head": _field("backbone.heads", int),
    "vit_avg_pooling": _field("backbone.avg_pool", parse_bool),
    "moco_momentum": _refused("no MoCo model (`lifelong list ssl_models`)"),
    "moco_queue_size": _refused("no MoCo model (`lifelong list ssl_models`)"),
    "moco_temp": _refused("no MoCo model (`lifelong list ssl_models`)"),
    "simclr_temp": _refused("no SimCLR model (`lifelong list ssl_models`)"),
    "scale_dim_features": _refused("the scale strategy is not in lifelong"),
    "scale_distill_power": _refused("the scale strategy is not in lifelong"),
    "iid": _refused("no i.i.d. baseline for cssl yet (train on one experience: --num-exps 1)"),
    "no_train": Option("method.train_encoder", parse_bool, {True: False, False: None}),
    "save_folder": _refused("name the run directory with --run-dir DIR"),
    "name": _refused("name the run directory with --run-dir DIR"),
    "save_model": _refused("a run always saves its checkpoint in the run directory"),
    "device": _field("device"),
}
"""Every ``main.py`` option (underscore spelling) and where it goes."""

REFERENCE_DEFAULTS: Raw = {"dataset": "cifar100", "seed": 42, "epochs": 1, "tr_mb_size": 32}
"""The reference's defaults where lifelong's (scenario) defaults differ."""


@dataclass(frozen=True)
class Translation:
    """The request fields and overrides of :func:`lifelong.config.layered_config`."""

    request: Raw
    overrides: tuple[tuple[str, Any], ...]

    def as_fields(self) -> Raw:
        """Every value by its dotted config field (``dataset`` → ``dataset.name``)."""
        from lifelong.config import REQUEST_KEYS  # the schema loads only when a run is resolved

        fields = {REQUEST_KEYS[name]: value for name, value in self.request.items()}
        return {**fields, **dict(self.overrides)}


def flag(name: str) -> str:
    """``mb_passes`` → ``--mb-passes``."""
    return "--" + name.replace("_", "-")


def option(name: str) -> Option:
    """The table entry of ``name`` (either spelling); unknown names name the closest one."""
    key = name.replace("-", "_")
    if key not in OPTIONS:
        close = difflib.get_close_matches(key, OPTIONS, n=1, cutoff=0.7)
        hint = f": did you mean {flag(close[0])}?" if close else ""
        raise ConfigError(f"{flag(key)} is not an option of the continual-SSL main.py{hint}")
    return OPTIONS[key]


def translate_value(name: str, value: Any) -> tuple[str, Any]:
    """``(target, value)`` of one option; target ``""`` or value None: it sets nothing.

    Raises:
        ConfigError: for a refused option or value, naming the lifelong equivalent.
    """
    entry = option(name)
    where = flag(name.replace("-", "_"))
    if entry.refusal and not entry.only:
        raise ConfigError(f"{where} has no equivalent in lifelong: {entry.refusal}")
    try:
        parsed = entry.parse(value) if isinstance(value, str) or entry.is_flag else value
    except (ConfigError, ValueError) as err:
        raise ConfigError(f"{where}: cannot read {value!r} ({err})") from err
    if entry.only and parsed not in entry.only:
        raise ConfigError(f"{where} {value}: {entry.refusal}; only {entry.only[0]} is accepted")
    if entry.values is None or not isinstance(parsed, Hashable):
        return entry.target, parsed
    return entry.target, entry.values.get(parsed, parsed)


def translate(options: Mapping[str, Any]) -> Translation:
    """The lifelong request and overrides of ``main.py`` options (name → value).

    Args:
        options: Option names (``mb_passes`` or ``mb-passes``) and their values (command-line
            text or JSON values); the reference's defaults fill the ones not given.

    Raises:
        ConfigError: one line, for an unknown or refused option, a refused value, two options
            that set one field differently, or ``--num-exps`` that does not divide the classes.
    """
    given = {name.replace("-", "_"): value for name, value in options.items()}
    chosen: dict[str, tuple[str, Any]] = {}  # target → (option, value)
    for name, value in {**REFERENCE_DEFAULTS, **given}.items():
        target, translated = translate_value(name, value)
        if not target or translated is None:
            continue
        if target in chosen and chosen[target][1] != translated:
            raise ConfigError(
                f"{flag(chosen[target][0])} and {flag(name)} both set {target}: pass only one"
            )
        chosen[target] = (name, translated)
    values = {target: value for target, (_name, value) in chosen.items()}
    if "dataset.classes_per_experience" in values:
        values["dataset.classes_per_experience"] = _classes_per_experience(
            str(values["dataset"]), int(values["dataset.classes_per_experience"])
        )
    values.setdefault("dataset.shuffle_classes", True)
    from lifelong.config import REQUEST_KEYS

    request = {k: v for k, v in values.items() if k in REQUEST_KEYS}
    overrides = tuple((k, v) for k, v in values.items() if k not in REQUEST_KEYS)
    return Translation(request, overrides)


def _classes_per_experience(dataset: str, experiences: int) -> int:
    classes = CLASSES.get(dataset)
    if classes is None:
        raise ConfigError(
            f"--num-exps needs a class-incremental dataset ({', '.join(DATASETS)}); "
            f"for {dataset} set dataset.classes_per_experience with --set"
        )
    if experiences < 1 or classes % experiences:
        raise ConfigError(
            f"--num-exps {experiences} does not split the {classes} classes of {dataset} evenly"
        )
    return classes // experiences
