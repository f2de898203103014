"""Load calibration pickles without letting them run code.

Human3.6M and MPI-INF-3DHP calibrations circulate as Python pickles. Unpickling calls
whatever callable the file names, so a plain ``pickle.load`` on a user's file can run
arbitrary code. :func:`restricted_load` admits only the globals that NumPy arrays, dtypes
and scalars need, plus a few inert builtin containers; anything else is refused *before*
it is called.
"""

from __future__ import annotations

import codecs
import importlib
import io
import pickle
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Any

__all__ = ["UnsafePickleError", "RestrictedUnpickler", "restricted_load", "restricted_loads"]


class UnsafePickleError(ValueError):
    """A pickle asked for a global outside the allow-list (it may try to run code)."""


# (module, name) -> where to find it now. NumPy 2 moved ``numpy.core`` to ``numpy._core``;
# pickles written by either major version name either one, so both spellings are admitted and
# resolved against whichever module this NumPy provides (without touching the deprecated shim).
_NUMPY_CORE_GLOBALS: dict[tuple[str, str], str] = {
    ("multiarray", "_reconstruct"): "_reconstruct",  # ndarray.__reduce__ (protocols 0-4)
    ("multiarray", "scalar"): "scalar",  # numpy scalars such as np.float64(1.0)
    ("numeric", "_frombuffer"): "_frombuffer",  # ndarray.__reduce_ex__ (protocol 5)
}
_ALLOWED_NUMPY_TOP: frozenset[str] = frozenset({"ndarray", "dtype"})
_ALLOWED_BUILTINS: frozenset[str] = frozenset(
    {"set", "frozenset", "complex", "bytearray", "slice", "range"}
)
# Python 2 (and protocol < 3) pickles name the builtins module ``__builtin__``.
_BUILTINS_MODULES: frozenset[str] = frozenset({"builtins", "__builtin__"})


def _latin1_encode(obj: str, encoding: str = "latin1") -> bytes:
    """Stand-in for ``_codecs.encode``, which protocol-2 pickles use to store ``bytes``.

    Only the text codecs such pickles use are accepted, so a pickle cannot reach other codecs.
    """
    if codecs.lookup(encoding).name not in {"iso8859-1", "utf-8", "ascii"}:
        raise pickle.UnpicklingError(f"refused codec {encoding!r} in _codecs.encode")
    return codecs.encode(obj, encoding)


def _numpy_core_attr(submodule: str, name: str) -> Callable[..., Any]:
    for package in ("numpy._core", "numpy.core"):
        try:
            module = importlib.import_module(f"{package}.{submodule}")
        except ImportError:
            continue
        return getattr(module, name)
    raise ImportError(f"numpy provides no {submodule}.{name}")


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose :meth:`find_class` admits NumPy arrays/scalars and plain data only."""

    def __init__(self, file: io.BufferedIOBase, source: str = "<bytes>", **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        """Return an allowed global, or raise :class:`UnsafePickleError` without importing it."""
        resolved = self._resolve(module, name)
        if resolved is None:
            raise UnsafePickleError(
                f"{self.source}: refused to unpickle global '{module}.{name}': only NumPy arrays, "
                "dicts, lists, tuples, strings and numbers are allowed in calibration pickles, "
                "because a pickle can run code when loaded. If you trust this file, convert it "
                "once to JSON or NPZ (e.g. np.savez / json.dump of its arrays) and load that."
            )
        return resolved

    @staticmethod
    def _resolve(module: str, name: str) -> Any | None:
        if module == "numpy" and name in _ALLOWED_NUMPY_TOP:
            return getattr(importlib.import_module("numpy"), name)
        for package in ("numpy.core.", "numpy._core."):
            if module.startswith(package):
                key = (module[len(package) :], name)
                if key in _NUMPY_CORE_GLOBALS:
                    return _numpy_core_attr(*key)
        if module in _BUILTINS_MODULES and name in _ALLOWED_BUILTINS:
            return getattr(importlib.import_module("builtins"), name)
        if module == "collections" and name == "OrderedDict":
            return importlib.import_module("collections").OrderedDict
        if module == "_codecs" and name == "encode":
            return _latin1_encode
        return None


def restricted_loads(data: bytes, source: str = "<bytes>") -> object:
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (see :func:`restricted_load`)."""
    return RestrictedUnpickler(io.BytesIO(data), source=source, encoding="latin1").load()


def restricted_load(path: str | PathLike[str]) -> object:
    """Load a pickle file that may only contain NumPy arrays/scalars and plain Python data.

    Python 2 pickles are read with ``encoding="latin1"`` (what NumPy needs to rebuild arrays
    written by Python 2). Raises :class:`UnsafePickleError` (a ``ValueError``) naming the file
    and the refused global if the pickle references anything else; nothing it names is called.
    """
    path = Path(path)
    return restricted_loads(path.read_bytes(), source=str(path))
