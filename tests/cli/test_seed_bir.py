"""The BI-R feature-exaggeration fork's ``main_cl.py`` command lines paste into ``lifelong bir``.

Each README line is checked through ``--explain-config`` (the resolved config and the layer of
each field); the repulsion line runs on a small CIFAR-100 folder the test writes, shrunk with
main_cl.py's own ``--iters``/``--batch``/size flags.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_assertions import expect_one_line_error as assert_one_line_error
from test_cli_cifar import write_cifar100

BASELINE = (
    "--experiment=CIFAR100 --scenario=class --replay=generative --brain-inspired --si --c=1e8 "
    "--dg-prop=0.6 --pdf"
)
README = {  # the fork's README commands, after `main_cl.py`
    "baseline": BASELINE,
    "repulsion": f"{BASELINE} --repulsion",
    "recon": f"{BASELINE} --recon-repulsion --recon-attraction --recon-rep-aver",
    "not-hidden": f"{BASELINE} --not-hidden",
    "contrastive": f"{BASELINE} --contrastive --c-scores",
}
ADDED = {
    "baseline": set(),
    "repulsion": {"method.repulsion"},
    "recon": {"method.recon_repulsion", "method.recon_attraction", "method.recon_rep_aver"},
    "not-hidden": {"method.not_hidden"},
    "contrastive": {"method.contrastive", "method.c_scores"},
}
SWITCHES = set().union(*ADDED.values())
SHRINK = "--iters=2 --batch=8 --fc-units=16 --h-dim=16 --z-dim=4 --no-progress --no-tensorboard"


def explained(cli: Any, line: str) -> dict[str, tuple[str, str]]:
    """``lifelong bir LINE --explain-config`` as field → (value, layer)."""
    result = cli("bir", *shlex.split(line), "--explain-config")
    assert result.code == 0, result.err
    rows = [re.split(r"\s{2,}", row.strip()) for row in result.out.splitlines()[1:]]
    return {row[0]: (row[1], row[-1]) for row in rows}


@pytest.mark.parametrize("name", README)
def test_readme_line_resolves_to_bir_si_with_its_fields(cli, name: str) -> None:
    fields = explained(cli, README[name])
    assert fields["method.name"] == ("bir_si", "override")
    assert fields["dataset.name"][0] == "seq-cifar100"
    assert fields["method.si_c"] == ("100000000.0", "override")
    assert fields["method.dg_prop"] == ("0.6", "override")
    assert fields["train.iters"] == ("5000", "preset seq-cifar100/bir_si")
    assert fields["method.conv_depth"][0] == "5"
    for key in SWITCHES:
        assert fields[key] == (("True", "override") if key in ADDED[name] else ("False", "default"))


def test_values_with_a_space_equal_values_with_an_equals_sign(cli) -> None:
    spaced = BASELINE.replace("=", " ") + " --lamda-rep 1e-5 --kl-js kl --iters 7 --batch 3"
    joined = BASELINE + " --lamda-rep=1e-5 --kl-js=kl --iters=7 --batch=3"
    fields = explained(cli, spaced)
    assert fields == explained(cli, joined)
    assert fields["method.lamda_rep"][0] == "1e-05" and fields["method.kl_js"][0] == "kl"
    assert fields["train.iters"][0] == "7" and fields["train.batch_size"][0] == "3"


def test_repulsion_line_runs_on_a_cifar100_folder(cli, tmp_path: Path) -> None:
    data = write_cifar100(tmp_path / "data", per_class=2)
    run_dir = tmp_path / "run"
    line = f"{README['repulsion']} --data-dir={data} {SHRINK} --run-dir={run_dir}"
    result = cli("bir", *shlex.split(line))
    assert result.code == 0, result.err
    method = yaml.safe_load((run_dir / "config.yaml").read_text())["method"]
    assert method["name"] == "bir_si" and method["si_c"] == 1e8 and method["repulsion"]
    assert (method["fc_units"], method["h_dim"], method["z_dim"]) == (16, 16, 4)
    results = json.loads((run_dir / "results.json").read_text())
    assert results["completed"] and results["num_experiences"] == 10
    steps = [json.loads(s) for s in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert "repulsion" in [s for s in steps if s.get("kind") == "step"][-1]
    assert (run_dir / "report.pdf").read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize(
    ("line", "method", "dataset"),
    [
        ("--experiment=splitMNIST --scenario=class --replay=generative --brain-inspired", "bir",
         "seq-mnist"),
        ("--experiment=splitMNIST --scenario=class --replay=generative", "gr", "seq-mnist"),
        ("--experiment=splitMNIST --scenario=class --si --c=0.1", "si", "seq-mnist"),
        ("--experiment=splitMNIST --scenario=domain", "finetune", "split-mnist-domain"),
        ("--experiment=permMNIST --scenario=domain --replay=offline", "joint", "perm-mnist"),
    ],
)  # fmt: skip
def test_method_and_scenario_follow_replay_and_experiment(
    cli, line: str, method: str, dataset: str
) -> None:
    fields = explained(cli, line)
    assert fields["method.name"][0] == method and fields["dataset.name"][0] == dataset


def test_si_strength_goes_to_each_methods_own_field(cli) -> None:
    assert explained(cli, "--scenario=class --experiment=splitMNIST --si --c=3")["method.c"] == (
        "3.0",
        "override",
    )
    bir_si = explained(cli, "--scenario=class --replay=generative --brain-inspired --si --c=3")
    assert bir_si["method.si_c"] == ("3.0", "override")


@pytest.mark.parametrize(
    ("line", "key", "value"),
    [
        ("--experiment=CIFAR100 --scenario=class --tasks=20", "dataset.classes_per_experience",
         "5"),
        ("--experiment=permMNIST --scenario=domain --tasks=3", "dataset.n_experiences", "3"),
        ("--experiment=splitMNIST --scenario=class --no-gpus", "device", "cpu"),
        ("--experiment=splitMNIST --scenario=class --augment", "dataset.augment", "True"),
        ("--experiment=splitMNIST --scenario=class --seed=12", "seed", "12"),
        ("--experiment=splitMNIST --scenario=task --replay=generative --brain-inspired",
         "method.task_il", "True"),
    ],
)  # fmt: skip
def test_general_flags_map_to_their_fields(cli, line: str, key: str, value: str) -> None:
    assert explained(cli, line)[key] == (value, "override")


@pytest.mark.parametrize(
    ("line", "needles"),
    [
        ("--experiment=splitMNIST --replay=generative", ["--scenario=task", "--brain-inspired",
         "--scenario=class"]),
        (f"{BASELINE} --ewc", ["--ewc", "--si"]),
        (f"{BASELINE} --pre-convE", ["--pre-convE", "lifelong pretrain", "pretrained_conv"]),
        (f"{BASELINE} --convE-ltag=e100", ["--convE-ltag", "pretrained_conv"]),
        (f"{BASELINE} --n-rep 2", ["--n-rep"]),
        ("--scenario=class --replay=generative --brain-inspired --c=1e8", ["--c", "bir_si"]),
        ("--scenario=class --replay=generative --dg-prop=0.6", ["--dg-prop", "'gr'"]),
        ("--scenario=class --brain-inspired", ["--brain-inspired", "--replay=generative"]),
        ("--scenario=class --replay=current --distill", ["--replay=current", "LwF"]),
        ("--scenario=class --replay=generative --si", ["--si", "--brain-inspired"]),
        ("--experiment=splitMNIST --scenario=class --tasks=3", ["--tasks=3", "10 classes"]),
        ("--experiment=permMNIST --scenario=class", ["permMNIST", "--scenario=domain"]),
        (f"{BASELINE} --results-dir=store", ["--results-dir", "--run-dir"]),
        (f"{BASELINE} --no-such-flag", ["unrecognized arguments: --no-such-flag"]),
        (f"{BASELINE} --c=lots", ["--c", "lots"]),
    ],
)  # fmt: skip
def test_meaningless_or_bad_flags_exit_2_with_one_line(
    cli, tmp_path: Path, line: str, needles: list[str]
) -> None:
    run_dir = tmp_path / "run"
    result = cli("bir", *shlex.split(line), "--run-dir", run_dir)
    assert_one_line_error(result, *needles)
    assert not run_dir.exists()


def test_help_lists_the_refused_reference_flags_apart(cli) -> None:
    from lifelong.cli.bir import REFUSED

    result = cli("bir", "--help")
    assert result.code == 0
    accepted, _, refused = result.out.partition("reference flags lifelong refuses:")
    assert refused, "the refused flags have a section of their own"
    for flag in REFUSED:
        assert f"--{flag} " in refused and f"--{flag} " not in accepted.split("options:")[1]
    assert "  --brain-inspired " in accepted and "  --brain-inspired " not in refused
