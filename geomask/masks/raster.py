"""Class rasters (the output of a segmentation): pixels whose class is one of some values or in a range.

Quality layers (bit flags, e.g. Landsat's QA_PIXEL) select pixels by bits instead: ``bits`` or
``bitfield`` (see :mod:`geomask.masks.bits`), tested on the integer value looked up for each pixel.

:class:`RasterSource` names a single-band (or chosen-band) class raster. It may lie on any grid: another
CRS, resolution, extent or alignment than the scene's. :class:`BoundRasterMask` resamples it to the scene's
grid with nearest neighbour, window by window, without ever reading the whole class raster.

Nearest-neighbour lookup, and why not a WarpedVRT
-------------------------------------------------
For every scene pixel of the window, the centre ``(col + 0.5, row + 0.5)`` is moved to the scene's CRS
with the scene transform, to the class raster's CRS with PROJ (only when the CRSs differ), and to a class
pixel with the inverse of the class raster's transform; ``floor`` gives the class pixel whose area holds
that point. The bounding box of the class pixels a window needs is read in one ``read`` (split in halves
while it exceeds :data:`MAX_READ_PIXELS`, for class rasters much finer than the scene) and the values are
gathered with numpy indexing.

Every step is a per-pixel computation on the pixel's own integer (row, col), so a pixel's class never
depends on the window it is rendered in (tile invariance). A ``WarpedVRT`` read per window gives the same
answer in small cases, but GDAL's warper approximates the coordinate transformation piecewise linearly
over each requested chunk (``error_threshold``), so pixels near class edges flip with the window: for
1 km UTM pixels over a 0.01 degree class raster (GDAL 3.x), 1.2 % of the pixels read through 37- or
128-pixel windows differed from one whole read.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from numpy.typing import NDArray
from pyproj import CRS, Transformer
from rasterio.errors import RasterioError
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from geomask.errors import InputError, MaskError, NoOverlapWarning, RunError
from geomask.grid import Grid
from geomask.io import open_scene
from geomask.masks._window import check_window
from geomask.masks.base import BoundMask, MaskContext, MaskSource
from geomask.masks.bits import BitSelection
from geomask.messages import crs_name, plain
from geomask.pixels import effective_nodata, valid_pixels

__all__ = ["MAX_READ_PIXELS", "BoundRasterMask", "NearestSampler", "RasterSource"]

MAX_READ_PIXELS = 1 << 22
"""Most class-raster pixels read at once for one window (4 Mi; a uint8 class raster reads 4 MiB)."""


@dataclass(frozen=True)
class RasterSource(MaskSource):
    """Pixels whose class in a class raster is one of ``values`` or within ``range``, or whose bits match.

    Parameters
    ----------
    path : str or Path
        The class raster (a GeoTIFF, e.g. the output of a segmentation).
    values : sequence of numbers or None
        Class values that are selected.
    range : (lo, hi) or None
        Selects classes ``lo <= value <= hi`` (both inclusive).
    bits : sequence of int or None
        Selects pixels with any of these bits set (0 = least significant); integer rasters only.
    bitfield : (start, length, values) or None
        Selects pixels whose ``length``-bit field from bit ``start`` is one of ``values`` (see
        :class:`~geomask.masks.bits.BitSelection`). Exactly one of ``values``, ``range``, ``bits``
        and ``bitfield`` must be given.
    band : int
        1-based band of the class raster holding the classes.

    Raises
    ------
    MaskError
        On construction: not exactly one selection, an empty ``values``, a ``range`` that is not two
        numbers ``lo <= hi``, bits outside 0..63, or a band below 1. On :meth:`bind`: bits on a float
        raster or beyond its dtype's width.

    Notes
    -----
    The class raster is resampled to the scene's grid by nearest neighbour: each scene pixel takes the
    class of the class-raster pixel under its centre (see the module docstring). Scene pixels whose
    centre falls outside the class raster, and class pixels equal to its nodata value (or NaN), are
    never selected. No class raster is held in memory; each window reads only the class pixels under it.
    """

    path: str | Path
    values: Sequence[float] | None = None
    range: tuple[float, float] | None = None
    band: int = 1
    bits: Sequence[int] | None = None
    bitfield: tuple[int, int, Sequence[int]] | None = None

    def __post_init__(self) -> None:
        name = _name(self.path)
        given = [self.values, self.range, self.bits, self.bitfield]
        if sum(item is not None for item in given) != 1:
            raise MaskError(
                f"class raster {name}: give exactly one of values: [..] (class values to select), "
                f"range: [lo, hi], bits: [..] (bit flags) or bitfield: {{start, length, values}}"
            )
        if self.bits is not None or self.bitfield is not None:
            try:
                selection = BitSelection(self.bits, self.bitfield)  # type: ignore[arg-type]
            except MaskError as e:
                raise MaskError(f"class raster {name}: {e}") from e
            object.__setattr__(self, "bits", selection.bits)
            object.__setattr__(self, "bitfield", selection.bitfield)
        if self.values is not None:
            try:
                values = tuple(float(value) for value in self.values)
            except (TypeError, ValueError) as e:
                raise MaskError(
                    f"class raster {name}: values must be numbers, got {plain(self.values)}"
                ) from e
            if not values:
                raise MaskError(f"class raster {name}: values is empty; list the class values to select")
            object.__setattr__(self, "values", values)
        if self.range is not None:
            try:
                lo, hi = (float(value) for value in self.range)
            except (TypeError, ValueError) as e:
                raise MaskError(
                    f"class raster {name}: range must be [lo, hi], got {plain(self.range)}"
                ) from e
            if not lo <= hi:
                raise MaskError(f"class raster {name}: range [{lo}, {hi}] needs lo <= hi")
            object.__setattr__(self, "range", (lo, hi))
        if isinstance(self.band, bool) or not isinstance(self.band, int) or self.band < 1:
            raise MaskError(f"class raster {name}: band must be an integer from 1, got {plain(self.band)}")

    def describe(self) -> str:
        """``raster(NAME, values=[..])`` or ``raster(NAME, range=[lo, hi])`` (reads nothing)."""
        if self.values is not None:
            selection = "values=[" + ", ".join(f"{value:g}" for value in self.values) + "]"
        elif self.bit_selection is not None:
            selection = self.bit_selection.describe()
        else:
            lo, hi = self.range or (0.0, 0.0)
            selection = f"range=[{lo:g}, {hi:g}]"
        band = f", band={self.band}" if self.band != 1 else ""
        return f"raster({_name(self.path)}, {selection}{band})"

    @property
    def bit_selection(self) -> BitSelection | None:
        """The bit selection, or None for a class (values/range) selection."""
        if self.bits is None and self.bitfield is None:
            return None
        return BitSelection(self.bits, self.bitfield)  # type: ignore[arg-type]

    def bind(self, context: MaskContext) -> BoundRasterMask:
        """Read the class raster's header and check it can be placed on the scene's grid.

        Raises
        ------
        MaskError
            The file is missing or not a readable GeoTIFF, ``band`` exceeds its band count, bits are
            asked of a float band or beyond its width, or one of the class raster and the scene has a
            CRS and the other none.
        """
        # Absolute, so dask workers with another working directory open the same file.
        text = str(self.path)
        path = text if "://" in text or text.startswith("/vsi") else os.path.abspath(text)
        try:
            with open_scene(path) as ds:
                count, crs, transform = ds.count, ds.crs, ds.transform
                height, width, nodata, dtypes = ds.height, ds.width, ds.nodata, ds.dtypes
        except InputError as e:
            raise MaskError(f"class raster {e}") from e
        if self.band > count:
            raise MaskError(
                f"class raster {path} has {count} band{'' if count == 1 else 's'}, so band: {self.band} "
                f"does not exist; use 1..{count}"
            )
        bits = self.bit_selection
        problem = None if bits is None else bits.dtype_problem(dtypes[self.band - 1])
        if problem is not None:
            raise MaskError(f"class raster {path}: {problem}")
        grid = context.grid
        if crs is None and grid.crs is not None:
            raise MaskError(
                f"class raster {path} has no CRS but the scene has one; georeference it "
                "(gdal_edit.py -a_srs EPSG:XXXX) so it can be placed on the scene"
            )
        if crs is not None and grid.crs is None:
            raise MaskError(
                f"the scene has no CRS, so class raster {path} ({crs_name(crs)}) cannot be placed on it; "
                "georeference the scene or use a class raster without a CRS"
            )
        mask = BoundRasterMask(
            path,
            self.band,
            source_grid=Grid(crs, transform, height, width),
            target_grid=grid,
            nodata=effective_nodata(nodata, dtypes[self.band - 1]),
            values=None if self.values is None else tuple(self.values),
            range=self.range,
            bits=bits,
        )
        if mask.is_empty:
            warnings.warn(
                f"class raster {path} does not overlap the scene (grid bounds {grid.bounds}), so the scene "
                f"passes through unchanged; check the file and its CRS",
                NoOverlapWarning,
                stacklevel=2,
            )
        return mask


class NearestSampler:
    """Values of one band of a raster on another grid, by nearest neighbour at each target pixel's centre.

    The machinery of :class:`BoundRasterMask`, shared with the band-name expressions of products
    (:mod:`geomask.masks.assets`): for every target pixel of a window the centre is moved to the
    target CRS with the target transform, to the source CRS with PROJ (only when the CRSs differ) and
    to a source pixel with the inverse source transform; ``floor`` gives the source pixel whose area
    holds it. A pixel's value depends only on its own (row, col), never on the window.

    Parameters
    ----------
    path : str
        The source raster; opened in every :meth:`sample` call.
    band : int
        1-based band to read.
    source_grid, target_grid : Grid
        The source raster's grid and the target's (both with a CRS or neither).
    max_read_pixels : int
        Largest source block read at once (tests use small values).

    Notes
    -----
    Picklable and thread-safe: holds plain values, opens the file and builds its PROJ transformer
    inside each call. Memory per call: two float64 coordinate arrays of the window's size plus the
    source pixels under the window (at most ``max_read_pixels`` at a time). A source far finer than
    the target is read in many smaller pieces, down to one read per target pixel: slower, never larger.
    """

    what: str = "class raster"
    """What the source is, for messages."""

    def __init__(
        self,
        path: str,
        band: int,
        *,
        source_grid: Grid,
        target_grid: Grid,
        max_read_pixels: int = MAX_READ_PIXELS,
    ) -> None:
        self.path = path
        self.band = band
        self.source_grid = source_grid
        self.target_grid = target_grid
        self.max_read_pixels = max(1, int(max_read_pixels))
        self.reprojects = source_grid.crs is not None and not CRS.from_user_input(source_grid.crs).equals(
            CRS.from_user_input(target_grid.crs)
        )

    def footprints_miss(self) -> bool:
        """True when the target's footprint certainly misses the source (north-up grids only)."""
        source, target = self.source_grid, self.target_grid
        if not (source.is_rectilinear and target.is_rectilinear):
            return False
        bounds = target.bounds
        if self.reprojects:
            try:
                bounds = transform_bounds(target.crs, source.crs, *bounds, densify_pts=21)
            except (RasterioError, ValueError):
                return False
            if not all(math.isfinite(value) for value in bounds):
                return False
        left, bottom, right, top = bounds
        s_left, s_bottom, s_right, s_top = source.bounds
        return right <= s_left or left >= s_right or top <= s_bottom or bottom >= s_top

    def sample(self, row0: int, col0: int, height: int, width: int) -> tuple[NDArray[Any], NDArray[np.bool_]]:
        """The source values under the centres of a target window, and where those centres lie inside.

        Returns
        -------
        values : ndarray (height, width), the source band's dtype
            0 where ``inside`` is False.
        inside : bool ndarray (height, width)

        Raises
        ------
        RunError
            The source cannot be opened or read any more.
        """
        rows, cols, inside = self._source_pixels(row0, col0, height, width)
        if not inside.any():  # nothing to read: the file is not even opened
            return np.zeros((height, width)), inside
        try:
            with open_scene(self.path) as ds:
                values = np.zeros((height, width), dtype=ds.dtypes[self.band - 1])
                self._gather(ds, rows, cols, inside, values, slice(0, height), slice(0, width))
        except InputError as e:
            raise RunError(f"{self.what} {e} (it was readable when the run started)") from e
        return values, inside

    def _source_pixels(
        self, row0: int, col0: int, height: int, width: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]]:
        """(row, col) of the class pixel under each window pixel's centre, and which lie in the raster."""
        t = self.target_grid.transform
        centre_cols = (np.arange(col0, col0 + width, dtype=np.float64) + 0.5)[None, :]
        centre_rows = (np.arange(row0, row0 + height, dtype=np.float64) + 0.5)[:, None]
        xs = t.a * centre_cols + t.b * centre_rows + t.c
        ys = t.d * centre_cols + t.e * centre_rows + t.f
        if self.reprojects:
            transformer = Transformer.from_crs(self.target_grid.crs, self.source_grid.crs, always_xy=True)
            xs, ys = transformer.transform(xs, ys, errcheck=False)
            xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
        inverse: Affine = ~self.source_grid.transform
        with np.errstate(invalid="ignore"):
            src_cols = np.floor(inverse.a * xs + inverse.b * ys + inverse.c)
            src_rows = np.floor(inverse.d * xs + inverse.e * ys + inverse.f)
            inside = (
                (src_rows >= 0)
                & (src_rows < self.source_grid.height)
                & (src_cols >= 0)
                & (src_cols < self.source_grid.width)
            )
        rows = np.where(inside, src_rows, 0).astype(np.int64)
        cols = np.where(inside, src_cols, 0).astype(np.int64)
        return rows, cols, inside

    def _gather(
        self,
        ds: Any,
        rows: NDArray[np.int64],
        cols: NDArray[np.int64],
        inside: NDArray[np.bool_],
        classes: NDArray[Any],
        rs: slice,
        cs: slice,
    ) -> None:
        """Fill ``classes[rs, cs]`` where ``inside`` from one read, or split while the read is too big."""
        here = inside[rs, cs]
        if not here.any():
            return
        r, c = rows[rs, cs][here], cols[rs, cs][here]
        r_lo, r_hi, c_lo, c_hi = int(r.min()), int(r.max()), int(c.min()), int(c.max())
        n_rows, n_cols = rs.stop - rs.start, cs.stop - cs.start
        if (r_hi - r_lo + 1) * (c_hi - c_lo + 1) > self.max_read_pixels and n_rows * n_cols > 1:
            if n_rows >= n_cols:
                mid = rs.start + n_rows // 2
                halves = ((slice(rs.start, mid), cs), (slice(mid, rs.stop), cs))
            else:
                mid = cs.start + n_cols // 2
                halves = ((rs, slice(cs.start, mid)), (rs, slice(mid, cs.stop)))
            for half_rows, half_cols in halves:
                self._gather(ds, rows, cols, inside, classes, half_rows, half_cols)
            return
        read = Window(c_lo, r_lo, c_hi - c_lo + 1, r_hi - r_lo + 1)
        try:
            block = ds.read(self.band, window=read)
        except RasterioError as e:
            raise RunError(
                f"{self.what} {self.path}: cannot read rows {r_lo}..{r_hi}, cols {c_lo}..{c_hi} ({e}); "
                "the file is corrupt or truncated"
            ) from e
        classes[rs, cs][here] = block[r - r_lo, c - c_lo]


class BoundRasterMask(NearestSampler, BoundMask):
    """A class raster resampled by nearest neighbour to a target grid, window by window.

    Parameters
    ----------
    path : str
        The class raster; opened in every :meth:`render` call.
    band : int
        1-based band to read.
    source_grid, target_grid : Grid
        The class raster's grid and the scene's (both with a CRS or neither).
    nodata : float or None
        The class raster's nodata in its dtype (never selected).
    values, range, bits
        The selection, as for :class:`RasterSource` (exactly one given; ``bits`` a
        :class:`~geomask.masks.bits.BitSelection`).
    max_read_pixels : int
        Largest class-raster block read at once (tests use small values).

    Notes
    -----
    See :class:`NearestSampler` (picklable, thread-safe, memory per call).
    """

    def __init__(
        self,
        path: str,
        band: int,
        *,
        source_grid: Grid,
        target_grid: Grid,
        nodata: float | None,
        values: tuple[float, ...] | None = None,
        range: tuple[float, float] | None = None,
        bits: BitSelection | None = None,
        max_read_pixels: int = MAX_READ_PIXELS,
    ) -> None:
        if sum(item is not None for item in (values, range, bits)) != 1:
            raise MaskError(f"class raster {path}: give exactly one of values, range or bits")
        super().__init__(
            path, band, source_grid=source_grid, target_grid=target_grid, max_read_pixels=max_read_pixels
        )
        self.nodata = nodata
        self.values = values
        self.range = range
        self.bits = bits
        self._misses = self.footprints_miss()

    @property
    def is_empty(self) -> bool:
        """True when the scene's footprint certainly misses the class raster (north-up grids only)."""
        return self._misses

    def describe(self) -> str:
        return f"raster({_name(self.path)})"

    def render(self, window: Window) -> NDArray[np.bool_]:
        row0, col0, height, width = check_window(window, self.target_grid.shape, self.path)
        out = np.zeros((height, width), dtype=bool)
        if height == 0 or width == 0 or self._misses:
            return out
        classes, inside = self.sample(row0, col0, height, width)
        if not inside.any():
            return out
        selected = self._select(classes)
        valid = valid_pixels(classes, self.nodata)
        if valid is not None:
            selected &= valid
        out[...] = selected & inside
        return out

    def _select(self, classes: NDArray[Any]) -> NDArray[np.bool_]:
        if self.bits is not None:
            return self.bits.select(classes)
        if self.values is not None:
            return np.isin(classes, np.asarray(self.values, dtype=np.float64))
        lo, hi = self.range or (0.0, 0.0)
        with np.errstate(invalid="ignore"):
            return (classes >= lo) & (classes <= hi)


def _name(path: str | Path) -> str:
    """The file name of a path or URL, for labels."""
    return Path(str(path)).name or str(path)
