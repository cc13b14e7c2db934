"""Write a mask as a georeferenced GeoTIFF, window by window, so it can be checked in a GIS.

:func:`write_mask` binds a :class:`~geomask.masks.MaskSource` to a scene's grid and writes
``1`` where it selects and ``0`` elsewhere, as a single-band ``uint8`` tiled GeoTIFF on the scene's
grid (same CRS, transform and size). Windows of about ``window_size`` pixels are rendered and
written one at a time, so memory is one window, never the scene. The file is written to a temporary
name beside the output (``NAME.geomask-PID-RANDOM.partial``), checked, and renamed into place, so
nothing half-written is ever left at the output path.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Literal

import numpy as np
from rasterio.enums import ColorInterp

from geomask.errors import OutputError, OutputExistsError
from geomask.io import SceneInfo, gdal_env, inspect_scene
from geomask.masks.base import MaskContext, MaskSource
from geomask.output.staging import remove_stale_partials
from geomask.output.writer import OutputFile
from geomask.pixels import effective_nodata
from geomask.windows import plan_windows

__all__ = ["write_mask"]

_TILE = 256


def write_mask(
    scene: str | os.PathLike[str],
    source: MaskSource,
    output: str | os.PathLike[str],
    *,
    nodata: float | Literal["auto"] | None = "auto",
    window_size: int = 1024,
    overwrite: bool = False,
    compress: str = "deflate",
    gdal_options: dict[str, str] | None = None,
) -> int:
    """Write the mask ``source`` selects on ``scene`` as a uint8 GeoTIFF (1 inside, 0 outside).

    Parameters
    ----------
    scene : path or GDAL URL
        The scene whose grid (CRS, transform, size) the mask is rendered on and written with; sources
        that read pixels (expressions, kmeans) read it.
    source : MaskSource
        What selects the pixels.
    output : path
        The GeoTIFF to write (tiled 256 x 256, ``compress``, no nodata value).
    nodata : "auto", float or None
        The scene's nodata for sources that read pixels (never selected there): ``auto`` (the
        file's), a number, or None (every pixel is data); as a pipeline's ``nodata``.
    window_size : int
        Side of the windows rendered at once, in pixels (rounded up to whole 256-pixel tiles).
    overwrite : bool
        Replace an existing file at ``output``.
    compress : str
        GeoTIFF compression.
    gdal_options : mapping or None
        GDAL configuration options.

    Returns
    -------
    int
        How many pixels the mask selects.

    Raises
    ------
    OutputExistsError
        ``output`` exists and ``overwrite`` is false.
    OutputError
        ``output`` is the scene, a directory, or cannot be written.
    InputError, MaskError, ConfigError
        From the scene or the mask source.

    Notes
    -----
    The written mask is the source as bound to the scene: pixel-value sources never select nodata
    pixels, vector and bbox sources select by pixel centre (or every touched pixel), whatever the
    pixel values. The result equals ``source.bind(...).render(whole grid)`` for any window size.
    """
    final = Path(output)
    info = _scene(scene, gdal_options)
    if "://" not in info.path and final.exists() and final.resolve() == Path(info.path).resolve():
        raise OutputError(f"{final}: the mask output is the scene itself; choose another path with -o")
    if final.is_dir():
        raise OutputError(f"{final}: is a directory; give a file name")
    if final.exists() and not overwrite:
        raise OutputExistsError(f"{final}: exists; pass --overwrite to replace it")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{final.parent}: cannot create the folder ({e.strerror})") from e
    remove_stale_partials(final)  # what a killed earlier `geomask mask` left beside it
    value = info.nodata if nodata == "auto" else nodata
    bound = source.bind(MaskContext(info.grid, info.path, effective_nodata(value, info.dtype)))
    layout = dataclasses.replace(
        info,
        count=1,
        dtype="uint8",
        nodata=None,
        descriptions=("mask: 1 = selected",),
        colorinterp=(ColorInterp.gray,),
        tags={},
        scales=(),
        offsets=(),
        units=(),
    )
    rows, cols = info.grid.shape
    size = max(_TILE, -(-window_size // _TILE) * _TILE)
    selected = 0
    tags = {"GEOMASK_MASK": source.describe(), "GEOMASK_SCENE": info.path}
    writer = OutputFile(
        final,
        layout,
        block_size=_TILE,
        compress=compress,
        creation_options={},
        tags=tags,
        cog=False,
        copy_tiles=False,  # other pixels than the scene's: no tile of it may be copied
    )
    with gdal_env(gdal_options or {}), writer:
        for window in plan_windows(rows, cols, (_TILE, _TILE), size):
            block = bound.render(window)
            selected += int(np.count_nonzero(block))
            writer.write(block.astype(np.uint8)[None], window)
        writer.commit()
    return selected


def _scene(scene: str | os.PathLike[str], gdal_options: dict[str, str] | None) -> SceneInfo:
    with gdal_env(gdal_options or {}):
        return inspect_scene(scene)
