"""``lifelong bir``: the BI-R code's ``main_cl.py`` flags, translated to a ``lifelong run``.

Brain-Inspired Replay's ``main_cl.py`` (van de Ven et al. 2020) and its feature-exaggeration
fork take command lines such as ``--experiment=CIFAR100 --scenario=class --replay=generative
--brain-inspired --si --c=1e8 --dg-prop=0.6 --pdf --repulsion``. ``lifelong bir`` reads them
(``--c=1e8`` and ``--c 1e8`` alike) and runs the equivalent ``lifelong run`` through the same
command, which it also logs:

* the method from ``--replay`` / ``--brain-inspired`` / ``--si`` (:func:`method_of`);
* the scenario from ``--experiment`` / ``--scenario`` (:data:`SCENARIOS_OF`) and ``--tasks``;
* every other flag from :data:`FIELD_FLAGS` (flag → lifelong flag or config field, for the
  methods it has a meaning for) or :data:`REFUSED` (exit 2 naming the lifelong equivalent).

The paper preset of the method and scenario applies as in ``lifelong run`` (the fork's baseline
is ``seq-cifar100/bir_si``); the flags given win over it.
"""

from __future__ import annotations

import argparse
import logging
import shlex
from dataclasses import dataclass
from typing import Any

from lifelong.errors import ConfigError

log = logging.getLogger(__name__)

GENERATIVE = ("gr", "bir", "bir_si")
BRAIN_INSPIRED = ("bir", "bir_si")
ALL_METHODS = ("finetune", "joint", "si", *GENERATIVE)


@dataclass(frozen=True)
class FieldFlag:
    """A ``main_cl.py`` flag with a lifelong meaning.

    Attributes:
        value: The flag's value type (``bool``: a switch).
        targets: Method → where the value goes: a ``lifelong run`` flag (``--iters``) or a
            config key set with ``--set`` (``method.dg_prop``). Other methods refuse the flag.
    """

    value: type
    targets: dict[str, str]


def _to(key: str, methods: tuple[str, ...]) -> dict[str, str]:
    return dict.fromkeys(methods, key)


EXAGGERATION_FLAGS: dict[str, type] = {
    "repulsion": bool, "lamda-rep": float, "kl-js": str, "use-rep-f": bool, "rep-f": float,
    "recon-repulsion": bool, "recon-attraction": bool, "recon-rep-aver": bool,
    "lamda-recon-rep": float, "lamda-recon-atr": float, "contrastive": bool, "c-scores": bool,
    "c-hard": bool, "c-temp": float, "c-lr": float, "c-drop": float, "not-hidden": bool,
}  # fmt: skip
"""The fork's feature-exaggeration flags (same-named fields of bir and bir_si) and types."""

FIELD_FLAGS: dict[str, FieldFlag] = {
    "iters": FieldFlag(int, _to("--iters", ALL_METHODS)),
    "batch": FieldFlag(int, _to("--batch-size", ALL_METHODS)),
    "lr": FieldFlag(float, _to("--lr", ALL_METHODS)),
    "seed": FieldFlag(int, _to("--seed", ALL_METHODS)),
    "data-dir": FieldFlag(str, _to("--data-root", ALL_METHODS)),
    "augment": FieldFlag(bool, _to("dataset.augment", ALL_METHODS)),
    "c": FieldFlag(float, {"si": "method.c", "bir_si": "method.si_c"}),
    "epsilon": FieldFlag(float, {"si": "method.epsilon", "bir_si": "method.si_epsilon"}),
    "batch-replay": FieldFlag(int, _to("method.batch_replay", GENERATIVE)),
    "distill": FieldFlag(bool, _to("method.distill", GENERATIVE)),
    "temp": FieldFlag(float, _to("method.temperature", GENERATIVE)),
    "fc-units": FieldFlag(int, _to("method.fc_units", GENERATIVE)),
    "h-dim": FieldFlag(int, _to("method.h_dim", GENERATIVE)),
    "z-dim": FieldFlag(int, _to("method.z_dim", GENERATIVE)),
    "fc-layers": FieldFlag(int, _to("method.fc_layers", GENERATIVE)),
    "dg-prop": FieldFlag(float, _to("method.dg_prop", BRAIN_INSPIRED)),
    "depth": FieldFlag(int, _to("method.conv_depth", BRAIN_INSPIRED)),
    "channels": FieldFlag(int, _to("method.conv_channels", BRAIN_INSPIRED)),
    **{
        flag: FieldFlag(kind, _to(f"method.{flag.replace('-', '_')}", BRAIN_INSPIRED))
        for flag, kind in EXAGGERATION_FLAGS.items()
    },
}
"""``main_cl.py`` flag → its lifelong meaning (the fork's feature-exaggeration flags included)."""

_COMPONENTS = (
    "lifelong's bir has every --brain-inspired component on; switch one off with --set "
    "(distill=false, per_class_prior=false, dg_prop=0)"
)
_NO_EWC = "lifelong has no EWC: use --si (Synaptic Intelligence)"
_OUTPUTS = "everything a run writes goes to its run directory: --run-dir DIR"
REFUSED: dict[str, str] = {
    "ewc": _NO_EWC,
    "lambda": _NO_EWC,
    "online": _NO_EWC,
    "pre-convE": "pre-train the conv layers with `lifelong pretrain --out FILE` and add "
    "--set pretrained_conv=FILE",
    "convE-ltag": "load pre-trained conv layers with --set pretrained_conv=FILE "
    "(from `lifelong pretrain --out FILE`)",
    "freeze-convE": "bir's conv layers are always frozen",
    "feedback": _COMPONENTS,
    "prior": _COMPONENTS,
    "per-class": _COMPONENTS,
    "dg-gates": _COMPONENTS,
    "hidden": _COMPONENTS,
    "no-norm": "lifelong always normalizes the inputs",
    "recon-loss": "lifelong uses the BI-R code's default of each experiment",
    "n-rep": "lifelong repels from the top runner-up class only (the fork's default --n-rep 1)",
    "only-last": "lifelong has no only-last baseline: compare with --replay=offline (joint)",
    "get-stamp": "print the resolved config with --explain-config",
    "results-dir": _OUTPUTS,
    "plot-dir": _OUTPUTS,
    "model-dir": _OUTPUTS,
}
"""``main_cl.py`` flags with no meaning in lifelong → the lifelong equivalent (exit 2)."""

SCENARIOS_OF: dict[tuple[str, str], str] = {
    ("CIFAR100", "class"): "seq-cifar100",
    ("CIFAR100", "task"): "seq-cifar100",
    ("splitMNIST", "class"): "seq-mnist",
    ("splitMNIST", "task"): "seq-mnist",
    ("splitMNIST", "domain"): "split-mnist-domain",
    ("permMNIST", "domain"): "perm-mnist",
}
"""``(--experiment, --scenario)`` → the lifelong scenario."""
CLASSES = {"CIFAR100": 100, "splitMNIST": 10, "permMNIST": 10}


def add_bir_parser(sub: Any) -> None:
    """Add the ``bir`` sub-command to the ``lifelong`` sub-parsers ``sub``."""
    bir = sub.add_parser(
        "bir",
        help="run with the BI-R code's main_cl.py flags (and its feature-exaggeration fork's)",
        allow_abbrev=False,
        epilog="Also: --run-dir, --set KEY=VALUE, --no-progress, --no-tensorboard, --device "
        "and --explain-config, as in `lifelong run`.",
    )
    bir.add_argument("--experiment", default="CIFAR100", choices=sorted(CLASSES))
    bir.add_argument("--scenario", default="task", choices=["task", "domain", "class"])
    bir.add_argument("--tasks", type=int, help="number of experiences")
    replays = ["none", "offline", "generative", "current"]
    bir.add_argument("--replay", default="none", choices=replays)
    bir.add_argument("--brain-inspired", action="store_true", help="BI-R (method bir)")
    bir.add_argument("--si", action="store_true", help="Synaptic Intelligence (si or bir_si)")
    bir.add_argument("--no-gpus", action="store_true", help="same as --device cpu")
    for flag, spec in FIELD_FLAGS.items():
        where = ", ".join(sorted(set(spec.targets.values())))
        if spec.value is bool:
            bir.add_argument(f"--{flag}", action="store_true", help=where)
        else:
            bir.add_argument(f"--{flag}", type=spec.value, help=where)
    bir.add_argument("--pdf", action="store_true", help="also write report.pdf")
    bir.add_argument("--visdom", action="store_true", help="live curves in a visdom server")
    bir.add_argument("--run-dir", "--run_dir", help="output folder")
    bir.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    bir.add_argument("--device", help="cpu, cuda or cuda:N")
    for switch in ("no-progress", "no-tensorboard", "explain-config"):
        bir.add_argument(f"--{switch}", action="store_true")
    refused = bir.add_argument_group(
        "reference flags lifelong refuses",
        "Each ends the command with exit 2 and one line naming what to use instead.",
    )
    for flag, hint in REFUSED.items():
        refused.add_argument(f"--{flag}", nargs="?", const=True, metavar="…", help=hint)


def _dest(flag: str) -> str:
    return flag.replace("-", "_")


def method_of(replay: str, brain_inspired: bool, si: bool) -> str:
    """The lifelong method of ``--replay``, ``--brain-inspired`` and ``--si``."""
    if brain_inspired and replay != "generative":
        raise ConfigError("--brain-inspired needs --replay=generative (as in main_cl.py)")
    if replay == "current":
        raise ConfigError(
            "--replay=current (LwF) has no lifelong method: use --replay=generative --distill"
        )
    if replay == "generative" and si and not brain_inspired:
        raise ConfigError(
            "--replay=generative --si has no lifelong method: add --brain-inspired (bir_si) "
            "or drop --si (gr)"
        )
    if replay == "generative":
        return ("bir_si" if si else "bir") if brain_inspired else "gr"
    if si and replay == "offline":
        raise ConfigError("--replay=offline trains jointly: drop --si")
    return "si" if si else {"none": "finetune", "offline": "joint"}[replay]


def scenario_argv(experiment: str, scenario: str, tasks: int | None, method: str) -> list[str]:
    """``--dataset NAME`` (and the experience count) of ``--experiment/--scenario/--tasks``.

    ``--scenario=task`` is BI-R's task-IL training (``method.task_il``); the other methods
    train class-IL and report task-IL accuracy beside it.
    """
    task_il = scenario == "task" and method in ("bir", "bir_si")
    if scenario == "task" and not task_il:
        raise ConfigError(
            f"--scenario=task (main_cl.py's default) trains task-IL only with --brain-inspired "
            f"here; {method!r} trains class-IL and reports task-IL accuracy too: pass "
            "--scenario=class"
        )
    name = SCENARIOS_OF.get((experiment, scenario))
    if name is None:
        known = ", ".join(f"--experiment={e} --scenario={s}" for e, s in SCENARIOS_OF)
        raise ConfigError(f"--experiment={experiment} --scenario={scenario}: use one of {known}")
    argv = ["--dataset", name, *(["--set", "method.task_il=true"] if task_il else [])]
    if tasks is None:
        return argv
    if experiment == "permMNIST":
        return [*argv, "--set", f"dataset.n_experiences={tasks}"]
    if tasks <= 0 or CLASSES[experiment] % tasks:
        raise ConfigError(f"--tasks={tasks} must divide the {CLASSES[experiment]} classes")
    return [*argv, "--set", f"dataset.classes_per_experience={CLASSES[experiment] // tasks}"]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def run_argv(args: argparse.Namespace) -> list[str]:
    """The ``lifelong run`` arguments equivalent to parsed ``lifelong bir`` arguments.

    Raises:
        ConfigError: for a flag with no meaning here (naming the equivalent) or one that has
            none for the method the flags select.
    """
    for flag, hint in REFUSED.items():
        if getattr(args, _dest(flag)) is not None:
            raise ConfigError(f"--{flag} has no meaning in lifelong: {hint}")
    method = method_of(args.replay, args.brain_inspired, args.si)
    scenario = scenario_argv(args.experiment, args.scenario, args.tasks, method)
    argv = ["run", "--method", method, *scenario]
    for flag, spec in FIELD_FLAGS.items():
        value = getattr(args, _dest(flag))
        if value is None or value is False:
            continue
        target = spec.targets.get(method)
        if target is None:
            raise ConfigError(
                f"--{flag} has no meaning for method {method!r} (it applies to "
                f"{', '.join(sorted(spec.targets))}): change --replay/--brain-inspired/--si"
            )
        is_flag = target.startswith("--")
        argv += [target, _text(value)] if is_flag else ["--set", f"{target}={_text(value)}"]
    device = "cpu" if args.no_gpus else args.device
    argv += ["--device", device] if device else []
    argv += ["--run-dir", args.run_dir] if args.run_dir else []
    for item in args.set:
        argv += ["--set", item]
    for switch in ("pdf", "visdom", "no_progress", "no_tensorboard", "explain_config"):
        argv += [f"--{switch.replace('_', '-')}"] if getattr(args, switch) else []
    return argv


def command_bir(args: argparse.Namespace) -> int:
    """``lifelong bir ...``: translate the flags and run them as ``lifelong run``."""
    from lifelong.cli.commands import command_run
    from lifelong.cli.parser import build_parser, parse_command

    argv = run_argv(args)
    log.info("lifelong equivalent: lifelong %s", shlex.join(argv))
    run_args = parse_command(build_parser(), argv)
    return command_run(run_args)
