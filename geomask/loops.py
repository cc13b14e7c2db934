"""Which build of the masked-filter loops runs: C (:mod:`geomask._c`) or numba (:mod:`geomask._nb`).

Both are the same loops, line for line, with the same summation orders, so they give the same
pixels bit for bit (tests/test_loops.py compares them). C is the default: its library for a pixel
type builds in about a second on a machine's first run, where numba compiles for 15-20 s. Without
a C compiler (or when it fails) geomask says so once (:class:`~geomask.errors.KernelBuildWarning`)
and uses numba.

``GEOMASK_KERNELS``: ``auto`` (default: C, else numba), ``c`` (C or an error) or ``numba``.
"""

from __future__ import annotations

import functools
import os
import warnings
from types import ModuleType

from geomask.errors import ConfigError, KernelBuildError, KernelBuildWarning

CHOICES = ("auto", "c", "numba")


def choice() -> str:
    """``GEOMASK_KERNELS``, checked (default ``auto``)."""
    value = os.environ.get("GEOMASK_KERNELS", "auto").strip().lower() or "auto"
    if value not in CHOICES:
        raise ConfigError(f"GEOMASK_KERNELS={value!r} is not one of {', '.join(CHOICES)}")
    return value


@functools.cache
def backend(dtype: str = "uint8") -> ModuleType:
    """The module whose functions run the loops for pixel type ``dtype`` (a numpy name).

    With ``auto``, a C library that cannot be built for ``dtype`` warns once and falls back to numba.
    """
    wanted = choice()
    if wanted == "numba":
        return _numba()
    from geomask import _c

    try:
        _c.library(dtype)
    except KernelBuildError as e:
        if wanted == "c":
            raise
        warnings.warn(
            f"{e}; using numba's build of the kernels instead (the same pixels; its first run on "
            "this machine compiles for 15-20 s). Install a C compiler (gcc) to avoid it.",
            KernelBuildWarning,
            stacklevel=2,
        )
        return _numba()
    return _c


def _numba() -> ModuleType:
    from geomask import _nb

    return _nb
