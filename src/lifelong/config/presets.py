"""YAML presets under ``configs/presets/<dataset>/<name>.yaml`` (shipped inside the package)."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml

from lifelong.errors import ConfigError

PRESET_DIR = Path(__file__).resolve().parent.parent / "preset_files"


def preset_names() -> list[str]:
    """All preset names, ``<dataset>/<name>``, sorted."""
    return sorted(
        p.relative_to(PRESET_DIR).with_suffix("").as_posix() for p in PRESET_DIR.rglob("*.yaml")
    )


def preset_path(name: str) -> Path:
    """The file of preset ``name``; a ConfigError with suggestions if there is none."""
    path = PRESET_DIR / f"{name}.yaml"
    if name in preset_names():
        return path
    close = difflib.get_close_matches(name, preset_names(), n=3, cutoff=0.5)
    hint = f": did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ConfigError(f"unknown preset {name!r}{hint} (see `lifelong list presets`)")


def load_preset(name: str) -> dict[str, Any]:
    """The raw config of preset ``name``."""
    return load_yaml(preset_path(name))


def load_yaml(path: Path) -> dict[str, Any]:
    """Load a YAML config file with ``yaml.safe_load``; it must hold a mapping."""
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as err:
        raise ConfigError(f"config file {path} does not exist") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections")
    return data


def preset_description(name: str) -> str:
    """The leading comment block of a preset (what it reproduces and its source)."""
    lines = []
    for line in preset_path(name).read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").rstrip())
    return " ".join(lines)


def matching_preset(dataset: str, method: str, buffer_size: int | None) -> str | None:
    """The paper preset for this dataset/method (and buffer size), if one exists."""
    candidates = [f"{dataset}/{method}-{buffer_size}"] if buffer_size is not None else []
    candidates.append(f"{dataset}/{method}")
    names = set(preset_names())
    return next((c for c in candidates if c in names), None)
