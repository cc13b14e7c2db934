"""Checks of written outputs: the read-back check of a finished file, the diagnosis of a failed
write (is the disk full?), and the tags of a finished output (what resume and the overwrite guard
look at).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import rasterio
from rasterio.errors import RasterioError
from rasterio.windows import Window

from geomask import tiffraw
from geomask.errors import OutputError
from geomask.io import ALLOWED_DRIVERS, SceneInfo, gdal_message

__all__ = ["check_readback", "read_tags", "write_failure"]


def check_readback(path: Path, final: Path, scene: SceneInfo) -> None:
    """Check that the finished file ``path`` (to become ``final``) opens with ``scene``'s grid and
    type and that its last tile decodes.

    Raises
    ------
    OutputError
        The file does not read back, or its size, band count, dtype or transform differ.
    """
    grid = scene.grid
    try:
        with rasterio.open(path, sharing=False) as ds:
            same = (
                ds.width == grid.width
                and ds.height == grid.height
                and ds.count == scene.count
                and ds.dtypes[0] == scene.dtype
                and ds.transform.almost_equals(grid.transform)
            )
            h, w = min(ds.height, 64), min(ds.width, 64)
            ds.read(1, window=Window(ds.width - w, ds.height - h, w, h))
    except (RasterioError, OSError) as e:
        raise OutputError(f"{final}: the written file does not read back ({gdal_message(e)})") from e
    if not same:
        raise OutputError(f"{final}: the written file's grid or type differs from the input's")


def write_failure(
    final: Path, what: str, e: BaseException, needed: int, *, no_space: bool = False
) -> OutputError:
    """The error for a failed write: says when the disk is full (``no_space``, an ENOSPC in the
    chain of ``e``, or less free space than the ``needed`` bytes being written), where GDAL only
    reports a failed write."""
    folder = final.parent
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
            f"{final}: {what} failed: the disk is full (no space left on the device of {folder}"
            f"{left}); the partial file is removed: free space or choose another output folder"
        )
    return OutputError(f"{final}: {what} failed ({gdal_message(e)})")


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
