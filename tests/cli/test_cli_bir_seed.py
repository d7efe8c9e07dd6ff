"""The README's mapping of the BI-R feature-exaggeration commands, each run on a CIFAR-100 folder.

The commands are read from the README (between the ``bir-seed-commands`` markers), so the
README and this test cannot drift apart. Each runs as written on a small CIFAR-100 folder in the
official format, with a schedule and network shrunk by appended flags.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml
from test_cli_cifar import write_cifar10, write_cifar100

from lifelong.backbones.conv_encoder import ConvEncoder, ConvEncoderConfig

README = Path(__file__).resolve().parents[2] / "README.md"
SHRINK = [
    "--iters", "2", "--batch-size", "8", "--set", "fc_units=16", "--set", "h_dim=16",
    "--set", "z_dim=4", "--no-progress", "--no-tensorboard",
]  # fmt: skip


def readme_commands() -> list[str]:
    text = README.read_text()
    block = text.split("<!-- bir-seed-commands -->")[1].split("<!-- /bir-seed-commands -->")[0]
    rows = [line for line in block.splitlines() if line.startswith("| ") and "`lifelong" in line]
    return [re.findall(r"`(lifelong [^`]+)`", row)[-1] for row in rows]


COMMANDS = readme_commands()
RUNS = [c for c in COMMANDS if c.startswith("lifelong run")]
EXPECTED_TERMS = {
    "--set repulsion=true": {"repulsion"},
    "--set recon_repulsion=true": {"recon_repulsion", "recon_attraction"},
    "--set contrastive=true": {"contrastive"},
}


def test_the_readme_maps_every_seed_command() -> None:
    assert len(RUNS) == 5 and any(c.startswith("lifelong pretrain") for c in COMMANDS)


@pytest.mark.parametrize("command", RUNS, ids=[c.split("--pdf")[-1] or "baseline" for c in RUNS])
def test_seed_command_runs_on_a_cifar100_folder(cli, tmp_path: Path, command: str) -> None:
    data = write_cifar100(tmp_path / "data", per_class=2)
    conv = tmp_path / "conv.pt"
    ConvEncoder(ConvEncoderConfig(), 3).save_pretrained(conv)
    words = shlex.split(command.replace("DATA", str(data)).replace("conv.pt", str(conv)))
    assert words[:2] == ["lifelong", "run"]
    run_dir = tmp_path / "run"
    result = cli(*words[1:], *SHRINK, "--run-dir", run_dir)
    assert result.code == 0, result.err
    results = json.loads((run_dir / "results.json").read_text())
    assert results["completed"] and results["num_experiences"] == 10
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    method = config["method"]
    assert method["name"] == "bir_si" and method["si_c"] == 1e8 and method["dg_prop"] == 0.6
    assert method["conv_depth"] == 5 and method["pretrained_conv"] == str(conv)
    assert config["dataset"]["shuffle_classes"]
    steps = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    last = [s for s in steps if s.get("kind") == "step"][-1]
    for flag, terms in EXPECTED_TERMS.items():
        assert (terms <= last.keys()) == (flag in command), (flag, sorted(last))
    # accuracies, losses, the confusion matrix and the cost table; no samples of features
    pdf = (run_dir / "report.pdf").read_bytes()
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) == 5


def test_pretrain_command_runs_on_a_cifar10_folder(cli, tmp_path: Path) -> None:
    command = next(c for c in COMMANDS if c.startswith("lifelong pretrain"))
    data = write_cifar10(tmp_path / "data")
    out = tmp_path / "c.pt"
    words = shlex.split(command.replace("DATA", str(data)).replace("conv.pt", str(out)))
    result = cli(*words[1:], "--epochs", "1", "--batch-size", "16", "--no-progress")
    assert result.code == 0, result.err
    ConvEncoder(ConvEncoderConfig(), 3).load_pretrained(out)


def test_pretrain_on_held_out_classes_at_another_image_size(cli, tmp_path: Path) -> None:
    data = write_cifar10(tmp_path / "data")
    out = tmp_path / "held_out.pt"
    argv = ["pretrain", "--dataset", "seq-cifar10", "--data-root", str(data), "--out", str(out)]
    held_out = ["--classes", "6", "7", "8", "9", "--image-size", "16"]
    result = cli(*argv, *held_out, "--epochs", "1", "--batch-size", "8", "--no-progress")
    assert result.code == 0, result.err
    ConvEncoder(ConvEncoderConfig(), 3).load_pretrained(out)
