"""Cloud Optimized GeoTIFF outputs: the overview resampling, and the conversion of the finished
tiled GeoTIFF to a COG (GDAL's COG driver, stoppable by Ctrl-C/SIGTERM)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from rasterio.enums import ColorInterp

from geomask.errors import ConfigError, CopyFailed
from geomask.io import SceneInfo
from geomask.output import gdalcopy
from geomask.output.check import write_failure
from geomask.output.staging import partial_path, remove_temporaries

__all__ = ["OVERVIEW_RESAMPLING", "cog_options", "overview_resampling_for", "to_cog"]

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


def cog_options(
    *, compress: str, block_size: int, overview_resampling: str, creation_options: Mapping[str, str]
) -> dict[str, object]:
    """The COG driver's creation options: the output's compression, tile side (pixels) and overview
    resampling, plus the user's creation options (but ``tiled`` and ``interleave``, which the COG
    driver does not take)."""
    options: dict[str, object] = {
        "compress": compress,
        "blocksize": block_size,
        "overview_resampling": overview_resampling,
        "BIGTIFF": "IF_SAFER",
    }
    extra = {k: v for k, v in creation_options.items() if k.lower() not in ("tiled", "interleave")}
    options.update(extra)
    return options


def to_cog(tmp: Path, final: Path, options: Mapping[str, object], tags: Mapping[str, str]) -> Path:
    """Convert the finished temporary GeoTIFF ``tmp`` to a COG at a new temporary name beside
    ``final``, adding the tags; returns that name.

    Stoppable by Ctrl-C/SIGTERM (:func:`geomask.output.gdalcopy.create_copy`); whatever way it ends,
    the intermediate file is removed, and on failure or interrupt the COG's temporary file and
    GDAL's overview temporaries (``NAME...partial.ovr.tmp``) too.

    Raises
    ------
    OutputError
        The conversion failed (saying when the disk is full).
    """
    cog_tmp = partial_path(final)
    try:
        # GDAL's COG driver converts from the finished tiled GeoTIFF block by block;
        # writing the COG driver window by window would buffer the whole raster. The
        # provenance tags go to the COG only: the intermediate never carries them.
        gdalcopy.create_copy(tmp, cog_tmp, driver="COG", options=options, tags=tags)
    except CopyFailed as e:
        remove_temporaries(cog_tmp)
        raise write_failure(final, "converting to COG", e, tmp.stat().st_size, no_space=e.no_space) from e
    except BaseException:
        remove_temporaries(cog_tmp)
        raise
    finally:
        remove_temporaries(tmp)
    return cog_tmp
