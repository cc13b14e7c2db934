"""The new mask sources through the windowed engine: windowed runs equal the whole-array oracle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from conftest import write_raster
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from test_engine import assert_bits_equal

from geomask import kernels
from geomask.convolve import masked_convolve
from geomask.grid import Grid
from geomask.masks import (
    AllSource,
    AnySource,
    BboxSource,
    ExpressionSource,
    GrowSource,
    MaskContext,
    NotSource,
    RasterSource,
    ShrinkSource,
)
from geomask.process import process_scene
from geomask.spec import OutputSpec, RunOptions, Step


@pytest.fixture(scope="module")
def lonlat_classes(tmp_path_factory: pytest.TempPathFactory, rgb_scene_path: Path) -> Path:
    """Blocky classes 1..4 in EPSG:4326 at about 250 m over the Landsat subset, nodata 0 in places."""
    with rasterio.open(rgb_scene_path) as ds:
        west, south, east, north = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
    res = 0.0025
    width, height = int((east - west) / res) + 2, int((north - south) / res) + 2
    rng = np.random.default_rng(4)
    classes = rng.integers(1, 5, size=(height, width)).astype(np.uint8)
    classes[rng.random(classes.shape) < 0.05] = 0
    transform = Affine(res, 0.0, west - res, 0.0, -res, north + res)
    path = tmp_path_factory.mktemp("classes") / "landcover.tif"
    return write_raster(path, classes, crs="EPSG:4326", transform=transform, nodata=0)


@pytest.fixture(scope="module")
def rgb_scene_path() -> Path:
    return Path(__file__).resolve().parents[1] / "data" / "RGB.byte.tif"


@pytest.mark.parametrize(
    "options",
    [
        RunOptions(window_size=100, align_windows=False, workers=4),
        RunOptions(window_size=37, align_windows=False, scheduler="synchronous"),
        pytest.param(RunOptions(window_size=256, scheduler="processes", workers=2), marks=pytest.mark.slow),
    ],
    ids=["threads-100", "sync-37", "processes-256"],
)
@pytest.mark.slow
def test_composite_mask_through_the_engine(
    rgb_scene_path: Path, lonlat_classes: Path, tmp_path: Path, options: RunOptions
) -> None:
    with rasterio.open(rgb_scene_path) as ds:
        array, nodata = ds.read(), ds.nodata
        grid = Grid(ds.crs, ds.transform, ds.height, ds.width)
    x0, y0 = grid.transform @ (200, 500)
    x1, y1 = grid.transform @ (600, 150)
    source = AllSource(
        [
            AnySource(
                [
                    ExpressionSource("(b1 > 60) & (b2 < b1 + 20)"),
                    GrowSource(RasterSource(lonlat_classes, values=[2]), 3),
                ]
            ),
            NotSource(ShrinkSource(BboxSource((x0, y0, x1, y1)), 4)),
        ]
    )
    bound = source.bind(MaskContext(grid, str(rgb_scene_path), nodata))
    mask = bound.render(Window(0, 0, grid.width, grid.height))
    assert 0.1 * mask.size < mask.sum() < 0.9 * mask.size
    kernel = kernels.get("gaussian", sigma=1.0)
    expected = masked_convolve(array, kernel, mask, nodata=nodata)
    out = tmp_path / "out.tif"
    report = process_scene(rgb_scene_path, OutputSpec(out), [Step(kernel, source)], options=options)
    with rasterio.open(out) as ds:
        assert_bits_equal(ds.read(), expected)
    assert report.pixels_selected == int(mask.sum())
