"""YAML presets under ``configs/presets/<dataset>/<name>.yaml`` (shipped inside the package)."""

from __future__ import annotations

import difflib
import functools
from pathlib import Path
from typing import Any

from lifelong.config.yaml_files import load_yaml
from lifelong.errors import ConfigError

PRESET_DIR = Path(__file__).resolve().parent.parent / "preset_files"


def preset_names() -> list[str]:
    """All preset names, ``<dataset>/<name>``, sorted."""
    return list(_shipped_presets())


@functools.cache
def _shipped_presets() -> tuple[str, ...]:
    """The package's preset names, listed once per process (the files ship with the package)."""
    found = PRESET_DIR.rglob("*.yaml")
    return tuple(sorted(p.relative_to(PRESET_DIR).with_suffix("").as_posix() for p in found))


def preset_path(name: str) -> Path:
    """The file of preset ``name``; a ConfigError with suggestions if there is none."""
    path = PRESET_DIR / f"{name}.yaml"
    if name in _shipped_presets():
        return path
    close = difflib.get_close_matches(name, preset_names(), n=3, cutoff=0.5)
    hint = f": did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ConfigError(f"unknown preset {name!r}{hint} (see `lifelong list presets`)")


def load_preset(name: str) -> dict[str, Any]:
    """The raw config of preset ``name``."""
    return load_yaml(preset_path(name), "preset")


def preset_description(name: str) -> str:
    """The leading comment block of a preset (what it reproduces and its source)."""
    lines = []
    for line in preset_path(name).read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").rstrip())
    return " ".join(lines)


def matching_preset(dataset: str, method: str, buffer_size: object) -> str | None:
    """The paper preset for this dataset/method (and buffer size, when it is one), if any."""
    sized = isinstance(buffer_size, int) and not isinstance(buffer_size, bool)
    candidates = [f"{dataset}/{method}-{buffer_size}"] if sized else []
    candidates.append(f"{dataset}/{method}")
    names = set(preset_names())
    return next((c for c in candidates if c in names), None)
