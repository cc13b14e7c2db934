"""A rectangular region of interest given by its bounds, in the scene's CRS or another one.

:class:`BboxSource` turns the box into a polygon and binds it with the vector machinery
(:func:`geomask.masks.vector.bind_geometries`), so it renders per window exactly as a vector file
holding that polygon would, with the same tile invariance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from geomask.errors import ConfigError
from geomask.grid import Grid
from geomask.masks.base import MaskContext, MaskSource
from geomask.masks.extent import FAR
from geomask.masks.vector import BoundVectorMask, bind_geometries, require_north_up
from geomask.messages import crs_name, crs_problem, plain

__all__ = ["DENSIFY_SEGMENTS", "BboxSource"]

DENSIFY_SEGMENTS = 64
"""Segments per side a box is split into before it is reprojected to another CRS."""


@dataclass(frozen=True)
class BboxSource(MaskSource):
    """Pixels whose centre lies inside a box ``(xmin, ymin, xmax, ymax)``.

    Parameters
    ----------
    bounds : (float, float, float, float)
        ``xmin, ymin, xmax, ymax`` in ``crs`` units (x is easting or longitude, y northing or latitude,
        whatever the CRS's own axis order).
    crs : str or None
        CRS of the bounds (``"EPSG:4326"``); None (default) means the scene's CRS.

    Raises
    ------
    ConfigError
        On construction, when a bound is not finite, ``xmin >= xmax`` or ``ymin >= ymax``, or ``crs`` is
        not a valid CRS.

    Notes
    -----
    A pixel is selected when its centre is inside the box (``rasterize``'s rule), so a box whose edges
    lie on pixel edges selects exactly the pixels it covers. When ``crs`` differs from the scene's, each
    side is first split into :data:`DENSIFY_SEGMENTS` segments so that the box keeps its curved outline
    in the scene's CRS (a lon/lat box is not a rectangle in UTM). A box that misses the scene warns
    with :class:`~geomask.errors.NoOverlapWarning` and selects nothing.
    """

    bounds: tuple[float, float, float, float]
    crs: str | None = None

    def __post_init__(self) -> None:
        try:
            values = tuple(float(value) for value in self.bounds)
        except (TypeError, ValueError) as e:
            raise ConfigError(
                f"bbox must be four numbers [xmin, ymin, xmax, ymax], got {plain(self.bounds)}"
            ) from e
        if len(values) != 4 or not all(math.isfinite(value) for value in values):
            raise ConfigError(
                f"bbox must be four finite numbers [xmin, ymin, xmax, ymax], got {plain(self.bounds)}"
            )
        xmin, ymin, xmax, ymax = values
        if xmin >= xmax or ymin >= ymax:
            raise ConfigError(
                f"bbox {plain(values)} is empty or inverted: it needs xmin < xmax and ymin < ymax "
                "(order [xmin, ymin, xmax, ymax])"
            )
        object.__setattr__(self, "bounds", values)
        if self.crs is not None:
            self._crs()

    def _crs(self) -> CRS:
        try:
            return CRS.from_user_input(self.crs)
        except CRSError as e:
            raise ConfigError(
                f"crs: {crs_name(self.crs)} given for bbox {plain(self.bounds)} is not a valid CRS "
                f"({crs_problem(e)})"
            ) from e

    def describe(self) -> str:
        """``bbox(xmin, ymin, xmax, ymax[, crs])``."""
        text = ", ".join(f"{value:g}" for value in self.bounds)
        return f"bbox({text}, {crs_name(self.crs)})" if self.crs is not None else f"bbox({text})"

    def bind(self, context: MaskContext) -> BoundVectorMask:
        """The box as a polygon in the scene's pixel space.

        Raises
        ------
        GridError
            The scene grid is rotated or sheared.
        MaskError
            ``crs`` is given but the scene has no CRS.
        """
        what = f"bbox {plain(self.bounds)}" + (f" in {crs_name(self.crs)}" if self.crs is not None else "")
        require_north_up(context.grid, what)
        box = shapely.box(*_clamp(self.bounds, context.grid))
        if self.crs is None:
            crs = None if context.grid.crs is None else CRS.from_user_input(context.grid.crs)
        else:
            crs = self._crs()
            if context.grid.crs is None or not crs.equals(CRS.from_user_input(context.grid.crs)):
                xmin, ymin, xmax, ymax = self.bounds
                box = shapely.segmentize(
                    shapely.box(*self.bounds), max(xmax - xmin, ymax - ymin) / DENSIFY_SEGMENTS
                )
        return bind_geometries(
            np.array([box], dtype=object),
            crs,
            context,
            what=what,
            label=self.describe(),
            fix="check the bounds' order [xmin, ymin, xmax, ymax] and their CRS",
        )


def _clamp(bounds: tuple[float, float, float, float], grid: Grid) -> tuple[float, float, float, float]:
    """``bounds`` (in the grid's CRS) clamped to :data:`~geomask.masks.extent.FAR` pixels around the grid.

    The same pixels are inside (the clamp only moves edges that lie farther out), but a box such as
    ``[-1e300, -1e300, 1e300, 1e300]`` stays within what GEOS and the rasterizer compute with
    (beyond about 1e150 their products overflow; beyond int32 pixels GDAL burns nothing).
    """
    xmin, ymin, xmax, ymax = grid.bounds
    margin = FAR * max(abs(grid.transform.a), abs(grid.transform.e))
    low_x, low_y, high_x, high_y = xmin - margin, ymin - margin, xmax + margin, ymax + margin
    x0, y0, x1, y1 = bounds
    return (
        min(max(x0, low_x), high_x),
        min(max(y0, low_y), high_y),
        min(max(x1, low_x), high_x),
        min(max(y1, low_y), high_y),
    )
