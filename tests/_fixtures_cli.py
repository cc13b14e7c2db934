"""Small georeferenced inputs and pipeline files for the config, pipeline and CLI tests.

Scenes are made in code with rasterio (UTM 18N, 30 m pixels) and regions of interest are written with
geopandas in EPSG:4326, so every run reprojects the ROI.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
import yaml
from affine import Affine
from numpy.typing import NDArray
from pyproj import Transformer

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
PIPELINES = REPO / "pipelines"
CONFIGS = REPO / "configs"
PENDING_PIPELINES: frozenset[str] = frozenset()
"""Shipped pipelines that need issue 17's core (band names in expressions, asset masks, {id}/{asset}),
run by tests/test_pipelines_products.py: empty this set when the core is merged."""


def shipped_pipelines() -> list[Path]:
    """The pipelines of pipelines/ that the generic tests validate and run (all but the pending ones)."""
    return sorted(p for p in PIPELINES.glob("*.yaml") if p.name not in PENDING_PIPELINES)


SCENE_CRS = "EPSG:32618"
SCENE_TRANSFORM = Affine(30.0, 0.0, 500_000.0, 0.0, -30.0, 4_100_000.0)

# The ROI as a pixel box (col0, row0, col1, row1) of the scene: pixel centres inside are selected.
ROI_PIXELS = (10, 8, 40, 30)


def make_scene(
    path: Path,
    *,
    width: int = 64,
    height: int = 48,
    count: int = 2,
    dtype: str = "uint16",
    nodata: float | None = 0,
    tiled: bool = False,
    seed: int = 0,
    block: int = 16,
) -> NDArray[Any]:
    """Write a random scene to ``path`` and return its pixels (count, height, width).

    ``tiled``: ``block`` x ``block`` tiles, DEFLATE."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "ui" else None
    high = min(int(info.max), 5000) if info is not None else 1.0
    data = rng.integers(1, high, size=(count, height, width)).astype(dtype)
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": dtype,
        "crs": SCENE_CRS,
        "transform": SCENE_TRANSFORM,
        "nodata": nodata,
    }
    if tiled:
        profile.update(tiled=True, blockxsize=block, blockysize=block, compress="deflate")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return data


def roi_polygon_utm(box: tuple[int, int, int, int] = ROI_PIXELS) -> shapely.Polygon:
    """The pixel box as a polygon in the scene CRS, its edges a quarter pixel outside the box."""
    col0, row0, col1, row1 = box
    x0, y0 = SCENE_TRANSFORM @ (col0 - 0.25, row0 - 0.25)
    x1, y1 = SCENE_TRANSFORM @ (col1 + 0.25, row1 + 0.25)
    return shapely.Polygon(shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))).segmentize(5.0)


def make_roi(path: Path, box: tuple[int, int, int, int] = ROI_PIXELS) -> Path:
    """Write the ROI over ``box`` to ``path`` (GeoJSON) in EPSG:4326."""
    to_wgs84 = Transformer.from_crs(SCENE_CRS, "EPSG:4326", always_xy=True)
    polygon = shapely.transform(
        roi_polygon_utm(box), lambda xy: np.c_[to_wgs84.transform(xy[:, 0], xy[:, 1])]
    )
    gpd.GeoDataFrame({"id": [1]}, geometry=[polygon], crs="EPSG:4326").to_file(path, driver="GeoJSON")
    return path


def roi_mask(shape: tuple[int, int], box: tuple[int, int, int, int] = ROI_PIXELS) -> NDArray[np.bool_]:
    """The pixels the ROI selects (pixel-centre rule), as a bool array."""
    col0, row0, col1, row1 = box
    mask = np.zeros(shape, dtype=bool)
    mask[row0:row1, col0:col1] = True
    return mask


def write_yaml(path: Path, document: dict[str, Any] | str) -> Path:
    """Write a pipeline (a mapping or YAML text) to ``path``."""
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False))
    return path


def make_project(folder: Path, **overrides: Any) -> Path:
    """A scene, an ROI and a one-step pipeline in ``folder``; returns the pipeline path.

    ``overrides`` replace top-level keys of the pipeline (None removes a key).
    """
    make_scene(folder / "scene.tif")
    make_roi(folder / "roi.geojson")
    document: dict[str, Any] = {
        "input": "scene.tif",
        "mask": {"vector": "roi.geojson"},
        "kernel": {"name": "gaussian", "sigma": 1},
        "output": {"path": "out/scene.denoised.tif"},
    }
    for key, value in overrides.items():
        if value is None:
            document.pop(key, None)
        else:
            document[key] = value
    return write_yaml(folder / "pipeline.yaml", document)


def corrupt_tiles(path: Path) -> None:
    """Overwrite the middle of a compressed tiled GeoTIFF with garbage, so decoding its tiles fails."""
    raw = bytearray(path.read_bytes())
    start = len(raw) // 3
    raw[start : start + len(raw) // 3] = bytes(range(256)) * (len(raw) // 3 // 256) + bytes(
        len(raw) // 3 % 256
    )
    path.write_bytes(bytes(raw))


@contextlib.contextmanager
def mounted_tmpfs(folder: Path, options: str, what: str) -> Iterator[Path]:
    """Mount a tmpfs with ``options`` (e.g. ``ro,size=64k``) on the existing ``folder``, unmount after.

    Skips the test, naming the missing resource (``what``), where mounting is not possible
    (no mount command, or not root / CAP_SYS_ADMIN).
    """
    try:
        command = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)]
        done = subprocess.run(command, capture_output=True, check=False)
    except OSError as e:
        pytest.skip(f"no mount command to make {what} ({e})")
    if done.returncode != 0:
        pytest.skip(f"mounting {what} is not permitted here (root/CAP_SYS_ADMIN): {done.stderr!r}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)
