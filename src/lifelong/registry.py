"""Registries by name: the only module-level mutable objects in the library.

Every registered entry is covered by the parametrized contract tests (see ``tests/contract``).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from lifelong.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name → entry mapping with helpful errors for unknown names.

    Args:
        kind: What the entries are ("method", "dataset", ...), used in error messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Return a decorator that registers its argument under ``name``."""

        def decorator(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return decorator

    def add(self, name: str, entry: T) -> None:
        """Register ``entry`` under ``name`` (the non-decorator form)."""
        self.register(name)(entry)

    def get(self, name: str) -> T:
        """Return the entry called ``name``.

        Raises:
            ConfigError: if ``name`` is unknown; the message suggests close matches.
        """
        if name in self._entries:
            return self._entries[name]
        close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise ConfigError(
            f"unknown {self.kind} {name!r}: {hint}choose one of {', '.join(self.names())} "
            f"(see `lifelong list {self.kind}s`)"
        )

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """``(name, entry)`` pairs, sorted by name."""
        return [(name, self._entries[name]) for name in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
