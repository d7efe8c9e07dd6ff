"""The package layout: no import cycle between the rooms of ``lifelong``, no giant files.

A room is a subpackage (``lifelong.methods``) or a top-level module (``lifelong.errors``). Every
import counts, including the ones inside functions, so a lazy import cannot hide a cycle.
``lifelong/__init__.py`` (the lazy ``lifelong.Experiment``) and ``__main__`` are the entry
points and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import lifelong

PACKAGE = Path(lifelong.__file__).parent
ENTRY_POINTS = {PACKAGE / "__init__.py", PACKAGE / "__main__.py"}


def _room(module: str) -> str:
    return module.split(".")[1]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path) -> set[str]:
    """Every ``lifelong.*`` module ``path`` imports (relative imports resolved)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                stem = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*stem, *([node.module] if node.module else [])])
            found.add(base)
    return {name for name in found if name.startswith("lifelong.")}


def room_graph() -> dict[str, set[str]]:
    """Room → the other rooms it imports."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if path in ENTRY_POINTS:
            continue
        room = _room(_module_name(path))
        targets = {_room(name) for name in _imported(path)} - {room}
        graph.setdefault(room, set()).update(targets)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_a_planted_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_between_rooms() -> None:
    graph = room_graph()
    assert {"cli", "config", "running", "reporting", "methods", "evaluation"} <= set(graph)
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_evaluator_does_not_import_the_method_layer() -> None:
    assert "methods" not in room_graph()["evaluation"]


def test_no_source_file_over_400_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert not long, long


def test_only_foundations_stay_at_the_top() -> None:
    top = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert top == {"checkpoint", "components", "errors", "registry", "types"}
