"""Metadata of an output: what it copies from its scene, and geomask's own tags, written last."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path

import rasterio
from rasterio.errors import RasterioError

from geomask.io import SceneInfo

__all__ = ["copy_metadata", "write_tags"]


def copy_metadata(ds: rasterio.io.DatasetWriter, scene: SceneInfo) -> None:
    """Copy ``scene``'s band descriptions, colour interpretation, scales, offsets, units, colour
    table and tags (not its ``GEOMASK_*`` ones) to the new dataset ``ds``.

    A colour interpretation or colour table GDAL refuses for the output is left out.
    """
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


def write_tags(path: Path, tags: Mapping[str, str]) -> None:
    """Write ``tags`` into the finished GeoTIFF ``path`` (GDAL rewrites its directory).

    Raises
    ------
    rasterio.errors.RasterioError, OSError
        GDAL could not open or update the file.
    """
    with rasterio.open(path, "r+", sharing=False) as ds:
        ds.update_tags(**tags)
