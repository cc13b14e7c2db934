"""Vector regions of interest: polygons, lines and points from a file, burned window by window.

:class:`VectorSource` names a vector file (GeoPackage, GeoJSON, Shapefile, anything GDAL/OGR reads).
:meth:`VectorSource.bind` reads it once with geopandas/pyogrio, repairs invalid geometries, reprojects
them to the scene's CRS, applies the optional buffer, moves them into the scene's *pixel space* and keeps
only those that touch the grid. :class:`BoundVectorMask` then burns them for any window with
``rasterio.features.rasterize``. Everything after reading and repairing is :func:`bind_geometries`, which
other geometry sources (:class:`~geomask.masks.bbox.BboxSource`) share.

Tile invariance
---------------
The engine renders windows of arbitrary sizes and offsets, and a pixel's value must never depend on the
window it was rendered in. Rasterizing each requested window on its own does not guarantee that: GDAL
computes edge crossings in the window's local coordinates, and a vertex or edge lying exactly on a pixel
edge or centre may fall on either side depending on the window's origin (``all_touched=True`` is the most
sensitive, but the pixel-centre rule has ties too). The procedure is therefore:

1. In :meth:`VectorSource.bind`, transform every geometry once with the inverse grid transform, so that
   coordinates are (column, row) of the grid; nothing is transformed again afterwards.
2. Split the grid into fixed rasterization blocks of :data:`BLOCK_SIZE` x :data:`BLOCK_SIZE` pixels at
   multiples of :data:`BLOCK_SIZE` from the grid origin (edge blocks are cut to the grid). A block is
   rasterized in pixel space with the pure translation ``Affine.translation(block_col, block_row)``,
   burning the geometries a STRtree reports as intersecting that block.
3. ``render(window)`` rasterizes every block the window overlaps and copies out the overlapping part. A
   pixel's value is thus a function of its block alone, whatever the window, so any tiling of the grid
   assembles to the same bytes as a whole-scene render; a block burned is kept for the same geometries
   (:mod:`geomask.masks.blockcache`). A window that intersects no geometry burns nothing.

Because every block is rasterized from the same pixel-space coordinates with an integer translation, exact
ties (an edge through pixel centres, a vertex on a pixel corner) are decided the same way in every block
and for every block size. A whole-grid ``rasterize`` in map coordinates may decide such ties differently;
for any other geometry the result equals it pixel for pixel.
"""

from __future__ import annotations

import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from affine import Affine
from numpy.typing import NDArray
from pyproj import CRS
from pyproj.exceptions import CRSError
from rasterio.errors import NotGeoreferencedWarning
from rasterio.features import rasterize
from rasterio.windows import Window

from geomask.errors import GridError, MaskError, NoOverlapWarning, RepairedGeometryWarning
from geomask.grid import Grid
from geomask.masks._where import WHERE_TIME_LIMIT, read_with_where
from geomask.masks.base import BoundMask, MaskContext, MaskSource
from geomask.masks.blockcache import BLOCKS, geometry_digest
from geomask.masks.extent import bounded_buffer, clip_far
from geomask.masks.readcache import cached_read
from geomask.masks.reproject import place_in_turns, reproject_parts
from geomask.messages import crs_name, crs_problem, name_too_long
from geomask.threadwarnings import LIBRARY_CATCHES, ignored, recorded

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = ["BLOCK_SIZE", "BoundVectorMask", "VectorSource", "bind_geometries", "require_north_up"]

BLOCK_SIZE = 512
"""Side, in pixels, of the grid-aligned blocks vector masks are rasterized in. Any size gives the same mask;
a block costs one ``rasterize`` call (~0.25 ms, GIL held): 512 renders a 1024 window in 4, not 16."""

_POLYGONAL = (3, 6)  # shapely type ids of Polygon and MultiPolygon


@dataclass(frozen=True)
class VectorSource(MaskSource):
    """Pixels covered by the features of a vector file.

    Parameters
    ----------
    path : str or Path
        The vector file (any OGR format: GeoPackage, GeoJSON, Shapefile ...).
    layer : str, int or None
        Layer name or index; required when the file has several layers.
    all_touched : bool
        False (default): a pixel is selected when its centre lies inside a polygon. True: every pixel a
        geometry touches is selected. Lines and points always burn the pixels they touch.
    where : str or None
        Attribute filter in the OGR SQL dialect of the file, e.g. ``"landcover = 'forest'"``.
    buffer : float or None
        Buffer distance applied after reprojection, in units of the *scene's* CRS (metres for UTM);
        negative shrinks polygons (and erases lines and points).
    crs : str or None
        CRS to assume when the file declares none (``"EPSG:32618"``). It must agree with the file's CRS
        when the file has one.
    require_overlap : bool
        Raise :class:`~geomask.errors.MaskError` instead of warning when no feature touches the scene.
    attribute_equals : (str, str) or None
        ``(attribute, text)``: keep only features whose attribute, written as text, equals ``text``
        (after ``where``). Integers are written without decimals (``3``), so YAML class keys, always
        text, match integer and text attributes alike. Used by per-class kernels (``kernels_by``).
    where_time_limit : float
        Seconds a read with ``where`` may take (default :data:`~geomask.masks._where.WHERE_TIME_LIMIT`).
        Such a read runs in a child process, so that a runaway SQL expression (a recursive query on a
        GeoPackage) is stopped by the limit, Ctrl-C or SIGTERM.

    Notes
    -----
    Reprojection moves vertices only (edges are not densified), so long edges reprojected between very
    different CRSs are straight in the scene's CRS. Invalid geometries are repaired with
    ``shapely.make_valid`` (polygons keep only their polygonal parts) and a
    :class:`~geomask.errors.RepairedGeometryWarning` says how many. Features without geometry are
    ignored.
    """

    path: str | Path
    layer: str | int | None = None
    all_touched: bool = False
    where: str | None = None
    buffer: float | None = None
    crs: str | None = None
    require_overlap: bool = False
    attribute_equals: tuple[str, str] | None = None
    where_time_limit: float = WHERE_TIME_LIMIT

    def describe(self) -> str:
        """``vector(NAME)`` plus the options that change the selection (reads nothing)."""
        extras = [
            f"{key}={value}"
            for key, value in (("layer", self.layer), ("where", self.where), ("buffer", self.buffer))
            if value is not None
        ]
        if self.attribute_equals is not None:
            extras.append(f"{self.attribute_equals[0]}={self.attribute_equals[1]}")
        if self.all_touched:
            extras.append("all_touched")
        return f"vector({', '.join([_name(self.path), *extras])})"

    def bind(self, context: MaskContext) -> BoundVectorMask:
        """Read, repair, reproject and buffer the features and move them into the grid's pixel space.

        Raises
        ------
        GridError
            The grid is rotated or sheared.
        MaskError
            The file is missing, unreadable, empty, multi-layer without ``layer``, has no CRS, cannot be
            placed on the grid, or (with ``require_overlap``) does not touch the scene.
        """
        path = str(self.path)
        what = f"vector file {path}"
        require_north_up(context.grid, what)
        how = (self.layer, self.where, self.attribute_equals)
        geoms, declared, repaired = cached_read(path, how, lambda: self._features(path))
        feature_count = int(geoms.size)
        if repaired:
            warnings.warn(
                f"repaired {repaired} invalid geometr{'y' if repaired == 1 else 'ies'} of {feature_count} "
                f"in {path} with shapely.make_valid; fix the file to silence this",
                RepairedGeometryWarning,
                stacklevel=2,
            )
        return bind_geometries(
            geoms,
            self._crs(declared, path),
            context,
            what=what,
            label=_name(self.path),
            all_touched=self.all_touched,
            buffer=self.buffer,
            require_overlap=self.require_overlap,
            feature_count=feature_count,
            fix="check the file, its CRS and layer",
        )

    def _features(self, path: str) -> tuple[NDArray[np.object_], CRS | None, int]:
        """The repaired geometries of the features read (none missing or empty), the file's CRS, and how
        many geometries were repaired (kept per file by :func:`~geomask.masks.readcache.cached_read`)."""
        frame = self._read(path)
        geoms = frame.geometry.to_numpy()
        geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
        if geoms.size == 0:
            raise MaskError(f"vector file {path} has no features with a geometry; add some or choose another")
        geoms, repaired = _repair(geoms)
        return geoms, frame.crs, repaired

    def _read(self, path: str) -> gpd.GeoDataFrame:
        """The features of the chosen layer, filtered by ``where``; errors as MaskError."""
        if "://" not in path and not path.startswith("/vsi") and not os.path.exists(path):
            too_long = name_too_long(path)
            if too_long is not None:
                raise MaskError(f"vector file {path}: {too_long}; shorten the mask's vector: path")
            raise MaskError(
                f"vector file not found: {path}; check the mask's vector: path (relative paths resolve "
                "from the YAML file's folder)"
            )
        if "://" not in path and not path.startswith("/vsi"):
            mode = os.stat(path).st_mode
            # A FIFO or device would block (or never end) in GDAL's open, deaf to Ctrl-C; a folder is
            # fine (a FileGDB, a folder of shapefiles).
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a device or socket"
                raise MaskError(f"vector file {path} is {kind}, not a file; give the path of a vector file")
        import pyogrio  # here, not at the top: it imports geopandas and pandas (~0.2 s)

        read_errors = _read_errors()
        # GDAL's warnings about a file it then fails to open are noise next to the error: shown only
        # when the file opens.
        with recorded() as caught:  # this thread's warnings only: scenes are read in several at once
            try:
                layers = pyogrio.list_layers(path)
            except read_errors as e:
                raise MaskError(
                    f"cannot read {path} as a vector file (GeoPackage, GeoJSON, Shapefile ...): {e}; "
                    "check the file (re-export it) or choose another"
                ) from e
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        names = [str(name) for name in layers[:, 0]] if len(layers) else []
        listing = ", ".join(names)
        if not names:
            raise MaskError(f"vector file {path} has no layers (no features); add some or choose another")
        if self.layer is None and len(names) > 1:
            raise MaskError(f"vector file {path} has {len(names)} layers ({listing}); choose one with layer:")
        if isinstance(self.layer, str) and self.layer not in names:
            raise MaskError(f"vector file {path} has no layer {self.layer}; its layers are {listing}")
        if isinstance(self.layer, int) and not 0 <= self.layer < len(names):
            raise MaskError(
                f"vector file {path} has no layer index {self.layer}; use 0..{len(names) - 1} ({listing})"
            )
        kwargs: dict[str, Any] = {"engine": "pyogrio", "layer": self.layer}
        if self.where is not None:
            kwargs["where"] = self.where
            frame, failure = read_with_where(path, kwargs, self.where_time_limit, f"vector file {path}")
            if failure is not None:
                layer = names[self.layer] if isinstance(self.layer, int) else (self.layer or names[0])
                raise MaskError(
                    f"where: {self.where} is not a valid filter for layer {layer} of vector file {path} "
                    f"({_where_reason(failure, self.where)}); its fields are {_fields(path, layer)}"
                )
        else:
            try:
                frame = _geopandas().read_file(path, **kwargs)
            except (*read_errors, ValueError) as e:
                raise MaskError(f"cannot read features of vector file {path}: {e}") from e
        if len(frame) == 0:
            if self.where is not None:
                raise MaskError(f"no feature of vector file {path} matches where: {self.where}")
            raise MaskError(f"vector file {path} is empty (no features); add some or choose another")
        if self.attribute_equals is not None:
            frame = _attribute_equals(frame, path, *self.attribute_equals)
        return frame

    def _crs(self, declared: CRS | None, path: str) -> CRS | None:
        """The CRS of the file's coordinates: its own, or ``crs`` when it declares none."""
        if self.crs is None:
            return declared
        try:
            assumed = CRS.from_user_input(self.crs)
        except CRSError as e:
            raise MaskError(
                f"crs: {crs_name(self.crs)} given for vector file {path} is not a valid CRS "
                f"({crs_problem(e)})"
            ) from e
        if declared is None:
            return assumed
        if not declared.equals(assumed, ignore_axis_order=True):
            raise MaskError(
                f"vector file {path} declares CRS {crs_name(declared)}, which differs from crs: "
                f"{crs_name(self.crs)}; remove crs: (it only applies to files without a CRS)"
            )
        return declared


def _where_reason(message: str, where: str) -> str:
    """The cause in a driver's error about a ``where:``, without the SQL it wraps around it.

    SQLite-based drivers (GeoPackage) say ``Failed to prepare SQL SELECT ... WHERE <where>: <cause>``;
    pyogrio says ``Invalid SQL query for layer 'b'name'': '<where>'`` for OGR SQL (GeoJSON, Shapefile).
    """
    if "Invalid SQL query" in message:
        return "not a valid OGR SQL condition"
    marker = f"{where}: "
    return message.rsplit(marker, 1)[-1] if marker in message else message.splitlines()[0]


def _fields(path: str, layer: str) -> str:
    """The layer's attribute names, comma separated (for messages), or "none"."""
    import pyogrio

    try:
        fields = [str(name) for name in pyogrio.read_info(path, layer=layer)["fields"]]
    except Exception:  # a message must not fail for want of its listing
        return "unknown (the layer cannot be listed)"
    return ", ".join(fields) or "none"


def _geopandas() -> Any:
    """geopandas, imported on first use (as pyogrio is): it brings pandas (~0.2 s), which runs
    with raster masks only, and ``geomask --help``, do not need."""
    import geopandas

    return geopandas


def _read_errors() -> tuple[type[Exception], ...]:
    """pyogrio's errors for a file or layer it cannot read."""
    from pyogrio.errors import CRSError, DataLayerError, DataSourceError, FieldError, GeometryError

    return (DataSourceError, DataLayerError, FieldError, GeometryError, CRSError)


def _attribute_equals(frame: gpd.GeoDataFrame, path: str, attribute: str, text: str) -> gpd.GeoDataFrame:
    """The features whose ``attribute``, as text, is ``text``; MaskError when none or no such column."""
    columns = [str(c) for c in frame.columns if c != frame.geometry.name]
    if attribute not in columns:
        listing = ", ".join(columns) or "none"
        raise MaskError(f"vector file {path} has no attribute {attribute}; its attributes are {listing}")
    as_text = [_as_text(value) for value in frame[attribute]]
    chosen = frame[np.array([value == text for value in as_text], dtype=bool)]
    if len(chosen) == 0:
        present = ", ".join(f"'{v}'" for v in sorted({v for v in as_text if v})[:10])
        raise MaskError(
            f"no feature of vector file {path} has {attribute} = '{text}'; its values include {present}"
        )
    return chosen


def _as_text(value: object) -> str:
    """An attribute value as YAML would write it: whole floats without decimals, missing values empty."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def require_north_up(grid: Grid, what: str) -> None:
    """Raise :class:`~geomask.errors.GridError` naming ``what`` when ``grid`` is rotated or sheared."""
    if not grid.is_rectilinear:
        raise GridError(
            f"scene grid is rotated or sheared (transform {tuple(grid.transform)[:6]}); {what} needs a "
            f"north-up grid: warp the scene first (gdalwarp)"
        )


def bind_geometries(
    geoms: NDArray[np.object_],
    crs: CRS | None,
    context: MaskContext,
    *,
    what: str,
    label: str,
    all_touched: bool = False,
    buffer: float | None = None,
    require_overlap: bool = False,
    feature_count: int | None = None,
    fix: str = "check its coordinates and CRS",
) -> BoundVectorMask:
    """Bind valid, non-empty shapely geometries given in ``crs`` to the grid of ``context``.

    The shared second half of every vector-like source (files, bboxes): reproject to the grid's CRS,
    buffer (in the grid CRS's units), move into pixel space and keep the parts that touch the grid.

    Parameters
    ----------
    geoms : array of shapely geometries
        Valid geometries in ``crs`` (None: no CRS, only allowed when the grid has none either).
    crs : pyproj.CRS or None
        The CRS of their coordinates.
    context : MaskContext
        The scene the mask is bound to.
    what : str
        Names the source in error and warning messages (``"vector file roi.gpkg"``).
    label : str
        Short name for :meth:`BoundVectorMask.describe`.
    all_touched, buffer, require_overlap
        As for :class:`VectorSource`.
    feature_count : int or None
        Number of features, for :meth:`BoundVectorMask.describe` (default: ``len(geoms)``).
    fix : str
        What to check, appended to the no-overlap warning or error.

    Raises
    ------
    GridError
        The grid is rotated or sheared.
    MaskError
        One side has a CRS and the other none, or (with ``require_overlap``) nothing touches the scene.
    """
    grid = context.grid
    require_north_up(grid, what)
    count = len(geoms)
    parts = _to_grid_crs(geoms, crs, grid, what)
    if buffer is not None:
        parts = _explode(shapely.buffer(parts, bounded_buffer(parts, buffer, grid.bounds)))
    pixel_parts = _to_pixels(parts, grid.transform)
    # Reprojection outside a CRS's domain yields infinite coordinates: such parts cannot be burned.
    finite = np.isfinite(shapely.bounds(pixel_parts)).all(axis=1)
    in_grid = shapely.intersects(pixel_parts, shapely.box(0, 0, grid.width, grid.height))
    pixel_parts = clip_far(pixel_parts[finite & in_grid], grid.shape)
    if pixel_parts.size == 0:
        message = (
            f"{what} does not overlap the scene (grid bounds {grid.bounds}), so the scene passes through "
            f"unchanged; {fix}"
        )
        if require_overlap:
            raise MaskError(
                f"{what} does not overlap the scene (grid bounds {grid.bounds}); {fix}, or set "
                "require_overlap: false to copy such scenes unchanged"
            )
        warnings.warn(message, NoOverlapWarning, stacklevel=3)
    return BoundVectorMask(
        pixel_parts,
        grid.shape,
        all_touched=all_touched,
        label=label,
        feature_count=count if feature_count is None else feature_count,
    )


def _to_grid_crs(geoms: NDArray[np.object_], crs: CRS | None, grid: Grid, what: str) -> NDArray[np.object_]:
    """Single-part geometries moved from ``crs`` to the grid's CRS (see :mod:`geomask.masks.reproject`:
    continuous across the antimeridian, placed at every 360-degree turn a geographic grid covers, clipped
    to where the transformation is defined)."""
    if crs is None:
        if grid.crs is not None:
            raise MaskError(f"{what} has no CRS; add crs: EPSG:XXXX (the CRS its coordinates are in)")
        # Neither side is georeferenced: the coordinates are taken as the grid's own x/y.
        return _explode(geoms)
    if grid.crs is None:
        raise MaskError(
            f"the scene has no CRS, so {what} ({crs_name(crs)}) cannot be placed on it; georeference the "
            f"scene or use coordinates without a CRS"
        )
    target = CRS.from_user_input(grid.crs)
    if crs.equals(target):
        return place_in_turns(_explode(geoms), target, grid.bounds)
    return reproject_parts(geoms, crs, target, grid.bounds, what)


class BoundVectorMask(BoundMask):
    """Geometries in a grid's pixel space, rasterized in fixed blocks (see the module docstring).

    Thread-safe and picklable: it holds shapely geometries and a STRtree (rebuilt after unpickling),
    never a file handle or a burned block (:mod:`~geomask.masks.blockcache`). Memory: a block per call.

    Parameters
    ----------
    geometries : array of shapely geometries
        Coordinates are (column, row) of the grid: pixel (r, c) covers [c, c+1] x [r, r+1].
    shape : (int, int)
        The grid's (rows, cols).
    all_touched : bool
        Burn every pixel a geometry touches instead of pixels whose centre is inside.
    block_size : int
        Side of the fixed rasterization blocks; only tests need another value than :data:`BLOCK_SIZE`.
    label, feature_count
        For :meth:`describe`.
    """

    def __init__(
        self,
        geometries: NDArray[np.object_],
        shape: tuple[int, int],
        *,
        all_touched: bool = False,
        block_size: int = BLOCK_SIZE,
        label: str = "vector",
        feature_count: int | None = None,
    ) -> None:
        if block_size < 1:
            raise MaskError(f"block_size must be at least 1, got {block_size}")
        self.geometries = np.asarray(geometries, dtype=object)
        self.shape = (int(shape[0]), int(shape[1]))
        self.all_touched = bool(all_touched)
        self.block_size = int(block_size)
        self.label = label
        self.feature_count = len(self.geometries) if feature_count is None else feature_count
        self._tree = shapely.STRtree(self.geometries)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_tree"]  # rebuilt on load: keeps the pickle to one copy of the geometries
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._tree = shapely.STRtree(self.geometries)

    @property
    def is_empty(self) -> bool:
        return self.geometries.size == 0

    def describe(self) -> str:
        """``vector(NAME, N features)``."""
        return f"vector({self.label}, {self.feature_count} feature{'' if self.feature_count == 1 else 's'})"

    def render(self, window: Window) -> NDArray[np.bool_]:
        row0, col0, height, width = self._check(window)
        out = np.zeros((height, width), dtype=bool)
        if height == 0 or width == 0 or not self._hits(row0, col0, height, width).size:
            return out
        size = self.block_size
        for block_row in range(row0 // size * size, row0 + height, size):
            for block_col in range(col0 // size * size, col0 + width, size):
                block = self._render_block(block_row, block_col)
                if block is None:
                    continue
                top, bottom = max(row0, block_row), min(row0 + height, block_row + block.shape[0])
                left, right = max(col0, block_col), min(col0 + width, block_col + block.shape[1])
                out[top - row0 : bottom - row0, left - col0 : right - col0] = block[
                    top - block_row : bottom - block_row, left - block_col : right - block_col
                ]
        return out

    def _check(self, window: Window) -> tuple[int, int, int, int]:
        """(row_off, col_off, height, width) as ints, inside the grid."""
        values = (window.row_off, window.col_off, window.height, window.width)
        row0, col0, height, width = (int(value) for value in values)
        rows, cols = self.shape
        if (
            (row0, col0, height, width) != values
            or min(row0, col0, height, width) < 0
            or row0 + height > rows
            or col0 + width > cols
        ):
            raise MaskError(
                f"{window} is not an integer window inside the {rows}x{cols} grid of {self.label}"
            )
        return row0, col0, height, width

    def _hits(self, row0: int, col0: int, height: int, width: int) -> NDArray[np.intp]:
        """Sorted indices of the geometries intersecting the pixel box."""
        box = shapely.box(col0, row0, col0 + width, row0 + height)
        return np.sort(self._tree.query(box, predicate="intersects"))

    def _render_block(self, block_row: int, block_col: int) -> NDArray[np.bool_] | None:
        """The fixed block whose top-left pixel is (block_row, block_col), or None if nothing touches it."""
        height = min(self.block_size, self.shape[0] - block_row)
        width = min(self.block_size, self.shape[1] - block_col)
        hits = self._hits(block_row, block_col, height, width)
        if hits.size == 0:
            return None
        key = (block_row, block_col, height, width, self.all_touched, geometry_digest(self.geometries[hits]))
        if (kept := BLOCKS.get(key)) is not None:  # this block of these geometries, bit for bit
            return kept
        # The block at the grid origin has the identity transform, which GDAL calls "not georeferenced".
        with LIBRARY_CATCHES, ignored(NotGeoreferencedWarning):  # this thread's only; see LIBRARY_CATCHES
            burned = rasterize(
                self.geometries[hits],
                out_shape=(height, width),
                transform=Affine.translation(block_col, block_row),
                all_touched=self.all_touched,
                fill=0,
                default_value=1,
                dtype="uint8",
            )
        return BLOCKS.put(key, burned.view(bool))


def _name(path: str | Path) -> str:
    """The file name of a path or URL, for labels."""
    return Path(str(path)).name or str(path)


def _to_pixels(geoms: NDArray[np.object_], transform: Affine) -> NDArray[np.object_]:
    """Geometries with (x, y) in the grid's CRS moved to (column, row) of the grid (2D)."""
    inverse = ~transform

    def apply(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        x, y = xy[:, 0], xy[:, 1]
        return np.column_stack(
            (inverse.a * x + inverse.b * y + inverse.c, inverse.d * x + inverse.e * y + inverse.f)
        )

    return shapely.transform(geoms, apply)


def _explode(geoms: NDArray[np.object_]) -> NDArray[np.object_]:
    """Single-part, non-empty geometries (multi-parts and collections split, twice for nested ones)."""
    parts = shapely.get_parts(shapely.get_parts(geoms))
    return parts[~shapely.is_empty(parts)]


def _repair(geoms: NDArray[np.object_]) -> tuple[NDArray[np.object_], int]:
    """Geometries made valid, and how many needed it; repaired polygons keep only polygonal parts."""
    with LIBRARY_CATCHES:  # is_valid ignores GEOS's warnings with catch_warnings; scenes are read in threads
        invalid = np.flatnonzero(~shapely.is_valid(geoms))
    repaired = geoms.copy()
    for index in invalid:
        fixed = shapely.make_valid(geoms[index])
        if shapely.get_type_id(geoms[index]) in _POLYGONAL:
            # make_valid keeps collapsed spikes of a polygon as lines; an ROI polygon should not burn them.
            parts = _explode(np.array([fixed], dtype=object))
            fixed = shapely.multipolygons(parts[np.isin(shapely.get_type_id(parts), _POLYGONAL)])
        repaired[index] = fixed
    return repaired, int(invalid.size)
