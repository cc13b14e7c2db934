"""Tests of geomask.masks.raster: class rasters on other grids, resampled per window by nearest neighbour."""

from __future__ import annotations

import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import rasterio
from _fixtures_masks import WINDOW_SIZES, full, pixel_by_pixel, tiled, window_of
from affine import Affine
from conftest import write_raster
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject
from rasterio.windows import Window

from geomask.errors import InputError, MaskError, NoOverlapWarning
from geomask.grid import Grid
from geomask.masks import MaskContext, RasterSource
from geomask.masks.raster import BoundRasterMask

UTM = CRS.from_epsg(32618)
WGS84 = CRS.from_epsg(4326)
# The scene: 100 x 120 pixels of 30 m in UTM 18N, origin not a round number.
SCENE = Grid(UTM, Affine(30.0, 0.0, 500_013.7, 0.0, -30.0, 4_100_021.3), 100, 120)
NODATA = 255


def _classes(shape: tuple[int, int], seed: int) -> NDArray[np.uint8]:
    """Blocky classes 0..5 (runs of a few pixels, so that selections have edges) with some nodata."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 6, size=(shape[0] // 3 + 1, shape[1] // 3 + 1)).astype(np.uint8)
    classes = np.repeat(np.repeat(coarse, 3, axis=0), 3, axis=1)[: shape[0], : shape[1]].copy()
    classes[rng.random(shape) < 0.05] = NODATA
    return classes


def _bind(source: RasterSource, grid: Grid = SCENE) -> BoundRasterMask:
    return source.bind(MaskContext(grid))


def _nearest_oracle(path: Path, grid: Grid, values: list[int]) -> NDArray[np.bool_]:
    """The class under every scene pixel centre, looked up on the whole grid with pyproj and numpy."""
    with rasterio.open(path) as ds:
        classes, transform, crs, nodata = ds.read(1), ds.transform, ds.crs, ds.nodata
    cols, rows = np.meshgrid(np.arange(grid.width) + 0.5, np.arange(grid.height) + 0.5)
    xs, ys = grid.transform @ (cols, rows)
    if crs != grid.crs:
        xs, ys = Transformer.from_crs(grid.crs, crs, always_xy=True).transform(xs, ys)
    src_cols, src_rows = ~transform @ (np.asarray(xs), np.asarray(ys))
    src_cols, src_rows = np.floor(src_cols).astype(int), np.floor(src_rows).astype(int)
    inside = (src_rows >= 0) & (src_rows < classes.shape[0]) & (src_cols >= 0) & (src_cols < classes.shape[1])
    picked = classes[np.clip(src_rows, 0, classes.shape[0] - 1), np.clip(src_cols, 0, classes.shape[1] - 1)]
    return inside & np.isin(picked, values) & (picked != nodata)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def lonlat_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Classes in EPSG:4326 at about 100 m, covering most of SCENE and reaching past two of its sides."""
    folder = tmp_path_factory.mktemp("classes")
    west, south, east, north = rasterio.warp.transform_bounds(UTM, WGS84, *SCENE.bounds)
    res = (0.0011, 0.0009)
    origin = (west + 0.2 * (east - west), north + 0.1 * (north - south))
    width = int((east - origin[0]) / res[0]) + 5
    height = int((origin[1] - south) / res[1]) - 4
    transform = Affine(res[0], 0.0, origin[0], 0.0, -res[1], origin[1])
    return write_raster(
        folder / "classes_4326.tif",
        _classes((height, width), 1),
        crs="EPSG:4326",
        transform=transform,
        nodata=NODATA,
    )


@pytest.fixture(scope="module")
def same_grid_classes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, NDArray[np.uint8]]:
    classes = _classes(SCENE.shape, 2)
    path = tmp_path_factory.mktemp("same") / "classes.tif"
    return write_raster(path, classes, transform=SCENE.transform, nodata=NODATA), classes


# ---------------------------------------------------------------- oracles


@pytest.mark.slow
def test_same_grid_equals_isin(same_grid_classes: tuple[Path, NDArray[np.uint8]]) -> None:
    path, classes = same_grid_classes
    mask = _bind(RasterSource(path, values=[1, 3, NODATA]))
    expected = np.isin(classes, [1, 3]) & (classes != NODATA)
    whole = mask.render(full(SCENE))
    assert 0.2 * whole.size < expected.sum() < 0.5 * whole.size
    np.testing.assert_array_equal(whole, expected)  # nodata is never selected, even when listed
    for size in WINDOW_SIZES:
        np.testing.assert_array_equal(tiled(mask, SCENE.shape, size, (5, 2)), expected)
    np.testing.assert_array_equal(pixel_by_pixel(mask, Window(40, 30, 20, 15)), expected[30:45, 40:60])


def test_same_grid_range(same_grid_classes: tuple[Path, NDArray[np.uint8]]) -> None:
    path, classes = same_grid_classes
    mask = _bind(RasterSource(path, range=(2, 4)))
    expected = (classes >= 2) & (classes <= 4)
    np.testing.assert_array_equal(mask.render(full(SCENE)), expected)
    np.testing.assert_array_equal(tiled(mask, SCENE.shape, (7, 13)), expected)
    everything = _bind(RasterSource(path, range=(0, 1000))).render(full(SCENE))
    np.testing.assert_array_equal(everything, classes != NODATA)


@pytest.mark.slow
def test_lonlat_classes_on_a_utm_scene(lonlat_classes: Path) -> None:
    mask = _bind(RasterSource(lonlat_classes, values=[2, 5]))
    expected = _nearest_oracle(lonlat_classes, SCENE, [2, 5])
    whole = mask.render(full(SCENE))
    assert 0.15 * whole.size < expected.sum() < 0.5 * whole.size
    assert not expected[:, :10].any()  # the class raster starts east of the scene's west edge
    np.testing.assert_array_equal(whole, expected)
    for size in WINDOW_SIZES:
        np.testing.assert_array_equal(tiled(mask, SCENE.shape, size, (3, 8)), expected)
    np.testing.assert_array_equal(pixel_by_pixel(mask, Window(20, 70, 25, 30)), expected[70:100, 20:45])


def test_lonlat_classes_agree_with_gdal_nearest(lonlat_classes: Path) -> None:
    with rasterio.open(lonlat_classes) as ds:
        warped = np.full(SCENE.shape, NODATA, dtype=np.uint8)
        reproject(
            rasterio.band(ds, 1),
            warped,
            dst_transform=SCENE.transform,
            dst_crs=SCENE.crs,
            dst_nodata=NODATA,
            resampling=Resampling.nearest,
        )
    gdal = np.isin(warped, [2, 5])
    ours = _bind(RasterSource(lonlat_classes, values=[2, 5])).render(full(SCENE))
    assert (ours != gdal).mean() < 0.01  # GDAL approximates the transformation, so edges may differ


@settings(max_examples=10, deadline=None)
@given(
    size=st.tuples(st.integers(3, 50), st.integers(3, 50)),
    phase=st.tuples(st.integers(0, 50), st.integers(0, 50)),
    window=st.tuples(st.integers(0, 99), st.integers(0, 119), st.integers(1, 100), st.integers(1, 120)),
    max_read=st.sampled_from([1, 7, 64, 1 << 22]),
)
@pytest.mark.slow
def test_windowed_equals_whole_scene(
    lonlat_classes: Path,
    size: tuple[int, int],
    phase: tuple[int, int],
    window: tuple[int, int, int, int],
    max_read: int,
) -> None:
    bound = _bind(RasterSource(lonlat_classes, range=(1, 3)))
    mask = _with_max_read(bound, max_read)
    expected = _nearest_oracle(lonlat_classes, SCENE, [1, 2, 3])
    np.testing.assert_array_equal(tiled(mask, SCENE.shape, size, phase), expected)
    win = window_of(SCENE, *window)
    r, c = int(win.row_off), int(win.col_off)
    np.testing.assert_array_equal(mask.render(win), expected[r : r + win.height, c : c + win.width])


def _with_max_read(mask: BoundRasterMask, max_read: int) -> BoundRasterMask:
    return BoundRasterMask(
        mask.path,
        mask.band,
        source_grid=mask.source_grid,
        target_grid=mask.target_grid,
        nodata=mask.nodata,
        values=mask.values,
        range=mask.range,
        max_read_pixels=max_read,
    )


def test_coarser_offset_grid_in_the_same_crs(tmp_path: Path) -> None:
    # 60 m classes whose origin is 40 m west and 25 m north of the scene's: exact integer oracle.
    t = SCENE.transform
    transform = Affine(60.0, 0.0, t.c - 40.0, 0.0, -60.0, t.f + 25.0)
    classes = _classes((60, 70), 3)
    path = write_raster(tmp_path / "coarse.tif", classes, transform=transform, nodata=NODATA)
    rows = (30 * np.arange(SCENE.height) + 15 + 25) // 60
    cols = (30 * np.arange(SCENE.width) + 15 + 40) // 60
    picked = classes[np.ix_(rows, cols)]
    expected = np.isin(picked, [0, 4])
    mask = _bind(RasterSource(path, values=[0, 4]))
    np.testing.assert_array_equal(mask.render(full(SCENE)), expected)
    np.testing.assert_array_equal(tiled(mask, SCENE.shape, (9, 11), (4, 4)), expected)


@pytest.mark.slow
def test_finer_grid_reads_in_pieces(tmp_path: Path) -> None:
    # 7.5 m classes offset by 3 m: each scene pixel takes the class under its centre, 4 x 4 apart.
    t = SCENE.transform
    transform = Affine(7.5, 0.0, t.c - 3.0, 0.0, -7.5, t.f + 3.0)
    classes = _classes((4 * SCENE.height + 2, 4 * SCENE.width + 2), 4)
    path = write_raster(tmp_path / "fine.tif", classes, transform=transform, nodata=NODATA)
    picked = classes[np.ix_(4 * np.arange(SCENE.height) + 2, 4 * np.arange(SCENE.width) + 2)]
    expected = np.isin(picked, [1, 2])
    bound = _bind(RasterSource(path, values=[1, 2]))
    for max_read in (1, 50, 1 << 22):
        mask = _with_max_read(bound, max_read)
        np.testing.assert_array_equal(mask.render(full(SCENE)), expected)
        np.testing.assert_array_equal(tiled(mask, SCENE.shape, (13, 17)), expected)


def test_other_band_and_float_classes_with_nan(tmp_path: Path) -> None:
    classes = np.stack([np.zeros(SCENE.shape), _classes(SCENE.shape, 5).astype(np.float32)]).astype(
        np.float32
    )
    classes[1, :5, :5] = np.nan
    path = write_raster(tmp_path / "float.tif", classes, transform=SCENE.transform, nodata=NODATA)
    mask = _bind(RasterSource(path, range=(-1, 1000), band=2))
    expected = (classes[1] != NODATA) & ~np.isnan(classes[1])
    np.testing.assert_array_equal(mask.render(full(SCENE)), expected)
    assert not mask.render(Window(0, 0, 5, 5)).any()


def test_no_crs_on_either_side(tmp_path: Path) -> None:
    grid = Grid(None, SCENE.transform, 20, 30)
    classes = _classes((20, 30), 6)
    path = write_raster(tmp_path / "plain.tif", classes, crs=None, transform=SCENE.transform, nodata=NODATA)
    whole = _bind(RasterSource(path, values=[3]), grid).render(full(grid))
    np.testing.assert_array_equal(whole, classes == 3)


def test_class_raster_outside_the_scene_warns(tmp_path: Path) -> None:
    far = SCENE.transform @ Affine.translation(500, 0)
    path = write_raster(tmp_path / "far.tif", _classes((10, 10), 7), transform=far, nodata=NODATA)
    with pytest.warns(NoOverlapWarning, match=r"far\.tif does not overlap"):
        mask = _bind(RasterSource(path, values=[1]))
    assert mask.is_empty and not mask.render(full(SCENE)).any()


def test_pickle_threads_and_describe(lonlat_classes: Path) -> None:
    source = RasterSource(lonlat_classes, values=[2, 5])
    assert pickle.loads(pickle.dumps(source)) == source
    assert source.describe() == "raster(classes_4326.tif, values=[2, 5])"
    assert (
        RasterSource("a/c.tif", range=[1, 2.5], band=3).describe() == "raster(c.tif, range=[1, 2.5], band=3)"
    )  # type: ignore[arg-type]
    mask = _bind(source)
    clone = pickle.loads(pickle.dumps(mask))
    expected = mask.render(full(SCENE))
    np.testing.assert_array_equal(clone.render(full(SCENE)), expected)
    windows = [Window(c, r, 23, 19) for r in range(0, 100 - 19, 9) for c in range(0, 120 - 23, 11)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(clone.render, windows))
    for window, result in zip(windows, results, strict=True):
        r, c = int(window.row_off), int(window.col_off)
        np.testing.assert_array_equal(result, expected[r : r + 19, c : c + 23])


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one of values"),
        ({"values": [1], "range": (0, 1)}, "exactly one of values"),
        ({"values": []}, "values is empty"),
        ({"values": ["forest"]}, "values must be numbers"),
        ({"range": (3, 1)}, r"range \[3.0, 1.0\] needs lo <= hi"),
        ({"range": (1, 2, 3)}, r"range must be \[lo, hi\]"),
        ({"values": [1], "band": 0}, "band must be an integer from 1"),
    ],
)
def test_bad_selection(kwargs: dict, match: str) -> None:
    with pytest.raises(MaskError, match=rf"classes\.tif: .*{match}"):
        RasterSource("classes.tif", **kwargs)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MaskError, match=r"class raster .*nope\.tif: no such file") as info:
        _bind(RasterSource(tmp_path / "nope.tif", values=[1]))
    assert isinstance(info.value, InputError)


def test_not_a_raster(tmp_path: Path) -> None:
    path = tmp_path / "notes.tif"
    path.write_text("not a raster\n")
    with pytest.raises(MaskError, match=r"class raster .*notes\.tif: not a readable GeoTIFF") as info:
        _bind(RasterSource(path, values=[1]))
    assert info.value.__cause__ is not None


def test_band_out_of_range(same_grid_classes: tuple[Path, NDArray[np.uint8]]) -> None:
    path, _ = same_grid_classes
    with pytest.raises(MaskError, match=r"classes\.tif has 1 band, so band: 2 does not exist; use 1\.\.1"):
        _bind(RasterSource(path, values=[1], band=2))


def test_crs_missing_on_one_side(tmp_path: Path, same_grid_classes: tuple[Path, NDArray[np.uint8]]) -> None:
    plain = write_raster(tmp_path / "plain.tif", _classes((10, 10), 8), crs=None, transform=SCENE.transform)
    with pytest.raises(MaskError, match=r"plain\.tif has no CRS but the scene has one"):
        _bind(RasterSource(plain, values=[1]))
    path, _ = same_grid_classes
    with pytest.raises(MaskError, match=r"scene has no CRS, so class raster .*classes\.tif"):
        _bind(RasterSource(path, values=[1]), Grid(None, SCENE.transform, 10, 10))


def test_windows_outside_the_grid_are_refused(same_grid_classes: tuple[Path, NDArray[np.uint8]]) -> None:
    mask = _bind(RasterSource(same_grid_classes[0], values=[1]))
    for window in (Window(-1, 0, 5, 5), Window(110, 0, 11, 5), Window(0.5, 0, 5, 5)):
        with pytest.raises(MaskError, match=r"classes\.tif"):
            mask.render(window)
