"""Geometries moved between CRSs, correct at the edges of projections.

:func:`reproject_parts` is what vector-like mask sources use to move their geometries into a scene's CRS.
Plain vertex-by-vertex reprojection (``GeoSeries.to_crs``) goes wrong in two places, both handled here:

The antimeridian
    PROJ returns longitudes in [-180, 180], so a polygon in a projected CRS that straddles 180 degrees
    (PDC Mercator EPSG:3832, a UTM zone 60 polygon spanning 180) comes back with an edge jumping 360
    degrees and covers the wrong side of the globe (lon -179..179 instead of 179..181). When the scene is
    geographic, each ring's longitudes are unwrapped (a step of more than 180 degrees is taken as a
    crossing, the rule GeoJSON tools use), a ring around a pole is closed through that pole, and the
    part is then placed at every multiple of 360 degrees that touches the scene: a scene in 0..360 style
    (lon 170..190) gets the part once, at 179..181; a -180..180 scene gets both pieces, at 179..180 and
    -180..-179, split by the scene's own edges.
Outside a projection's valid area
    Points a projection cannot represent (beyond the disk a geostationary ``+proj=geos`` satellite
    sees, for example) come back as ``inf``; shapely then raises, or the part is silently lost. A part
    with such points is clipped, in its own CRS, to the area where the transformation is finite
    (sampled on a grid of :data:`VALID_AREA_SAMPLES` cells over the part), and dropped when nothing of
    it remains; an :class:`~geomask.errors.OutsideProjectionWarning` says how many.

Neither shapely nor pyproj does these (pyproj's ``transform_bounds`` handles bounds only; the
``antimeridian`` package splits GeoJSON into -180..180 only, which still leaves scenes past 180 and
adds a dependency), hence the code below.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import CRS, Transformer

from geomask.errors import OutsideProjectionWarning
from geomask.messages import crs_name
from geomask.threadwarnings import LIBRARY_CATCHES, ignored

__all__ = ["VALID_AREA_SAMPLES", "place_in_turns", "reproject_parts"]

VALID_AREA_SAMPLES = 256
"""Cells per side of the grid on which the valid area of a transformation is sampled around a part."""

_POLYGON, _LINES = 3, (1, 2)  # shapely type ids: Polygon; LineString and LinearRing


def reproject_parts(
    geoms: NDArray[np.object_],
    crs: CRS,
    target: CRS,
    target_bounds: tuple[float, float, float, float],
    what: str,
) -> NDArray[np.object_]:
    """Single-part geometries of ``geoms`` moved from ``crs`` to ``target``.

    Parameters
    ----------
    geoms : array of shapely geometries
        Valid geometries in ``crs``, in any mix of types (multi-parts and collections are split).
    crs, target : pyproj.CRS
        From and to.
    target_bounds : (xmin, ymin, xmax, ymax)
        The scene's bounds in ``target``; a geographic scene gets each part at every multiple of 360
        degrees of longitude that touches them.
    what : str
        Names the source in the warning (``"vector file roi.gpkg"``).

    Returns
    -------
    array of shapely geometries
        Points, lines and polygons in ``target`` with finite coordinates; parts that cross the
        antimeridian are continuous in longitude (they may go past 180).

    Notes
    -----
    Vertices are moved, edges are not densified. Warns with
    :class:`~geomask.errors.OutsideProjectionWarning` when parts were clipped or dropped.
    """
    parts = shapely.get_parts(shapely.get_parts(geoms))
    parts = parts[~shapely.is_empty(parts)]
    transformer = Transformer.from_crs(crs, target, always_xy=True)
    moved, finite = _move(parts, transformer)
    clipped = dropped = 0
    if not finite.all():
        kept = []
        for part in parts[~finite]:
            inside = _clip_to_valid_area(part, transformer)
            inside_moved, inside_finite = _move(inside, transformer)
            kept.append(inside_moved[inside_finite])
            clipped += bool(inside_finite.any())
            dropped += not inside_finite.any()
        moved = np.concatenate([moved[finite], *kept])
        warnings.warn(
            f"{what}: {clipped + dropped} geometr{'y' if clipped + dropped == 1 else 'ies'} reach beyond "
            f"the area where {crs_name(crs)} -> {crs_name(target)} is defined (e.g. beyond the visible "
            f"disk of a geostationary projection): {clipped} clipped to it, {dropped} dropped; "
            f"clip the file to the scene's area to silence this",
            OutsideProjectionWarning,
            stacklevel=4,
        )
    if _is_degrees(target):
        sources = parts if finite.all() else None
        wide = shapely.bounds(moved)
        for i in np.flatnonzero(wide[:, 2] - wide[:, 0] > 180.0):  # only these can hold a wrapped step
            moved[i] = _unwrap(moved[i], None if sources is None else sources[i], transformer)
    return place_in_turns(moved, target, target_bounds)


def place_in_turns(
    parts: NDArray[np.object_], crs: CRS, bounds: tuple[float, float, float, float]
) -> NDArray[np.object_]:
    """Parts copied to every multiple of 360 degrees of longitude that touches ``bounds``.

    For a CRS in lon/lat degrees only (other CRSs: ``parts`` unchanged). A part at lon -179 lands at 181
    on a scene covering lon 170..190; a part at 179..181 lands twice on a -180..180 scene (its copy at
    -181..-179), and the scene's edges cut both.
    """
    if parts.size == 0 or not _is_degrees(crs):
        return parts
    box = shapely.bounds(parts)
    lo = np.ceil((bounds[0] - box[:, 2]) / 360.0).astype(int)
    hi = np.floor((bounds[2] - box[:, 0]) / 360.0).astype(int)
    out = [parts[(lo <= 0) & (hi >= 0)]]
    for turn in sorted(set(range(int(lo.min()), int(hi.max()) + 1)) - {0}):
        chosen = parts[(lo <= turn) & (turn <= hi)]
        if chosen.size:
            out.append(shapely.transform(chosen, lambda xy, shift=360.0 * turn: xy + np.array([shift, 0.0])))
    return np.concatenate(out)


def _move(
    parts: NDArray[np.object_], transformer: Transformer
) -> tuple[NDArray[np.object_], NDArray[np.bool_]]:
    """Parts transformed, and which came out with finite coordinates (the others are returned as is)."""
    coords, index = shapely.get_coordinates(parts, return_index=True)
    x, y = transformer.transform(coords[:, 0], coords[:, 1], errcheck=False)
    xy = np.column_stack((np.asarray(x, dtype=float), np.asarray(y, dtype=float)))
    bad = ~np.isfinite(xy).all(axis=1)
    finite = np.ones(parts.size, dtype=bool)
    finite[index[bad]] = False
    moved = parts.copy()
    if finite.any():
        ok = finite[index]
        moved[finite] = shapely.transform(parts[finite], lambda _: xy[ok])
    return moved, finite


def _clip_to_valid_area(part: shapely.Geometry, transformer: Transformer) -> NDArray[np.object_]:
    """The single parts of ``part`` inside the sampled area where ``transformer`` gives finite results.

    A cell of the sampling grid counts as valid when its four corners transform finitely; the union of
    valid cells is the clip region, so the clip follows the valid area's edge to within one cell.
    """
    from affine import Affine
    from rasterio.features import shapes

    xmin, ymin, xmax, ymax = part.bounds
    pad = 1e-9 * max(abs(xmax - xmin), abs(ymax - ymin), 1.0)
    xmin, ymin, xmax, ymax = xmin - pad, ymin - pad, xmax + pad, ymax + pad
    n = VALID_AREA_SAMPLES
    xs = np.linspace(xmin, xmax, n + 1)
    ys = np.linspace(ymax, ymin, n + 1)  # north first, as raster rows
    gx, gy = np.meshgrid(xs, ys)
    tx, ty = transformer.transform(gx.ravel(), gy.ravel(), errcheck=False)
    ok = (np.isfinite(tx) & np.isfinite(ty)).reshape(n + 1, n + 1)
    cells = ok[:-1, :-1] & ok[1:, :-1] & ok[:-1, 1:] & ok[1:, 1:]
    if not cells.any():
        return np.array([], dtype=object)
    with LIBRARY_CATCHES, ignored(DeprecationWarning):  # rasterio's own use of Affine * tuple
        found = shapes(
            cells.astype(np.uint8),
            mask=cells,
            transform=Affine((xmax - xmin) / n, 0.0, xmin, 0.0, -(ymax - ymin) / n, ymax),
        )
        region = shapely.union_all([shapely.geometry.shape(geom) for geom, value in found if value])
    inside = shapely.intersection(shapely.make_valid(part), region)
    pieces = shapely.get_parts(shapely.get_parts(inside))
    pieces = pieces[~shapely.is_empty(pieces)]
    if shapely.get_type_id(part) == _POLYGON:
        pieces = pieces[shapely.get_type_id(pieces) == _POLYGON]  # no slivers of edge lines
    return pieces


def _is_degrees(crs: CRS) -> bool:
    """True for a geographic CRS whose longitude is in degrees (where 360 is a full turn)."""
    return bool(crs.is_geographic) and any(
        axis.unit_name.startswith("degree") for axis in crs.axis_info if axis.direction in ("east", "west")
    )


def _unwrap(
    part: shapely.Geometry, source: shapely.Geometry | None, transformer: Transformer
) -> shapely.Geometry:
    """``part`` with each ring's or line's longitudes unwrapped (no step over 180 degrees)."""
    kind = shapely.get_type_id(part)
    if kind in _LINES:
        xy = shapely.get_coordinates(part)
        xy[:, 0] = np.unwrap(xy[:, 0], period=360.0)
        return shapely.linestrings(xy)
    if kind != _POLYGON:
        return part
    shell = shapely.get_coordinates(shapely.get_exterior_ring(part))
    shell[:, 0] = np.unwrap(shell[:, 0], period=360.0)
    turn = shell[-1, 0] - shell[0, 0]
    if abs(turn) > 180.0:  # the ring goes once around a pole: close it through that pole
        pole = _enclosed_pole(source, transformer, shell)
        shell = np.vstack([shell, [[shell[-1, 0], pole], [shell[0, 0], pole]], shell[:1]])
    centre = (shell[:, 0].min() + shell[:, 0].max()) / 2
    holes = []
    for k in range(shapely.get_num_interior_rings(part)):
        hole = shapely.get_coordinates(shapely.get_interior_ring(part, k))
        hole[:, 0] = np.unwrap(hole[:, 0], period=360.0)
        hole[:, 0] += 360.0 * round((centre - hole[:, 0].mean()) / 360.0)
        holes.append(hole)
    return shapely.make_valid(shapely.Polygon(shell, holes))


def _enclosed_pole(
    source: shapely.Geometry | None, transformer: Transformer, shell: NDArray[np.float64]
) -> float:
    """Latitude (90 or -90) of the pole a ring around a pole encloses."""
    if source is not None:
        for lat in (90.0, -90.0):
            x, y = transformer.transform(0.0, lat, direction="INVERSE", errcheck=False)
            if math.isfinite(x) and math.isfinite(y) and source.contains(shapely.Point(x, y)):
                return lat
    return 90.0 if shell[:, 1].mean() >= 0 else -90.0
