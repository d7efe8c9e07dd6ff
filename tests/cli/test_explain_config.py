"""``lifelong run --explain-config`` prints each field's value and layer, and trains nothing."""

from __future__ import annotations


def layer_of(out: str, field: str) -> tuple[str, str]:
    for line in out.splitlines():
        parts = line.split(maxsplit=2)
        if parts and parts[0] == field:
            return parts[1], parts[2]
    raise AssertionError(f"{field} not in the table:\n{out}")


def test_explain_config_names_scenario_preset_and_flag_layers(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["--method", "er", "--dataset", "seq-mnist", "--buffer-size", "200", "--seed", "4"]
    result = cli("run", *args, "--set", "train.log_every=9", "--explain-config")
    assert result.code == 0, result.err
    assert layer_of(result.out, "method.lr") == ("0.01", "preset seq-mnist/er-200")
    assert layer_of(result.out, "seed") == ("4", "override")
    assert layer_of(result.out, "train.log_every") == ("9", "override")
    assert layer_of(result.out, "method.momentum") == ("0.0", "default")
    assert not (tmp_path / "runs").exists()


def test_explain_config_shows_the_scenario_layer(cli):
    result = cli("run", "--method", "derpp", "--explain-config")
    assert result.code == 0, result.err
    assert layer_of(result.out, "train.epochs") == ("5", "scenario seq-digits")
    assert layer_of(result.out, "train.batch_size") == ("16", "scenario seq-digits")
