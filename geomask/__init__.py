"""geomask: apply kernels only inside regions of interest of GeoTIFF scenes.

The public surface: :func:`masked_convolve` (arrays in memory), :func:`process_scene`
(one GeoTIFF, windowed and parallel), :func:`run_pipeline` (a YAML pipeline), the kernel
registry :mod:`geomask.kernels`, the mask sources :mod:`geomask.masks`, and the errors
of :mod:`geomask.errors`.

The names are imported on first use (PEP 562 module ``__getattr__``), so ``import geomask``
loads neither numba, dask nor rasterio; ``from geomask import process_scene`` loads what that
needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from geomask import kernels
    from geomask.arrays import masked_convolve
    from geomask.errors import GeomaskError
    from geomask.masks import ArraySource, VectorSource
    from geomask.pipeline import run_pipeline
    from geomask.process import process_scene
    from geomask.spec import OutputSpec, RunOptions, SceneReport, Step

__all__ = [
    "ArraySource",
    "GeomaskError",
    "OutputSpec",
    "RunOptions",
    "SceneReport",
    "Step",
    "VectorSource",
    "__version__",
    "kernels",
    "masked_convolve",
    "process_scene",
    "run_pipeline",
]

_HOME = {
    "ArraySource": "geomask.masks",
    "GeomaskError": "geomask.errors",
    "OutputSpec": "geomask.spec",
    "RunOptions": "geomask.spec",
    "SceneReport": "geomask.spec",
    "Step": "geomask.spec",
    "VectorSource": "geomask.masks",
    "masked_convolve": "geomask.arrays",
    "process_scene": "geomask.process",
    "run_pipeline": "geomask.pipeline",
}
"""The module each public name lives in (``kernels`` is the submodule itself)."""


def __getattr__(name: str) -> Any:
    """Import a public name on first use and keep it (PEP 562)."""
    if name == "kernels":
        value: Any = importlib.import_module("geomask.kernels")
    elif name in _HOME:
        value = getattr(importlib.import_module(_HOME[name]), name)
    else:
        raise AttributeError(f"module 'geomask' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
