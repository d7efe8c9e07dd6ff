"""Reading the files a user gives (YAML and JSON), bounded in size and in what they expand to.

Every YAML file lifelong reads from a user (config files, sweep files, presets, a run's
``config.yaml`` on ``--resume``) goes through :func:`load_yaml_file`:

- a file over :data:`MAX_FILE_BYTES` is refused before it is read;
- a file that is not UTF-8, a folder, a missing file or a name the system refuses is a one-line
  :class:`~lifelong.errors.ConfigError`;
- a document whose aliases expand to more than :data:`MAX_NODES` nodes ("billion laughs": a
  few hundred bytes of nested anchors that expand to billions of items) is refused before any
  value is built, so nothing later formats or walks the expanded value;
- PyYAML's multi-line messages become one line naming the file, the line and the problem.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from lifelong.errors import ConfigError, one_line

MAX_FILE_BYTES = 1_000_000
"""The largest file read (a run's config.yaml is about 2 kB, a large sweep file a few kB)."""
MAX_NODES = 100_000
"""The most YAML nodes a document may hold once its aliases are expanded."""


class TooLargeError(yaml.YAMLError):
    """A document that expands to more than :data:`MAX_NODES` nodes, or nests too deeply."""


FastestSafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's C parser where PyYAML was built with it (about 10× faster), else the Python one."""


class BoundedSafeLoader(FastestSafeLoader):  # type: ignore[misc,valid-type]
    """``yaml.SafeLoader`` that refuses documents which expand to more than :data:`MAX_NODES`.

    The composed node graph shares the node of an anchor between its aliases; the expanded size
    is counted on that graph, once per distinct node, before any Python value is constructed.
    """

    def construct_document(self, node: Node) -> Any:
        """Check the expanded size of ``node``, then build its value as ``SafeLoader`` does."""
        expanded_size(node, {}, set())
        return super().construct_document(node)


def expanded_size(node: Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """Nodes in ``node`` with every alias expanded; :class:`TooLargeError` over the limit.

    Args:
        node: A composed YAML node.
        sizes: The expanded size of each node counted so far, by ``id``.
        open_nodes: The ids of the nodes being counted (an alias to one of them is a cycle).
    """
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        raise TooLargeError("an alias refers to a node that contains it (a recursive alias)")
    open_nodes.add(key)
    children: list[Node] = []
    if isinstance(node, SequenceNode):
        children = list(node.value)
    elif isinstance(node, MappingNode):
        children = [part for pair in node.value for part in pair]
    total = 1
    for child in children:
        total += expanded_size(child, sizes, open_nodes)
        if total > MAX_NODES:
            raise TooLargeError(
                f"its aliases expand to more than {MAX_NODES} values (an alias bomb?)"
            )
    open_nodes.discard(key)
    sizes[key] = total
    return total


def read_user_text(path: Path, what: str) -> str:
    """The UTF-8 text of a file the user gave, at most :data:`MAX_FILE_BYTES` long.

    Args:
        path: The file.
        what: What the file is, for messages (``"config file"``, ``"sweep file"``).

    Raises:
        ConfigError: one line, if the file is missing, a folder, too large, unreadable or not
            UTF-8.
    """
    try:
        if path.is_dir():
            raise ConfigError(f"{what} {path} is a folder, not a file")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError(
                f"{what} {path} is {size} bytes, larger than the {MAX_FILE_BYTES} bytes lifelong "
                "reads: is it the right file?"
            )
        data = path.read_bytes()[: MAX_FILE_BYTES + 1]
    except FileNotFoundError as err:
        raise ConfigError(f"{what} {path} does not exist") from err
    except OSError as err:
        raise ConfigError(f"cannot read {what} {path}: {err.strerror or err}") from err
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{what} {path} is not UTF-8 text (byte {err.start} is {data[err.start]:#04x})"
        ) from err


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML ``text`` with :class:`BoundedSafeLoader`; errors are one line.

    Args:
        text: The document.
        source: What and where it is, for messages (``"config file a.yaml"``).

    Raises:
        ConfigError: if ``text`` is not valid YAML, uses a tag other than the standard ones,
            nests too deeply or expands to more than :data:`MAX_NODES` nodes.
    """
    try:
        return yaml.load(text, Loader=BoundedSafeLoader)  # a SafeLoader: standard tags only
    except TooLargeError as err:
        raise ConfigError(f"{source} is refused: {err}") from err
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = one_line(err.problem or err.context or "syntax error", 200)
        raise ConfigError(f"{source} is not valid YAML{where}: {problem}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{source} is not valid YAML: {one_line(str(err), 200)}") from err
    except RecursionError as err:
        raise ConfigError(f"{source} is refused: it nests too deeply") from err
    except ValueError as err:  # e.g. an integer of more digits than Python converts
        problem = one_line(str(err), 200)
        raise ConfigError(f"{source} holds a value lifelong cannot read: {problem}") from err


def load_yaml_file(path: Path, what: str = "config file") -> Any:
    """Read and parse a YAML file the user gave (bounded, one-line errors); any value."""
    return parse_yaml(read_user_text(path, what), f"{what} {path}")


def load_json_file(path: Path, what: str) -> Any:
    """Read and parse a JSON file the user gave (bounded, one-line errors); any value."""
    text = read_user_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{what} {path} is not valid JSON at line {err.lineno}") from err
    except RecursionError as err:
        raise ConfigError(f"{what} {path} is refused: it nests too deeply") from err


def load_yaml(path: Path, what: str = "config file") -> dict[str, Any]:
    """A YAML file that must hold a mapping (a config file, a preset, a run's config.yaml)."""
    data = load_yaml_file(path, what)
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must hold a mapping of sections")
    return data
