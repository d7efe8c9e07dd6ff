"""Name registries: lookups, suggestions for unknown names, duplicate registration."""

from __future__ import annotations

import pytest

import lifelong.components  # noqa: F401  (fills the registries)
from lifelong.backbones import BACKBONES
from lifelong.data.scenarios import SCENARIOS
from lifelong.errors import ConfigError
from lifelong.methods.base import METHODS
from lifelong.registry import Registry


def test_register_get_and_listing() -> None:
    registry: Registry[int] = Registry("widget")
    registry.add("beta", 2)

    @registry.register("alpha")
    def alpha() -> int:
        return 1

    assert registry.get("alpha") is alpha
    assert registry.get("beta") == 2
    assert registry.names() == ["alpha", "beta"]
    assert list(registry) == ["alpha", "beta"]
    assert registry.items() == [("alpha", alpha), ("beta", 2)]
    assert len(registry) == 2
    assert "alpha" in registry
    assert "gamma" not in registry


def test_duplicate_registration_raises() -> None:
    registry: Registry[int] = Registry("widget")
    registry.add("one", 1)
    with pytest.raises(ValueError, match="widget 'one' is registered twice"):
        registry.add("one", 2)
    assert registry.get("one") == 1  # the first entry is kept


def test_unknown_name_lists_choices_without_close_match() -> None:
    registry: Registry[int] = Registry("widget")
    registry.add("sprocket", 1)
    with pytest.raises(ConfigError) as err:
        registry.get("zzz")
    message = str(err.value)
    assert "unknown widget 'zzz'" in message
    assert "did you mean" not in message
    assert "choose one of sprocket" in message
    assert "lifelong list widgets" in message


@pytest.mark.parametrize(
    ("name", "expected"),
    [("dr", ["'der'"]), ("derp", ["'der'", "'derpp'"]), ("fintune", ["'finetune'"])],
)
def test_unknown_method_suggests_close_matches(name: str, expected: list[str]) -> None:
    with pytest.raises(ConfigError, match=f"unknown method '{name}'") as err:
        METHODS.get(name)
    suggestion = str(err.value).split("did you mean", 1)[1].split("?", 1)[0]
    for candidate in expected:
        assert candidate in suggestion


def test_registries_hold_the_shipped_components() -> None:
    assert {"der", "derpp", "er", "finetune", "joint"} <= set(METHODS.names())
    assert {"mlp", "resnet18"} <= set(BACKBONES.names())
    assert {"seq-digits", "seq-mnist", "perm-mnist", "rot-mnist"} <= set(SCENARIOS.names())
    for name in METHODS:
        assert METHODS.get(name).name == name  # registered under its own name


def test_method_registered_twice_is_rejected() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        METHODS.add("er", METHODS.get("er"))
