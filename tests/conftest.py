"""Shared fixtures: small georeferenced rasters made in code, the sample data folder."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from hypothesis import HealthCheck, settings
from rasterio.transform import from_origin

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"

settings.register_profile(
    "default",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# A suite started as a background job of a non-interactive shell (`make test &`, nohup, some CI
# runners) inherits SIGINT ignored, and every process the tests start would inherit that too: the
# Ctrl-C tests would then see their SIGINT ignored. Catching it here (Python's own handler) makes
# the processes the tests start get the default disposition again, as from a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_report_header(config: pytest.Config) -> list[str]:
    import numba

    return [
        f"rasterio {rasterio.__version__}, GDAL {rasterio.__gdal_version__}, "
        f"numpy {np.__version__}, numba {numba.__version__}"
    ]


def write_raster(
    path: Path,
    array: np.ndarray,
    *,
    crs: str | None = "EPSG:32618",
    transform: Any = None,
    nodata: float | None = None,
    block: int | None = 16,
    compress: str | None = None,
    **extra: Any,
) -> Path:
    """Write ``array`` ((bands, H, W) or (H, W)) as a GeoTIFF; tiled ``block`` x ``block`` or striped."""
    data = array[None] if array.ndim == 2 else array
    count, height, width = data.shape
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": data.dtype.name,
        "crs": crs,
        "transform": transform if transform is not None else from_origin(300000.0, 5000000.0, 30.0, 30.0),
        "nodata": nodata,
    }
    if block:
        profile.update(tiled=True, blockxsize=block, blockysize=block)
    if compress:
        profile["compress"] = compress
    profile.update(extra)
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
    return path


def raw_tiles(path: Path) -> list[bytes]:
    """The compressed bytes of every tile of the first image of a tiled TIFF, in TileOffsets order."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page, fh = tif.pages.first, tif.filehandle
        out = []
        for offset, count in zip(page.dataoffsets, page.databytecounts, strict=True):
            fh.seek(offset)
            out.append(fh.read(count))
        return out


@pytest.fixture
def make_raster(tmp_path: Path) -> Callable[..., Path]:
    """A factory: ``make_raster(array, name="scene.tif", **write_raster options)`` -> path."""
    counter = iter(range(1_000_000))

    def make(array: np.ndarray, name: str | None = None, **kwargs: Any) -> Path:
        return write_raster(tmp_path / (name or f"scene{next(counter)}.tif"), array, **kwargs)

    return make


@pytest.fixture
def rgb_scene() -> Path:
    """The Landsat 7 subset shipped in data/ (3 bands uint8, EPSG:32618, nodata 0)."""
    return DATA / "RGB.byte.tif"


@pytest.fixture
def roi_fields() -> Path:
    """ROI polygons over data/RGB.byte.tif, stored in EPSG:4326."""
    return DATA / "roi_fields.geojson"
