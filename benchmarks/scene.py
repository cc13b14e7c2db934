"""A deterministic benchmark scene and ROI set, generated once and cached in benchmarks/.cache/."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import Polygon

CACHE = Path(__file__).resolve().parent / ".cache"


def make_scene(size: int, bands: int = 3, block: int = 512) -> Path:
    """A size x size x bands uint16 GeoTIFF (UTM 33N, 10 m), tiled ``block``, DEFLATE.

    Smooth structure (low-frequency sines) plus noise, written block row by block row so
    generating an 8192 x 8192 scene needs little memory.
    """
    path = CACHE / f"scene_{size}x{size}x{bands}.tif"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(42)
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": bands,
        "dtype": "uint16",
        "crs": "EPSG:32633",
        "transform": from_origin(500000.0, 5000000.0, 10.0, 10.0),
        "tiled": True,
        "blockxsize": block,
        "blockysize": block,
        "compress": "deflate",
        "nodata": 0,
    }
    tmp = path.with_suffix(".tmp.tif")
    x = np.arange(size, dtype=np.float64)
    with rasterio.open(tmp, "w", **profile) as ds:
        for row in range(0, size, block):
            h = min(block, size - row)
            y = np.arange(row, row + h, dtype=np.float64)[:, None]
            for b in range(bands):
                smooth = 2000 + 800 * np.sin(x / (300 + 50 * b)) * np.cos(y / (400 + 30 * b))
                noise = rng.normal(0, 60, size=(h, size))
                ds.write(
                    np.clip(smooth + noise, 1, 65535).astype("uint16"),
                    b + 1,
                    window=((row, row + h), (0, size)),
                )
    tmp.rename(path)
    return path


def make_rois(scene: Path, count: int = 60, cover: float = 0.03) -> Path:
    """``count`` square-ish ROI polygons covering about ``cover`` of the scene, stored in EPSG:4326."""
    path = scene.with_name(scene.stem + f"_rois{count}.gpkg")
    if path.exists():
        return path
    with rasterio.open(scene) as ds:
        left, bottom, right, top = ds.bounds
        crs = ds.crs
    rng = np.random.default_rng(7)
    side = np.sqrt(cover * (right - left) * (top - bottom) / count)
    polys = []
    for _ in range(count):
        cx = rng.uniform(left + side, right - side)
        cy = rng.uniform(bottom + side, top - side)
        r = side / 2 * rng.uniform(0.8, 1.2, size=8)
        angles = np.linspace(0, 2 * np.pi, 8, endpoint=False) + rng.uniform(0, 0.5)
        polys.append(Polygon(np.c_[cx + r * np.cos(angles) * 1.1, cy + r * np.sin(angles) * 1.1]))
    gdf = gpd.GeoDataFrame({"id": range(count)}, geometry=polys, crs=crs).to_crs("EPSG:4326")
    gdf.to_file(path, driver="GPKG", engine="pyogrio")
    return path
