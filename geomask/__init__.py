"""geomask: apply kernels only inside regions of interest of GeoTIFF scenes.

The public surface: :func:`masked_convolve` (arrays in memory), :func:`process_scene`
(one GeoTIFF, windowed and parallel), :func:`run_pipeline` (a YAML pipeline), the kernel
registry :mod:`geomask.kernels`, the mask sources :mod:`geomask.masks`, and the errors
of :mod:`geomask.errors`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from geomask import kernels
from geomask.convolve import masked_convolve
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
