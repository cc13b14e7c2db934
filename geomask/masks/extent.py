"""Keep vector geometries within what floating point and the rasterizer can hold, pixels unchanged.

Two steps of :func:`geomask.masks.vector.bind_geometries` can meet numbers that are valid but far
larger than the scene: a ``buffer`` of 1e308 metres (GEOS overflows to NaN and raises), and a
polygon or bbox whose coordinates reach 1e15 (GDAL's rasterizer burns nothing once pixel
coordinates pass the 32-bit integer range, so a box covering the scene selected 0 pixels). Both are
bounded here by amounts that cannot change a pixel of the grid.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from numpy.typing import NDArray

__all__ = ["FAR", "bounded_buffer", "clip_far"]

FAR = 2.0**20
"""Pixels beyond the grid's edge past which geometries are clipped (coordinates stay well inside int32)."""

_ARC = 1.1
"""Margin over the distance a buffer must reach: GEOS approximates arcs by chords (8 per quarter
circle, at least cos(pi/32) = 0.995 of the radius)."""


def bounded_buffer(
    parts: NDArray[np.object_], buffer: float, bounds: tuple[float, float, float, float]
) -> NDArray[np.float64]:
    """The buffer distance for each of ``parts``, its magnitude capped where more cannot change the grid.

    Parameters
    ----------
    parts : array of shapely geometries
        In the grid's CRS.
    buffer : float
        The distance asked for, in the grid CRS's units (> 0 grows, < 0 shrinks).
    bounds : (xmin, ymin, xmax, ymax)
        The grid's bounds in its CRS.

    Returns
    -------
    array of float
        ``buffer`` where it matters. A growth beyond the part's distance to the grid plus the grid's
        diagonal already covers every pixel, so it is capped there (with a margin for the chords of
        the arcs); a shrink beyond half the part's smaller side leaves nothing either way.
    """
    distances = np.full(len(parts), float(buffer))
    if buffer > 0:
        xmin, ymin, xmax, ymax = bounds
        reach = shapely.distance(parts, shapely.box(*bounds)) + math.hypot(xmax - xmin, ymax - ymin)
        return np.fmin(distances, reach * _ARC + 1.0)
    extent = shapely.bounds(parts)
    half = np.minimum(extent[:, 2] - extent[:, 0], extent[:, 3] - extent[:, 1]) / 2
    return np.fmax(distances, -(half * _ARC + 1.0))


def clip_far(pixel_parts: NDArray[np.object_], shape: tuple[int, int]) -> NDArray[np.object_]:
    """``pixel_parts`` (in pixel space) with the parts reaching past :data:`FAR` clipped to that margin.

    Parts within the margin are returned as they are (bit for bit); the new edges of a clipped part
    lie :data:`FAR` pixels outside the grid, so no pixel of the grid changes, ``all_touched`` included.
    """
    height, width = shape
    extent = shapely.bounds(pixel_parts)
    far = (
        (extent[:, 0] < -FAR)
        | (extent[:, 1] < -FAR)
        | (extent[:, 2] > width + FAR)
        | (extent[:, 3] > height + FAR)
    )
    if not far.any():
        return pixel_parts
    clipped = pixel_parts.copy()
    clipped[far] = shapely.clip_by_rect(pixel_parts[far], -FAR, -FAR, width + FAR, height + FAR)
    return clipped[~shapely.is_empty(clipped)]
