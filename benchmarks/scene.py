"""A deterministic benchmark scene and ROI set, generated once and cached in benchmarks/.cache/."""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import Polygon

CACHE = Path(__file__).resolve().parent / ".cache"


def _profile(side: int, bands: int, block: int, compress: str) -> dict:
    """A side x side x bands uint16 GeoTIFF in UTM 33N at 10 m, tiled ``block``, nodata 0."""
    return {
        "driver": "GTiff",
        "width": side,
        "height": side,
        "count": bands,
        "dtype": "uint16",
        "crs": "EPSG:32633",
        "transform": from_origin(500000.0, 5000000.0, 10.0, 10.0),
        "tiled": True,
        "blockxsize": block,
        "blockysize": block,
        "compress": compress,
        "nodata": 0,
    }


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
    profile = _profile(size, bands, block, "deflate")
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


def make_big_scene(gigabytes: float, bands: int = 3, block: int = 512) -> Path:
    """A square uncompressed ``bands`` x uint16 GeoTIFF of about ``gigabytes`` GB (10^9 bytes).

    Tiled ``block``, BigTIFF above 4 GB, UTM 33N at 10 m. The pixels are a smooth integer
    gradient plus a repeated 512 x 512 noise tile: not constant, highly compressible, and
    generated at disk speed (no per-pixel random numbers, no compression).
    """
    side = max(block, round(math.sqrt(gigabytes * 1e9 / (bands * 2)) / block) * block)
    path = CACHE / f"big2_{side}x{side}x{bands}.tif"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(43)
    noise = rng.integers(0, 4, size=(block, block), dtype=np.int32)
    x = np.arange(side, dtype=np.float64)
    col_term = np.rint(600 * np.sin(x / 900)).astype(np.int32)
    profile = _profile(side, bands, block, "none") | {
        "BIGTIFF": "YES" if side * side * bands * 2 > 3.9e9 else "NO"
    }
    tmp = path.with_suffix(".tmp.tif")
    reps = math.ceil(side / block)
    with rasterio.Env(GDAL_CACHEMAX=1024), rasterio.open(tmp, "w", **profile) as ds:
        for row in range(0, side, block):
            h = min(block, side - row)
            y = np.arange(row, row + h, dtype=np.float64)
            row_term = np.rint(600 * np.cos(y / 1100)).astype(np.int32)
            tile = np.tile(noise[:h], (1, reps))[:, :side]
            for b in range(bands):
                plane = (2000 + 150 * b) + row_term[:, None] + col_term[None, :] + tile
                ds.write(plane.astype(np.uint16), b + 1, window=((row, row + h), (0, side)))
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
