"""Restricted unpickling for dataset files that only ship as pickles (CIFAR, CORe50).

A pickle can name any importable callable and have it called while loading, so a tampered file can
run code. :class:`SafeUnpickler` resolves only the globals the caller lists (for CIFAR: numpy's
array reconstruction) and refuses everything else *before* importing anything, so a refused global
is never imported, let alone called.
"""

from __future__ import annotations

import importlib.util
import logging
import pickle
from pathlib import Path
from typing import IO, Any

from lifelong.errors import DataError

log = logging.getLogger(__name__)

# Globals numpy arrays need: the reconstructor, the array and dtype classes, and numpy scalars.
# numpy 2 renamed ``numpy.core`` to ``numpy._core``; old files name the former, new ones the latter.
NUMPY_ARRAY_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }
)
# Python 3 writes ``bytes`` as ``_codecs.encode(text, "latin1")`` under pickle protocol <= 2, and
# empty bytes as ``bytes()``; both are resolved to stand-ins that can do nothing else.
BYTES_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {("_codecs", "encode"), ("__builtin__", "bytes"), ("builtins", "bytes")}
)

_RENAMED_MODULES = {"numpy.core.multiarray": "numpy._core.multiarray"}
_UNPICKLE_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    AttributeError,
    OverflowError,
    UnicodeError,
)


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """Stand-in for ``_codecs.encode`` that only performs the latin-1 encoding pickles use."""
    if encoding.lower().replace("_", "-") not in {"latin1", "latin-1"}:
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return text.encode("latin-1", errors)


def _empty_bytes(*args: object) -> bytes:
    """Stand-in for ``bytes``: pickles only call ``bytes()`` to make an empty ``bytes``."""
    if args:
        raise pickle.UnpicklingError("bytes() with arguments is not allowed")
    return b""


_STAND_INS: dict[tuple[str, str], Any] = {
    ("_codecs", "encode"): _latin1_encode,
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "bytes"): _empty_bytes,
}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only an explicit allow-list of ``(module, name)`` globals.

    Args:
        file: Binary file object to read the pickle from.
        allowed: The ``(module, name)`` pairs the pickle may reference.
        source: What is being read, for error messages (usually the file path).
        kind: The expected kind of file, for error messages (e.g. ``"CIFAR"``).
        encoding: How to decode Python 2 ``str`` objects; ``"bytes"`` keeps them as bytes.
    """

    def __init__(
        self,
        file: IO[bytes],
        allowed: frozenset[tuple[str, str]],
        *,
        source: str = "<stream>",
        kind: str = "dataset",
        encoding: str = "bytes",
    ) -> None:
        super().__init__(file, encoding=encoding)
        self._allowed = allowed
        self._source = source
        self._kind = kind

    def find_class(self, module: str, name: str) -> Any:
        """Return the global ``module.name`` if allowed, else raise :class:`DataError`."""
        if (module, name) not in self._allowed:
            raise DataError(
                f"{self._source}: safe_load refuses to load {module}.{name}: the file is not a "
                f"{self._kind} file or was tampered with; delete it and download it again"
            )
        if (module, name) in _STAND_INS:
            return _STAND_INS[module, name]
        renamed = _RENAMED_MODULES.get(module)
        if renamed is not None and importlib.util.find_spec(renamed.rsplit(".", 1)[0]) is not None:
            module = renamed
        return super().find_class(module, name)


def safe_load(
    path: str | Path,
    allowed: frozenset[tuple[str, str]],
    *,
    kind: str = "dataset",
    encoding: str = "bytes",
) -> object:
    """Unpickle ``path`` allowing only the ``allowed`` globals.

    Args:
        path: The pickle file.
        allowed: The ``(module, name)`` pairs the pickle may reference, e.g.
            ``NUMPY_ARRAY_GLOBALS | BYTES_GLOBALS``.
        kind: The expected kind of file, named in error messages (e.g. ``"CIFAR"``).
        encoding: How to decode Python 2 ``str`` objects (``"bytes"`` keeps them as bytes).

    Returns:
        The unpickled object.

    Raises:
        DataError: if the file cannot be read, is truncated or corrupt, or references a global
            outside ``allowed`` (which is then neither imported nor called).
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            return SafeUnpickler(f, allowed, source=str(path), kind=kind, encoding=encoding).load()
    except OSError as err:
        raise DataError(f"cannot read {path}: {err}") from err
    except _UNPICKLE_ERRORS as err:
        raise DataError(
            f"{path} is corrupt or truncated ({type(err).__name__}: {err}); delete it and download "
            "it again (--download)"
        ) from err
