"""The creation profile of an output GeoTIFF: the scene's grid, band count, dtype and nodata, tiled
with the output's block size and compression, plus the user's creation options."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from geomask.io import SceneInfo

__all__ = ["creation_profile"]


def creation_profile(
    scene: SceneInfo,
    *,
    block_size: int,
    compress: str,
    creation_options: Mapping[str, str],
    cog: bool,
) -> dict[str, Any]:
    """The ``rasterio.open(..., "w", **profile)`` keywords of the output of ``scene``.

    Parameters
    ----------
    scene : SceneInfo
        The input scene: the output has its CRS, transform, shape, band count, dtype and nodata.
    block_size : int
        Output tile side, pixels (a multiple of 16).
    compress : str
        GDAL compression name.
    creation_options : mapping
        GDAL creation options; they override the defaults above.
    cog : bool
        The file is converted to a COG afterwards (then bands stay GDAL's default interleave;
        otherwise a multi-band file is pixel-interleaved).
    """
    grid = scene.grid
    profile: dict[str, Any] = {
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
        profile["interleave"] = "pixel"
    profile.update(creation_options)
    return profile
