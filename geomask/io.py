"""Raster input: inspect a scene, open it, read pixels at index sets.

The only module (with the mask sources and :mod:`geomask.output`, which writes) that touches
rasterio/GDAL datasets.

Thread-safety and pickling contract: nothing here holds an open dataset between
calls. :class:`SceneInfo` is a plain, picklable value; every read opens the file
itself (``sharing=False``), so tasks running in threads, processes or on
cluster workers each have their own GDAL handle. Writing happens in exactly one
place per output file (:class:`geomask.output.writer.OutputFile`), in the process that runs the scene.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.enums import ColorInterp, Interleaving, MaskFlags
from rasterio.errors import RasterioError, RasterioIOError
from rasterio.windows import Window

from geomask.errors import ConfigError, GridError, InputError, RunError
from geomask.grid import Grid
from geomask.messages import name_too_long
from geomask.pixels import check_dtype
from geomask.tiffheader import MAX_BLOCK_BYTES  # defined there: validate reads headers without rasterio
from geomask.windows import contiguous_runs

__all__ = [
    "ALLOWED_DRIVERS",
    "MAX_BLOCK_BYTES",
    "SceneInfo",
    "block_problem",
    "check_regular_file",
    "gdal_env",
    "gdal_message",
    "inspect_scene",
    "open_scene",
    "read_indexed",
]

#: Raster drivers geomask opens. A ``.tif`` that is really a VRT (which can point at
#: any file) or another format is refused.
ALLOWED_DRIVERS: tuple[str, ...] = ("GTiff",)

_MIB = 1 << 20


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
    alpha : int or None
        The 1-based band whose colour interpretation is alpha (0: transparent), if any.
    dataset_mask : bool
        The file has a GDAL per-dataset mask band (an internal mask or a ``.msk`` sidecar; 0:
        invalid) other than its alpha band.
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
    alpha: int | None = None
    dataset_mask: bool = False

    @property
    def data_bands(self) -> tuple[int, ...]:
        """The 1-based bands that hold data: every band but the alpha band."""
        return tuple(b for b in range(1, self.count + 1) if b != self.alpha)


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
                f"{p}: cannot open ({gdal_message(e)}); check the URL, the AWS credentials and endpoint "
                "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_S3_ENDPOINT) and that it is a GeoTIFF"
            ) from e
        raise InputError(
            f"{p}: not a readable GeoTIFF ({gdal_message(e)}); "
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
        too_long = name_too_long(p)
        if too_long is not None:
            raise InputError(f"{p}: {too_long}; shorten the input path") from e
        raise InputError(f"{p}: cannot be read ({e.strerror or e})") from e
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")
    raise InputError(f"{p}: is {kind}, not a regular file; give the path of a GeoTIFF file")


def gdal_message(e: BaseException) -> str:
    """The first line of a GDAL error, taken from the chained cause when rasterio only
    says "See previous exception for details".

    Used by the output writers too (:mod:`geomask.output`).
    """
    # Text, not class: rasterio raises the same RasterioIOError both with GDAL's own message and
    # as a generic "Read failed. See previous exception for details." chained from the CPLE_* error
    # that carries it; nothing but the text tells the wrapper apart. The text only picks which
    # message to show: what kind of error it is is decided by class (RasterioError, OSError).
    while "previous exception" in str(e) and e.__cause__ is not None:
        e = e.__cause__
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def inspect_scene(
    path: str | os.PathLike[str],
    *,
    read_first: Callable[[rasterio.io.DatasetReader, Window], object] | None = None,
) -> SceneInfo:
    """Read the header of a scene and check geomask can process it.

    ``read_first(ds, window)`` decodes the first block (``window``: the whole block) as the check
    that the pixels read; it must raise :class:`rasterio.errors.RasterioError` when they do not.
    Default: a 64 x 64 corner of band 1 (GDAL decodes the block to give it). A caller that reads
    the block's pixels next keeps them (:class:`geomask.engine.tilecache.FirstTile`).

    Raises :class:`InputError` (missing, not a raster, complex or mixed dtypes, the first block does
    not decode) or :class:`GridError` (rotated or skewed transform).
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
            if read_first is None:
                # A corner of the first block: GDAL decodes the block (bounded above), numpy gets 64 x 64.
                ds.read(1, window=Window(0, 0, min(bw, 64), min(bh, 64)))
            else:
                read_first(ds, Window(0, 0, bw, bh))
        except RasterioError as e:
            # e.g. a header claiming 60000x60000 pixels in a file of a few hundred bytes
            raise InputError(
                f"{p}: the first block (rows 0..{bh - 1}, cols 0..{bw - 1}) of this "
                f"{ds.width}x{ds.height} raster does not read ({gdal_message(e)}); the file is truncated "
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
            alpha=next((i for i, c in enumerate(ds.colorinterp, start=1) if c == ColorInterp.alpha), None),
            dataset_mask=_has_dataset_mask(ds),
        )


def _has_dataset_mask(ds: rasterio.io.DatasetReader) -> bool:
    """Whether a band's GDAL mask is a per-dataset mask band (internal or ``.msk``), not the alpha band."""
    return any(MaskFlags.per_dataset in f and MaskFlags.alpha not in f for f in ds.mask_flag_enums)


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
    *,
    masks: bool = False,
) -> NDArray[Any]:
    """Read ``bands`` (1-based) at the product of sorted unique ``rows`` x ``cols`` indices.

    Each pair of contiguous runs is one windowed read, so a plain window is one read and a
    wrapped halo a few. Returns (len(bands), len(rows), len(cols)) of the file's dtype; with
    ``masks``, the bands' GDAL masks instead (uint8, 0: invalid, 255: valid).
    Raises :class:`RunError` naming the scene and window when GDAL cannot decode it.
    """
    read = ds.read_masks if masks else ds.read
    out = np.empty((len(bands), rows.size, cols.size), dtype=np.uint8 if masks else ds.dtypes[0])
    r_pos = 0
    for r0, r1 in contiguous_runs(rows):
        c_pos = 0
        for c0, c1 in contiguous_runs(cols):
            window = Window(c0, r0, c1 - c0, r1 - r0)
            try:
                # Straight into its place (GDAL writes through the view's strides): no temporary.
                read(list(bands), window=window, out=out[:, r_pos : r_pos + r1 - r0, c_pos : c_pos + c1 - c0])
            except RasterioError as e:
                raise RunError(
                    f"{ds.name}: cannot read window rows {r0}..{r1 - 1}, cols {c0}..{c1 - 1} "
                    f"({gdal_message(e)}); the file is corrupt or truncated: re-create or re-download it"
                ) from e
            c_pos += c1 - c0
        r_pos += r1 - r0
    return out
