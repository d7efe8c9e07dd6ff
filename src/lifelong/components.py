"""Import every module of the component packages, so that the registries are complete.

A module that defines a method, backbone, buffer, scenario, SSL model or strategy registers it
by existing: there is no hand-kept import list that a new module could be missing from.
"""

from __future__ import annotations

import importlib
import pkgutil

COMPONENT_PACKAGES = (
    "lifelong.backbones",
    "lifelong.buffers",
    "lifelong.data",
    "lifelong.methods",
    "lifelong.ssl",
)
"""Packages whose modules may register components."""


def component_modules() -> list[str]:
    """The dotted names of every module in :data:`COMPONENT_PACKAGES`, sorted."""
    names = []
    for package_name in COMPONENT_PACKAGES:
        package = importlib.import_module(package_name)
        names += [info.name for info in pkgutil.walk_packages(package.__path__, f"{package_name}.")]
    return sorted(names)


def import_all() -> None:
    """Import every component module (each import registers what the module defines)."""
    for name in component_modules():
        importlib.import_module(name)


import_all()
