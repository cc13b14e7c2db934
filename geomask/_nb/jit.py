"""The compile options every kernel shares, and their on-disk cache keyed by the whole package.

numba's ``cache=True`` checks only the source file of the function it caches: a kernel in
``linear2d.py`` compiled with an older ``rows.py`` would be loaded from the cache after an edit of
``rows.py`` alone. The locators registered here give every function of this package a stamp
of all of its modules' sources instead, so any edit of any module recompiles every kernel. They
take the place of numba's own locators (``NUMBA_CACHE_DIR``, ``__pycache__``, the user-wide
directory), in the same order, for this package's files only.
"""

from __future__ import annotations

import functools
import hashlib
import os
from typing import Any

import numpy as np
from numba.core import caching

EPS = np.finfo(np.float64).eps
JIT = {"cache": True, "nogil": True, "boundscheck": False}
# Functions only compiled code calls: no CPython or C wrapper to generate (unboxing their argument
# tuples): about a tenth less CPU in the separable kernel's first compile (15.5 s against 17.3 s).
INNER = {**JIT, "no_cpython_wrapper": True, "no_cfunc_wrapper": True}

_HERE = os.path.dirname(os.path.abspath(__file__))


def folder_stamp(folder: str) -> str:
    """SHA-256 over the names and bytes of the modules (``*.py``) in ``folder``, sorted by name."""
    digest = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            with open(os.path.join(folder, name), "rb") as f:
                digest.update(name.encode() + b"\0" + f.read() + b"\0")
    return digest.hexdigest()


@functools.cache
def package_stamp() -> str:
    """:func:`folder_stamp` of this package, read once per process."""
    return folder_stamp(_HERE)


def _whole_package(base: type) -> type:
    """``base`` (a numba cache locator class) for this package's files, stamped by all of them."""

    class Locator(base):  # type: ignore[misc, valid-type]
        def get_source_stamp(self) -> Any:
            return package_stamp()

        @classmethod
        def from_function(cls, py_func: Any, py_file: str) -> Any:
            if os.path.dirname(os.path.abspath(py_file)) != _HERE:
                return None
            return super().from_function(py_func, py_file)

    Locator.__name__ = Locator.__qualname__ = f"WholePackage{base.__name__.lstrip('_')}"
    return Locator


def _register() -> None:
    """Put the whole-package locators ahead of numba's (older numba names them with a ``_``)."""
    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl
    names = ("UserProvidedCacheLocator", "InTreeCacheLocator", "UserWideCacheLocator")
    bases = [getattr(caching, n, None) or getattr(caching, "_" + n) for n in names]
    if not any(getattr(c, "__module__", None) == __name__ for c in impl._locator_classes):
        impl._locator_classes[:0] = [_whole_package(b) for b in bases]


_register()
