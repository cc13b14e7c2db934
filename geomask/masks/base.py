"""The mask protocol: a declarative source, bound to a scene's grid, rendered per window.

A :class:`MaskSource` describes *what* selects pixels (a vector file, a bbox,
an expression ...). It holds no open file handles and is cheap to pickle.
:meth:`MaskSource.bind` validates it against one scene (reads and reprojects
vectors, checks CRSs) and returns a :class:`BoundMask`, which renders the mask
for any window of that scene's grid.

Contract of :class:`BoundMask` (the engine relies on it):

* ``render(window)`` returns a C-contiguous ``bool`` array of shape
  ``(window.height, window.width)`` for any window inside the grid (integer
  offsets and sizes), and the result for a pixel never depends on the window
  it was rendered in (tile invariance: the engine renders windows of any size
  and equals a whole-scene render).
* It is picklable and safe to call from several threads at once; any file it
  needs is opened inside ``render`` (never a handle shared between threads or
  pickled to a worker process).
* ``halo`` is how many pixels beyond a window the source needs to read (0 for
  most sources; ``grow``/``shrink`` need their radius).
* ``is_empty`` is True when the source selects nothing anywhere in the scene,
  so the engine can pass the scene through without reading it twice.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window

from geomask.errors import MaskError
from geomask.grid import Grid

__all__ = ["ArrayMask", "ArraySource", "BoundMask", "FullMask", "FullSource", "MaskContext", "MaskSource"]


@dataclass(frozen=True)
class MaskContext:
    """What a mask source may know about the scene it is bound to.

    Attributes
    ----------
    grid : Grid
        The scene's grid (CRS, transform, shape).
    scene_path : str or None
        Path or URL of the scene, for sources that read its pixels (expressions, kmeans).
    nodata : float or None
        The scene's effective nodata value (pixels never selected by pixel-value sources).
    """

    grid: Grid
    scene_path: str | None = None
    nodata: float | None = None


class BoundMask(ABC):
    """A mask ready to render windows of one grid."""

    halo: int = 0

    @property
    def is_empty(self) -> bool:
        """True when nothing in the scene is selected (default: unknown, so False)."""
        return False

    @abstractmethod
    def render(self, window: Window) -> NDArray[np.bool_]:
        """The mask for ``window``: bool array of shape (window.height, window.width)."""


class MaskSource(ABC):
    """A declarative, picklable description of a mask."""

    @abstractmethod
    def bind(self, context: MaskContext) -> BoundMask:
        """Validate against the scene in ``context`` and return a renderer for its windows."""

    def describe(self) -> str:
        """A short label for reports and provenance tags."""
        return type(self).__name__


class FullMask(BoundMask):
    """Selects every pixel (used when no mask is given from Python)."""

    def render(self, window: Window) -> NDArray[np.bool_]:
        return np.ones((int(window.height), int(window.width)), dtype=bool)


class FullSource(MaskSource):
    """The whole scene (what a step without ``mask`` selects), as a source for the mask algebra."""

    def bind(self, context: MaskContext) -> FullMask:
        return FullMask()

    def describe(self) -> str:
        return "whole scene"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FullSource)

    def __hash__(self) -> int:
        return hash(FullSource)


class ArrayMask(BoundMask):
    """A mask held in memory as a whole-grid bool array (Python API, tests, small scenes)."""

    def __init__(self, array: NDArray[np.bool_]) -> None:
        self.array = np.ascontiguousarray(array, dtype=bool)

    @property
    def is_empty(self) -> bool:
        return not bool(self.array.any())

    def render(self, window: Window) -> NDArray[np.bool_]:
        r0, c0 = int(window.row_off), int(window.col_off)
        return np.ascontiguousarray(self.array[r0 : r0 + int(window.height), c0 : c0 + int(window.width)])


class ArraySource(MaskSource):
    """A mask given as a whole-scene bool array (H, W) in memory (Python API, tests).

    The array must have the scene's shape; it is pickled to worker processes with each
    task, so keep it for scenes that fit in memory.
    """

    def __init__(self, array: NDArray[np.bool_]) -> None:
        self.array = np.ascontiguousarray(array, dtype=bool)

    def bind(self, context: MaskContext) -> BoundMask:
        if self.array.shape != context.grid.shape:
            raise MaskError(
                f"mask array has shape {self.array.shape} but the scene is {context.grid.shape} (rows, cols)"
            )
        return ArrayMask(self.array)

    def describe(self) -> str:
        return f"array({int(self.array.sum())} pixels)"
