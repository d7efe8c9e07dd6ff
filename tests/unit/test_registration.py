"""Registration without a hand-kept list: every method a module defines is registered."""

from __future__ import annotations

import importlib
import inspect
import sys

import lifelong.components
from lifelong.backbones import BACKBONES
from lifelong.components import component_modules
from lifelong.methods.base import METHODS, Method


def defined_methods() -> list[type[Method]]:
    """Every Method subclass defined in a module under ``lifelong.methods``."""
    found = []
    for name in component_modules():
        if not name.startswith("lifelong.methods."):
            continue
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, Method)
                and obj is not Method
                and obj.__module__ == name
            ):
                found.append(obj)
    return found


def test_every_method_defined_under_methods_is_registered():
    """Each Method class is registered under its own name; a variant entry does not count."""
    defined = defined_methods()
    missing = [
        f"{c.__module__}.{c.__name__}"
        for c in defined
        if c.name not in METHODS
        or METHODS.get(c.name).method_class is not c
        or METHODS.get(c.name).variant_of is not None
    ]
    assert not missing, f"defined but not registered: {missing}"
    assert len(defined) >= 11


def test_every_variant_entry_runs_a_registered_method_class():
    """``bir_si``, ``cwr_star`` and the SARL variants are data: a base entry's class + settings."""
    defined = set(defined_methods())
    variants = [entry for _, entry in METHODS.items() if entry.variant_of is not None]
    assert {e.name for e in variants} >= {"bir_si", "cwr_star", "sarl_online", "sarl_enhanced"}
    for entry in variants:
        assert entry.method_class is METHODS.get(entry.variant_of).method_class
        assert entry.method_class in defined
    assert len(METHODS) >= 17


def test_every_component_module_is_imported_by_the_registry_loader():
    lifelong.components.import_all()
    assert all(name in sys.modules for name in component_modules())
    assert "lifelong.methods.finetune" in component_modules()
    assert {"mlp", "resnet18", "mobilenet_v1"} <= set(BACKBONES.names())
