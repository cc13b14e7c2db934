"""Raster I/O: inspect a scene, read pixels at index sets, write the output safely.

The only module (with the mask sources) that touches rasterio/GDAL datasets.

Thread-safety and pickling contract: nothing here holds an open dataset between
calls. :class:`SceneInfo` is a plain, picklable value; every read opens the file
itself (``sharing=False``), so tasks running in threads, processes or on
cluster workers each have their own GDAL handle. Writing happens in exactly one
place per output file (:class:`OutputFile`), in the process that runs the scene.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import re
import shutil
import stat
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from numpy.typing import NDArray
from rasterio._err import CPLE_BaseError
from rasterio.enums import ColorInterp, Interleaving
from rasterio.errors import RasterioError, RasterioIOError
from rasterio.windows import Window

from geomask import gdalcopy, tiffraw
from geomask.convolve import check_dtype
from geomask.errors import ConfigError, GridError, InputError, OutputError, RunError
from geomask.grid import Grid
from geomask.warnings import GeomaskWarning
from geomask.windows import contiguous_runs, covers_whole_tiles

__all__ = [
    "ALLOWED_DRIVERS",
    "MAX_BLOCK_BYTES",
    "OutputFile",
    "SceneInfo",
    "check_regular_file",
    "gdal_env",
    "block_problem",
    "inspect_scene",
    "open_scene",
    "read_indexed",
    "read_tags",
    "remove_stale_partials",
]

#: Raster drivers geomask opens. A ``.tif`` that is really a VRT (which can point at
#: any file) or another format is refused.
ALLOWED_DRIVERS: tuple[str, ...] = ("GTiff",)

PARTIAL_SUFFIX = ".partial"
_MIB = 1 << 20

MAX_BLOCK_BYTES = 256 * _MIB
"""The most bytes one internal tile or strip of a scene may decode to (all bands, when the file
interleaves them by pixel). GDAL decodes a block whole to read any pixel of it, so a header
declaring larger blocks (a 32768 x 32768 tile, strips of thousands of long rows) would make every
window cost that much memory, whatever the window size; such a scene is refused from its header."""


@dataclass(frozen=True)
class SceneInfo:
    """What geomask needs to know about an input scene (picklable, no open handle).

    Attributes
    ----------
    path : str
        Path or GDAL URL of the scene.
    grid : Grid
        CRS, transform and shape.
    count : int
        Number of bands.
    dtype : str
        Numpy dtype name of the bands (all bands share it).
    nodata : float or None
        The file's nodata value.
    block_shape : (int, int)
        Rows and columns of the internal tiles or strips of band 1.
    """

    path: str
    grid: Grid
    count: int
    dtype: str
    nodata: float | None
    block_shape: tuple[int, int]
    descriptions: tuple[str | None, ...] = ()
    colorinterp: tuple[ColorInterp, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    scales: tuple[float, ...] = ()
    offsets: tuple[float, ...] = ()
    units: tuple[str | None, ...] = ()
    colormap: Mapping[int, tuple[int, ...]] | None = None


#: Overview resampling methods of GDAL that a COG output may use.
OVERVIEW_RESAMPLING: tuple[str, ...] = (
    "nearest",
    "average",
    "mode",
    "bilinear",
    "cubic",
    "cubicspline",
    "lanczos",
    "rms",
    "gauss",
)


def overview_resampling_for(scene: SceneInfo, requested: str = "auto") -> str:
    """The overview resampling to use for an output of ``scene``.

    Parameters
    ----------
    scene : SceneInfo
        The input scene (its colour interpretation decides ``auto``).
    requested : str
        ``auto`` or one of :data:`OVERVIEW_RESAMPLING`.

    Returns
    -------
    str
        ``requested`` unless it is ``auto``: then ``nearest`` for class rasters (band 1 has a colour
        table, i.e. palette colour interpretation: every overview pixel is one of the classes) and
        ``average`` for everything else (continuous data, integer or float). Integer rasters of classes
        without a colour table need ``overview_resampling: nearest`` (or ``mode``) in the pipeline.

    Raises
    ------
    ConfigError
        An unknown method.
    """
    method = requested.lower()
    if method == "auto":
        palette = bool(scene.colorinterp) and scene.colorinterp[0] == ColorInterp.palette
        return "nearest" if palette or scene.colormap else "average"
    if method not in OVERVIEW_RESAMPLING:
        raise ConfigError(
            f"overview_resampling {requested!r} is not one of auto, {', '.join(OVERVIEW_RESAMPLING)}"
        )
    return method


def gdal_env(options: Mapping[str, str]) -> rasterio.Env:
    """A ``rasterio.Env`` with the GDAL configuration ``options`` (text values, as in a profile).

    Raises
    ------
    ConfigError
        ``GDAL_CACHEMAX`` is not a whole number (rasterio takes it only as an integer: megabytes
        below 100000, bytes above).
    """
    values: dict[str, Any] = dict(options)
    cachemax = values.get("GDAL_CACHEMAX")
    if cachemax is not None:
        try:
            values["GDAL_CACHEMAX"] = int(cachemax)
        except ValueError as e:
            raise ConfigError(
                f"gdal: GDAL_CACHEMAX {cachemax!r} must be a whole number of megabytes, e.g. 512"
            ) from e
    return rasterio.Env(**values)


@contextlib.contextmanager
def open_scene(path: str | os.PathLike[str]) -> Iterator[rasterio.io.DatasetReader]:
    """Open ``path`` for reading with the allowed drivers only, as a private handle.

    Raises :class:`InputError` with the path when the file is missing or is not a raster
    geomask reads.
    """
    p = str(path)
    if "://" not in p and not p.startswith("/vsi"):
        check_regular_file(p)
    try:
        # rasterio takes one driver name; GDAL then opens nothing but that format.
        ds = rasterio.open(p, sharing=False, driver=ALLOWED_DRIVERS[0])
    except RasterioIOError as e:
        if "://" in p:
            raise InputError(
                f"{p}: cannot open ({_gdal_message(e)}); check the URL, the AWS credentials and endpoint "
                "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_S3_ENDPOINT) and that it is a GeoTIFF"
            ) from e
        raise InputError(
            f"{p}: not a readable GeoTIFF ({_gdal_message(e)}); "
            f"geomask reads {', '.join(ALLOWED_DRIVERS)} files"
        ) from e
    try:
        yield ds
    finally:
        ds.close()


_FILE_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


def check_regular_file(path: str | os.PathLike[str]) -> None:
    """Refuse a local input that is not a regular file, without opening it.

    Parameters
    ----------
    path : path
        A local path (symbolic links are followed).

    Raises
    ------
    InputError
        ``path`` does not exist, or is a FIFO, a device, a socket or a directory.

    Notes
    -----
    Only ``stat`` is called: opening a FIFO blocks until another process writes to it (GDAL would
    wait there, deaf to Ctrl-C), and a device such as ``/dev/zero`` never ends. A GeoTIFF is read
    by position, which neither can serve.
    """
    p = os.fspath(path)
    try:
        mode = os.stat(p).st_mode
    except FileNotFoundError:
        raise InputError(
            f"{p}: no such file; check the input path (relative paths resolve from the YAML)"
        ) from None
    except OSError as e:
        raise InputError(f"{p}: cannot be read ({e.strerror or e})") from e
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")
    raise InputError(f"{p}: is {kind}, not a regular file; give the path of a GeoTIFF file")


def _gdal_message(e: BaseException) -> str:
    """The first line of a GDAL error, taken from the chained cause when rasterio only
    says "See previous exception for details"."""
    while "previous exception" in str(e) and e.__cause__ is not None:
        e = e.__cause__
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def inspect_scene(path: str | os.PathLike[str]) -> SceneInfo:
    """Read the header of a scene and check geomask can process it.

    Raises :class:`InputError` (missing, not a raster, complex or mixed dtypes) or
    :class:`GridError` (rotated or skewed transform).
    """
    p = str(path)
    with open_scene(p) as ds:
        dtypes = set(ds.dtypes)
        if len(dtypes) != 1:
            raise InputError(f"{p}: bands have different data types {sorted(dtypes)}; geomask needs one")
        try:
            check_dtype(ds.dtypes[0])
        except InputError as e:
            raise InputError(f"{p}: {e}") from e
        transform = ds.transform
        if transform.b != 0 or transform.d != 0:
            raise GridError(
                f"{p}: the geotransform is rotated or skewed ({tuple(transform)[:6]}); "
                "warp it to a north-up grid first (gdalwarp)"
            )
        grid = Grid(ds.crs if ds.crs else None, transform, ds.height, ds.width)
        block_shape = tuple(int(v) for v in ds.block_shapes[0])
        problem = block_problem(ds)
        if problem is not None:
            raise InputError(f"{p}: {problem}")
        bh, bw = min(block_shape[0], ds.height), min(block_shape[1], ds.width)
        try:
            # A corner of the first block: GDAL decodes the block (bounded above), numpy gets 64 x 64.
            ds.read(1, window=Window(0, 0, min(bw, 64), min(bh, 64)))
        except RasterioError as e:
            # e.g. a header claiming 60000x60000 pixels in a file of a few hundred bytes
            raise InputError(
                f"{p}: the first block (rows 0..{bh - 1}, cols 0..{bw - 1}) of this "
                f"{ds.width}x{ds.height} raster does not read ({_gdal_message(e)}); the file is truncated "
                "or corrupt or its header is wrong: re-create or re-download it"
            ) from e
        return SceneInfo(
            path=p,
            grid=grid,
            count=ds.count,
            dtype=ds.dtypes[0],
            nodata=ds.nodata,
            block_shape=(block_shape[0], block_shape[1]),
            descriptions=tuple(ds.descriptions),
            colorinterp=tuple(ds.colorinterp),
            tags=dict(ds.tags()),
            scales=tuple(ds.scales),
            offsets=tuple(ds.offsets),
            units=tuple(ds.units),
            colormap=_colormap(ds),
        )


def block_problem(ds: rasterio.io.DatasetReader) -> str | None:
    """Why ``ds``'s internal blocks are too large to read window by window, or None when they are not.

    Parameters
    ----------
    ds : rasterio dataset
        An open raster; only its header is used (block shapes, interleaving, data type).

    Returns
    -------
    str or None
        A one-line message (without the path) when one block decodes to more than
        :data:`MAX_BLOCK_BYTES`, naming the block and the fix (``gdal_translate -co TILED=YES``).

    Notes
    -----
    A file of one strip is read by GDAL a few rows at a time (its block shape is reported as one
    row), so only multi-strip files with long strips and large tiles are refused. Sparse files
    (tiles never written) with small blocks pass whatever their size.
    """
    bh, bw = (int(v) for v in ds.block_shapes[0])
    bh, bw = min(bh, ds.height), min(bw, ds.width)
    bands = ds.count if ds.interleaving == Interleaving.pixel else 1
    size = bh * bw * bands * np.dtype(ds.dtypes[0]).itemsize
    if size <= MAX_BLOCK_BYTES:
        return None
    return (
        f"the internal blocks (tiles or strips) of this {ds.width}x{ds.height} raster are {bw}x{bh} "
        f"pixels, {size / _MIB:,.0f} MiB each decoded, more than the {MAX_BLOCK_BYTES // _MIB} MiB "
        "geomask decodes at once; rewrite it with small tiles: "
        f"gdal_translate -co TILED=YES -co COMPRESS=DEFLATE {ds.name} tiled.tif"
    )


def _colormap(ds: rasterio.io.DatasetReader) -> dict[int, tuple[int, ...]] | None:
    """Band 1's colour table (class rasters), or None."""
    if ds.count < 1 or ds.colorinterp[0] != ColorInterp.palette:
        return None
    try:
        return dict(ds.colormap(1))
    except ValueError:  # palette interpretation without a table
        return None


def read_indexed(
    ds: rasterio.io.DatasetReader,
    bands: Sequence[int],
    rows: NDArray[np.int64],
    cols: NDArray[np.int64],
) -> NDArray[Any]:
    """Read ``bands`` (1-based) at the product of sorted unique ``rows`` x ``cols`` indices.

    Each pair of contiguous runs is one windowed read, so a plain window is one read and a
    wrapped halo a few. Returns (len(bands), len(rows), len(cols)) of the file's dtype.
    Raises :class:`RunError` naming the scene and window when GDAL cannot decode it.
    """
    out = np.empty((len(bands), rows.size, cols.size), dtype=ds.dtypes[0])
    r_pos = 0
    for r0, r1 in contiguous_runs(rows):
        c_pos = 0
        for c0, c1 in contiguous_runs(cols):
            window = Window(c0, r0, c1 - c0, r1 - r0)
            try:
                out[:, r_pos : r_pos + r1 - r0, c_pos : c_pos + c1 - c0] = ds.read(list(bands), window=window)
            except RasterioError as e:
                raise RunError(
                    f"{ds.name}: cannot read window rows {r0}..{r1 - 1}, cols {c0}..{c1 - 1} "
                    f"({_gdal_message(e)}); the file is corrupt or truncated: re-create or re-download it"
                ) from e
            c_pos += c1 - c0
        r_pos += r1 - r0
    return out


def partial_path(final: Path) -> Path:
    """A unique temporary name beside ``final``: ``NAME.geomask-PID-RANDOM.partial``."""
    return final.with_name(f"{final.name}.geomask-{os.getpid()}-{uuid.uuid4().hex[:8]}{PARTIAL_SUFFIX}")


def read_tags(path: str | os.PathLike[str]) -> dict[str, str] | None:
    """The dataset metadata tags of a finished GeoTIFF, or None when it does not read.

    Parameters
    ----------
    path : path
        A local file.

    Returns
    -------
    dict or None
        The tags (``GEOMASK_*`` provenance included), or None when the file is missing, is not a
        GeoTIFF, or its last tile does not decode (a truncated or damaged file).

    Notes
    -----
    Reads the header and one tile; never raises for a bad file. A COG whose tile offsets are all
    still 0 (its writer was killed: GDAL fills them in last) counts as not reading.
    """
    try:
        with rasterio.open(os.fspath(path), sharing=False, driver=ALLOWED_DRIVERS[0]) as ds:
            tags = dict(ds.tags())
            cog = ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT", "").upper() == "COG"
            h, w = min(ds.height, 64), min(ds.width, 64)
            ds.read(1, window=Window(ds.width - w, ds.height - h, w, h))
    except (RasterioError, OSError, ValueError):
        return None
    if cog and not tiffraw.has_written_tiles(path):
        return None
    return tags


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # no such process (an absurd PID included)
        return False
    except OSError:  # another user's process, or no way to tell: keep its file
        return True
    return True


def remove_stale_partials(final: Path) -> list[Path]:
    """Remove the temporary files a killed earlier run left beside ``final``.

    Parameters
    ----------
    final : Path
        An output path.

    Returns
    -------
    list of Path
        The files removed: ``NAME.geomask-PID-RANDOM.partial`` beside ``final`` whose PID is not a
        running process, and the files GDAL named after them (``...partial.ovr.tmp``, the
        overviews of a COG conversion; ``...partial.msk.ovr.tmp``; ``...partial.aux.xml``).

    Notes
    -----
    A file whose PID is alive (or whose liveness cannot be checked) is kept: it may belong to a run
    in progress. PIDs are those of this machine, so a folder shared with another host may keep
    files of runs killed there, and a reused PID keeps a stale file until that process ends.
    """
    if "://" in str(final):  # a URL: nothing local to clean
        return []
    pattern = re.compile(
        re.escape(final.name) + r"\.geomask-(\d+)-[0-9a-f]+" + re.escape(PARTIAL_SUFFIX) + r"(\..+)?"
    )
    removed = []
    for candidate in glob.glob(glob.escape(str(final)) + ".geomask-*" + PARTIAL_SUFFIX + "*"):
        path = Path(candidate)
        match = pattern.fullmatch(path.name)
        if match is None or _pid_alive(int(match.group(1))):
            continue
        try:
            path.unlink()
        except OSError:  # gone already, or not ours to remove: the run goes on without it
            continue
        removed.append(path)
    return removed


class OutputFile:
    """The one writer of one output GeoTIFF, written to a temporary name and renamed at the end.

    Use as a context manager; :meth:`commit` checks the file and renames it into place.
    Leaving the block without commit (an error, Ctrl-C) removes the temporary file, so
    nothing is ever left at the final path.

    Tile copy: when the input is a local tiled GeoTIFF whose tiles decode as the output's will
    (same codec, predictor, tile size, interleave: :func:`geomask.tiffraw.profile_matches`),
    :attr:`copy_tile` is the tile side and the caller may leave tiles unwritten: they must
    equal the input's, and :meth:`commit` copies their compressed bytes from the input instead
    of decoding and re-encoding them. Writes must then cover whole tiles.
    """

    def __init__(
        self,
        final: Path,
        scene: SceneInfo,
        *,
        block_size: int,
        compress: str,
        creation_options: Mapping[str, str],
        tags: Mapping[str, str],
        cog: bool = False,
        overview_resampling: str = "average",
        copy_tiles: bool = True,
    ) -> None:
        self.final = final
        self.scene = scene
        self.tmp = partial_path(final)
        self.cog = cog
        self.overview_resampling = overview_resampling_for(scene, overview_resampling)
        self.compress = compress
        self.creation_options = dict(creation_options)
        grid = scene.grid
        self.profile: dict[str, Any] = {
            "driver": "GTiff",
            "width": grid.width,
            "height": grid.height,
            "count": scene.count,
            "dtype": scene.dtype,
            "crs": grid.crs,
            "transform": grid.transform,
            "nodata": scene.nodata,
            "tiled": True,
            "blockxsize": block_size,
            "blockysize": block_size,
            "compress": compress,
            "BIGTIFF": "IF_SAFER",
        }
        if scene.count > 1 and not cog:
            self.profile["interleave"] = "pixel"
        self.profile.update(self.creation_options)
        self.tags = dict(tags)
        self._ds: rasterio.io.DatasetWriter | None = None
        self._committed = False
        self._layout = tiffraw.layout_of(scene.path) if copy_tiles else None
        dt = np.dtype(scene.dtype)
        if self._layout is not None and not (
            (self._layout.width, self._layout.height) == (grid.width, grid.height)
            and self._layout.samples == scene.count
            and self._layout.bits == (dt.itemsize * 8,) * scene.count
            and tiffraw.profile_matches(self._layout, self.profile)
        ):
            self._layout = None
        self._written: set[tuple[int, int]] = set()
        if self._layout is not None:
            self.profile["SPARSE_OK"] = "TRUE"  # tiles never written stay empty, for copy_tiles
            raw = grid.width * grid.height * scene.count * dt.itemsize
            if raw > 3 * 2**30 and not any(k.upper() == "BIGTIFF" for k in self.creation_options):
                self.profile["BIGTIFF"] = "YES"  # the copied tiles are appended: keep offsets 64-bit

    @property
    def copy_tile(self) -> int | None:
        """The tile side (pixels) if unwritten tiles are copied from the input, else None."""
        return (
            self._layout.tile[0]
            if self._layout is not None and self._layout.tile[0] == self._layout.tile[1]
            else None
        )

    def no_tile_copy(self) -> None:
        """Write every tile (call before entering): the caller cannot write whole tiles."""
        assert self._ds is None, "no_tile_copy after the file was created"
        if self._layout is not None:
            self._layout = None
            self.profile.pop("SPARSE_OK", None)

    def __enter__(self) -> OutputFile:
        # The temporary file is created here first, so a folder that cannot take it (read-only,
        # not writable, full) is reported from its errno, before GDAL's generic "cannot create".
        try:
            os.close(os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644))
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise self._failed("creating the temporary file", e, 0) from e
            raise OutputError(
                f"{self.final}: cannot write in {self.final.parent} ({e.strerror or e}); "
                "choose a writable output folder"
            ) from e
        try:
            self._ds = rasterio.open(self.tmp, "w", **self.profile)
        except (RasterioError, OSError) as e:
            self._remove(self.tmp)
            raise OutputError(f"{self.final}: cannot create the output ({_gdal_message(e)})") from e
        ds = self._ds
        scene = self.scene
        if scene.descriptions and any(scene.descriptions):
            for i, d in enumerate(scene.descriptions, start=1):
                if d:
                    ds.set_band_description(i, d)
        if scene.colorinterp:
            with contextlib.suppress(RasterioError, ValueError):
                ds.colorinterp = scene.colorinterp
        if scene.scales and any(s != 1.0 for s in scene.scales):
            ds.scales = scene.scales
        if scene.offsets and any(o != 0.0 for o in scene.offsets):
            ds.offsets = scene.offsets
        if scene.units and any(scene.units):
            ds.units = tuple(u or "" for u in scene.units)
        if scene.colormap:
            with contextlib.suppress(RasterioError, ValueError):
                ds.write_colormap(1, scene.colormap)
        # The input's tags now; geomask's own (provenance) only in commit(), so a file left by a
        # killed writer never carries them and is never taken for a finished output.
        ds.update_tags(**{k: v for k, v in scene.tags.items() if not k.startswith("GEOMASK_")})
        return self

    def write(self, data: NDArray[Any], window: Window) -> None:
        """Write all bands of ``window`` (``data`` is (count, h, w) of the scene dtype)."""
        assert self._ds is not None, "OutputFile used outside its with-block"
        if self._layout is not None:
            self._written.update(self._tiles_of(window))
        try:
            self._ds.write(data, window=window)
        except (RasterioError, OSError) as e:
            raise self._failed(f"writing window {window}", e, data.nbytes) from e

    def _tiles_of(self, window: Window) -> Iterator[tuple[int, int]]:
        """The (row, column) of the output tiles ``window`` covers; it must cover them whole."""
        assert self._layout is not None
        tw, th = self._layout.tile
        r0, c0, h, w = int(window.row_off), int(window.col_off), int(window.height), int(window.width)
        # A partial tile would lose the rest of its pixels: a bug of the caller.
        if not covers_whole_tiles(window, (th, tw), self.scene.grid.shape):
            raise RunError(f"{self.final}: window {window} does not cover whole {tw}x{th} tiles")
        for tr in range(r0 // th, -(-(r0 + h) // th)):
            for tc in range(c0 // tw, -(-(c0 + w) // tw)):
                yield tr, tc

    def commit(self) -> None:
        """Close, convert to COG if asked, check the file, and rename it to the final path.

        geomask's tags (provenance: what marks a finished output) are the last thing written to
        the temporary file, so a file left by a writer killed at any earlier point never carries
        them: written with the last tiles when nothing follows; after the tile copy (reopened to
        add them) when tiles are copied; by the COG conversion, whose partly written file has no
        tile of its full-resolution image yet (see :func:`read_tags`), for a COG.
        """
        assert self._ds is not None
        tags_now = not self.cog and self._layout is None
        try:
            if tags_now:
                self._ds.update_tags(**self.tags)
            self._ds.close()
        except (RasterioError, OSError) as e:
            raise self._failed("finishing the file", e, _MIB) from e
        self._ds = None
        if self._layout is not None:
            self._copy_unwritten_tiles()
            if not self.cog:
                self._add_tags()
        ready = self.tmp
        if self.cog:
            ready = self._to_cog()
        self._check(ready)
        try:
            os.replace(ready, self.final)
        except OSError as e:
            raise OutputError(f"{self.final}: cannot move the finished file into place ({e})") from e
        self._committed = True

    def _add_tags(self) -> None:
        """Write the tags into the finished temporary GeoTIFF (GDAL rewrites its directory)."""
        try:
            with rasterio.open(self.tmp, "r+", sharing=False) as ds:
                ds.update_tags(**self.tags)
        except (RasterioError, OSError) as e:
            raise self._failed("writing the tags", e, _MIB) from e

    def _copy_unwritten_tiles(self) -> None:
        """Fill the tiles never written with the input's: compressed bytes copied, or re-encoded."""
        assert self._layout is not None
        down, across = self._layout.grid
        missing = [(r, c) for r in range(down) for c in range(across) if (r, c) not in self._written]
        if not missing:
            return
        try:
            tiffraw.copy_tiles(self.scene.path, self.tmp, missing)
            return
        except tiffraw.LayoutMismatch:
            pass  # GDAL wrote another layout than predicted (a GDAL version's default): re-encode
        except OSError as e:
            raise self._failed("copying the unchanged tiles", e, _MIB) from e
        tw, th = self._layout.tile
        try:
            with rasterio.open(self.scene.path) as src, rasterio.open(self.tmp, "r+") as dst:
                for r, c in missing:
                    window = Window(c * tw, r * th, tw, th).intersection(Window(0, 0, src.width, src.height))
                    dst.write(src.read(window=window), window=window)
        except (RasterioError, OSError) as e:
            raise self._failed("writing the unchanged tiles", e, _MIB) from e

    def _to_cog(self) -> Path:
        """Convert the finished temporary GeoTIFF to a COG at a new temporary name, adding the tags.

        Stoppable by Ctrl-C/SIGTERM (:func:`geomask.gdalcopy.create_copy`); whatever way it ends,
        the intermediate file is removed, and on failure or interrupt the COG's temporary file and
        GDAL's overview temporaries (``NAME...partial.ovr.tmp``) too.
        """
        cog_tmp = partial_path(self.final)
        options: dict[str, object] = {
            "compress": self.compress,
            "blocksize": int(self.profile["blockxsize"]),
            "overview_resampling": self.overview_resampling,
            "BIGTIFF": "IF_SAFER",
        }
        extra = {k: v for k, v in self.creation_options.items() if k.lower() not in ("tiled", "interleave")}
        options.update(extra)
        try:
            # GDAL's COG driver converts from the finished tiled GeoTIFF block by block;
            # writing the COG driver window by window would buffer the whole raster. The
            # provenance tags go to the COG only: the intermediate never carries them.
            gdalcopy.create_copy(self.tmp, cog_tmp, driver="COG", options=options, tags=self.tags)
        except gdalcopy.CopyFailed as e:
            self._remove_temporaries(cog_tmp)
            raise self._failed("converting to COG", e, self.tmp.stat().st_size, no_space=e.no_space) from e
        except BaseException:
            self._remove_temporaries(cog_tmp)
            raise
        finally:
            self._remove_temporaries(self.tmp)
        self.tmp = cog_tmp
        return cog_tmp

    def _check(self, path: Path) -> None:
        grid = self.scene.grid
        try:
            with rasterio.open(path, sharing=False) as ds:
                same = (
                    ds.width == grid.width
                    and ds.height == grid.height
                    and ds.count == self.scene.count
                    and ds.dtypes[0] == self.scene.dtype
                    and ds.transform.almost_equals(grid.transform)
                )
                h, w = min(ds.height, 64), min(ds.width, 64)
                ds.read(1, window=Window(ds.width - w, ds.height - h, w, h))
        except (RasterioError, OSError) as e:
            raise OutputError(
                f"{self.final}: the written file does not read back ({_gdal_message(e)})"
            ) from e
        if not same:
            raise OutputError(f"{self.final}: the written file's grid or type differs from the input's")

    def __exit__(self, *exc: object) -> None:
        if self._ds is not None:
            with contextlib.suppress(Exception):
                self._ds.close()
            self._ds = None
        if not self._committed:
            self._remove_temporaries(self.tmp)

    def _failed(self, what: str, e: BaseException, needed: int, *, no_space: bool = False) -> OutputError:
        """The error for a failed write: says when the disk is full (``no_space``, an ENOSPC in the
        chain of ``e``, or less free space than the ``needed`` bytes being written), where GDAL only
        reports a failed write."""
        folder = self.final.parent
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            free = None
        cause: BaseException | None = e
        while cause is not None and not no_space:
            no_space = isinstance(cause, OSError) and cause.errno == errno.ENOSPC
            cause = cause.__cause__ or cause.__context__
        if no_space or (free is not None and free < needed):
            left = f", {free:,} bytes free" if free is not None else ""
            return OutputError(
                f"{self.final}: {what} failed: the disk is full (no space left on the device of {folder}"
                f"{left}); the partial file is removed: free space or choose another output folder"
            )
        return OutputError(f"{self.final}: {what} failed ({_gdal_message(e)})")

    @staticmethod
    def _remove(path: Path) -> None:
        # Best effort on the way out of an error: never replace that error with another one
        # (a read-only folder answers EROFS even for a file that is not there).
        with contextlib.suppress(OSError):
            path.unlink()

    @staticmethod
    def _remove_temporaries(path: Path) -> None:
        """Remove the temporary ``path`` and the files GDAL named after it (``path.ovr.tmp`` ...)."""
        with contextlib.suppress(OSError):
            for candidate in [path, *path.parent.glob(glob.escape(path.name) + ".*")]:
                with contextlib.suppress(OSError):
                    candidate.unlink()


@contextlib.contextmanager
def staged_output(final: str | os.PathLike[str]) -> Iterator[Path]:
    """A local path to write an output to; for an ``s3://`` URL, uploaded when the block succeeds.

    Parameters
    ----------
    final : path or ``s3://bucket/key``
        The output location.

    Yields
    ------
    Path
        ``final`` itself for a local path. For a URL: a file in a new temporary folder, uploaded to
        the URL once the block ends without error; then the folder is removed. Other files written
        there (a STAC Item) are not uploaded: a warning names them.

    Raises
    ------
    OutputError
        The upload failed (missing bucket, refused credentials, unreachable endpoint), naming the URL.

    Notes
    -----
    The upload goes through GDAL's ``/vsis3/`` (credentials and endpoint from the AWS environment
    variables). S3 makes an object visible only when its upload completes (a single PUT, or a
    multipart upload GDAL aborts on error), so a failed upload leaves no partial object.
    """
    from geomask.urls import gdal_path, is_url, writable_url

    text = os.fspath(final)
    if not is_url(text):
        yield Path(text)
        return
    if not writable_url(text):
        raise ConfigError(f"{text}: outputs can be local paths or s3://bucket/key URLs only")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="geomask-upload-") as folder:
        name = text.rstrip("/").rsplit("/", 1)[-1]
        local = Path(folder) / name
        yield local
        prefix = text[: len(text) - len(name)]
        _upload(local, gdal_path(text), text)
        others = sorted(p.name for p in Path(folder).iterdir() if p != local)
        if others:
            warnings.warn(
                f"{prefix}: only the raster is uploaded; {', '.join(others)} stayed local and was removed "
                "(write STAC Items of s3:// outputs with a local output, then copy)",
                GeomaskWarning,
                stacklevel=3,
            )


def _upload(path: Path, target: str, url: str) -> None:
    """Copy a finished local file to a GDAL virtual file system path (GDAL's CPLCopyFile, via
    ``rasterio.shutil.copyfiles``: the bytes as they are)."""
    try:
        rasterio.shutil.copyfiles(str(path), target)
        # GDAL only logs some failed PUTs: the object must now open as the raster we wrote.
        with rasterio.open(target, sharing=False, driver=ALLOWED_DRIVERS[0]) as ds:
            ds.read(1, window=Window(0, 0, min(ds.width, 16), min(ds.height, 16)))
    except (RasterioError, CPLE_BaseError, OSError) as e:
        raise OutputError(
            f"{url}: upload failed ({_gdal_message(e)}); check the bucket, AWS credentials and endpoint "
            "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_S3_ENDPOINT)"
        ) from e
