"""Tests of geomask.masks.bbox: boxes in the scene's CRS and in others, rendered per window."""

from __future__ import annotations

import pickle
import warnings

import geopandas as gpd
import numpy as np
import pytest
import shapely
from _fixtures_masks import WINDOW_SIZES, full, pixel_by_pixel, tiled, window_of
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from rasterio.crs import CRS
from rasterio.features import rasterize

from geomask.errors import ConfigError, GridError, MaskError, NoOverlapWarning
from geomask.grid import Grid
from geomask.masks import BboxSource, MaskContext
from geomask.masks.bbox import DENSIFY_SEGMENTS

UTM = CRS.from_epsg(32618)
WGS84 = CRS.from_epsg(4326)
UTM_GRID = Grid(UTM, Affine(30.0, 0.0, 500_013.7, 0.0, -30.0, 4_100_021.3), 90, 110)
GEO_GRID = Grid(WGS84, Affine(0.0004, 0.0, -75.0051, 0.0, -0.0004, 37.0447), 70, 80)


def _in_grid_units(grid: Grid, col0: float, row0: float, col1: float, row1: float) -> tuple[float, ...]:
    """Bounds (xmin, ymin, xmax, ymax) in the grid's CRS of the box between two (col, row) points."""
    x0, y0 = grid.transform @ (col0, row0)
    x1, y1 = grid.transform @ (col1, row1)
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def _rasterized(bounds: tuple[float, ...], crs: CRS | None, grid: Grid) -> NDArray[np.bool_]:
    """The oracle: one rasterize of the (densified, reprojected) box on the whole grid."""
    box = shapely.box(*bounds)
    if crs is not None and crs != grid.crs:
        step = max(bounds[2] - bounds[0], bounds[3] - bounds[1]) / DENSIFY_SEGMENTS
        box = gpd.GeoSeries([shapely.segmentize(box, step)], crs=crs).to_crs(grid.crs).iloc[0]
    return rasterize([box], out_shape=grid.shape, transform=grid.transform).astype(bool)


def _centres_inside(bounds: tuple[float, ...], grid: Grid) -> NDArray[np.bool_]:
    """Pixels whose centre is strictly inside the box, straight from the grid's pixel-centre coordinates."""
    cols, rows = np.meshgrid(np.arange(grid.width) + 0.5, np.arange(grid.height) + 0.5)
    xs, ys = grid.transform @ (cols, rows)
    xmin, ymin, xmax, ymax = bounds
    return (xs > xmin) & (xs < xmax) & (ys > ymin) & (ys < ymax)


def _bind(source: BboxSource, grid: Grid = UTM_GRID):
    return source.bind(MaskContext(grid))


# ---------------------------------------------------------------- oracles


@pytest.mark.slow
def test_box_in_the_scene_crs_equals_both_oracles() -> None:
    bounds = _in_grid_units(UTM_GRID, 10.3, 70.6, 95.2, 12.1)
    mask = _bind(BboxSource(bounds))
    whole = mask.render(full(UTM_GRID))
    assert 0 < whole.sum() < whole.size
    np.testing.assert_array_equal(whole, _centres_inside(bounds, UTM_GRID))
    np.testing.assert_array_equal(whole, _rasterized(bounds, None, UTM_GRID))
    for size in WINDOW_SIZES:
        np.testing.assert_array_equal(tiled(mask, UTM_GRID.shape, size, (3, 5)), whole)
    np.testing.assert_array_equal(pixel_by_pixel(mask, full(UTM_GRID)), whole)


def test_box_on_pixel_edges_selects_exactly_its_pixels() -> None:
    mask = _bind(BboxSource(_in_grid_units(UTM_GRID, 20, 50, 60, 10)))
    whole = mask.render(full(UTM_GRID))
    assert whole.sum() == 40 * 40 and whole[10:50, 20:60].all()


def test_box_larger_than_the_scene_selects_everything() -> None:
    mask = _bind(BboxSource(_in_grid_units(UTM_GRID, -10, 200, 300, -5)))
    assert mask.render(full(UTM_GRID)).all()
    assert tiled(mask, UTM_GRID.shape, (7, 13)).all()


def _no_centre_ties(corners: tuple[float, ...]) -> bool:
    """No side on a row or column of pixel centres, where rasterize's tie-breaking may differ."""
    return all(abs(value % 1 - 0.5) > 1e-6 for value in corners)


@settings(max_examples=25, deadline=None)
@given(
    corners=st.tuples(st.floats(-20, 130), st.floats(-20, 110), st.floats(-20, 130), st.floats(-20, 110))
    .filter(lambda c: abs(c[0] - c[2]) > 0.01 and abs(c[1] - c[3]) > 0.01)
    .filter(_no_centre_ties),
    size=st.tuples(st.integers(1, 40), st.integers(1, 40)),
    phase=st.tuples(st.integers(0, 40), st.integers(0, 40)),
    window=st.tuples(st.integers(0, 89), st.integers(0, 109), st.integers(1, 90), st.integers(1, 110)),
)
@pytest.mark.slow
def test_windowed_equals_whole_grid_rasterize(
    corners: tuple[float, float, float, float],
    size: tuple[int, int],
    phase: tuple[int, int],
    window: tuple[int, int, int, int],
) -> None:
    bounds = _in_grid_units(UTM_GRID, *corners)
    expected = _rasterized(bounds, None, UTM_GRID)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoOverlapWarning)  # boxes outside the grid are drawn too
        mask = _bind(BboxSource(bounds))
    np.testing.assert_array_equal(tiled(mask, UTM_GRID.shape, size, phase), expected)
    win = window_of(UTM_GRID, *window)
    r, c = int(win.row_off), int(win.col_off)
    np.testing.assert_array_equal(mask.render(win), expected[r : r + win.height, c : c + win.width])


@pytest.mark.slow
def test_lonlat_box_on_a_utm_scene() -> None:
    lonlat = gpd.GeoSeries([shapely.box(*UTM_GRID.bounds)], crs=UTM).to_crs(WGS84).total_bounds
    w, s, e, n = lonlat
    bounds = (w + 0.2 * (e - w), s + 0.15 * (n - s), e - 0.1 * (e - w), n - 0.3 * (n - s))
    mask = _bind(BboxSource(bounds, crs="EPSG:4326"))
    whole = mask.render(full(UTM_GRID))
    expected = _rasterized(bounds, WGS84, UTM_GRID)
    assert 0.2 * whole.size < expected.sum() < 0.8 * whole.size
    np.testing.assert_array_equal(whole, expected)
    for size in WINDOW_SIZES:
        np.testing.assert_array_equal(tiled(mask, UTM_GRID.shape, size, (4, 9)), expected)
    np.testing.assert_array_equal(pixel_by_pixel(mask, full(UTM_GRID)), expected)


def test_utm_box_on_a_lonlat_scene() -> None:
    utm = gpd.GeoSeries([shapely.box(*GEO_GRID.bounds)], crs=WGS84).to_crs(UTM).total_bounds
    w, s, e, n = utm
    bounds = (w + 0.3 * (e - w), s + 0.1 * (n - s), e - 0.2 * (e - w), n - 0.25 * (n - s))
    mask = _bind(BboxSource(bounds, crs="EPSG:32618"), GEO_GRID)
    expected = _rasterized(bounds, UTM, GEO_GRID)
    assert 0.1 * expected.size < expected.sum() < 0.9 * expected.size
    np.testing.assert_array_equal(mask.render(full(GEO_GRID)), expected)
    for size in WINDOW_SIZES:
        np.testing.assert_array_equal(tiled(mask, GEO_GRID.shape, size, (2, 1)), expected)


def test_crs_equal_to_the_scenes_is_not_densified() -> None:
    bounds = _in_grid_units(UTM_GRID, 10.3, 70.6, 95.2, 12.1)
    same = _bind(BboxSource(bounds, crs="EPSG:32618")).render(full(UTM_GRID))
    np.testing.assert_array_equal(same, _centres_inside(bounds, UTM_GRID))


def test_no_crs_on_either_side_shares_coordinates() -> None:
    grid = Grid(None, Affine(2.0, 0.0, 100.0, 0.0, -2.0, 300.0), 40, 50)
    mask = _bind(BboxSource((110.0, 250.0, 140.0, 290.0)), grid).render(full(grid))
    assert mask.sum() == 15 * 20 and mask[5:25, 5:20].all()


# ---------------------------------------------------------------- misses and errors


def test_box_outside_the_scene_warns_and_selects_nothing() -> None:
    bounds = _in_grid_units(UTM_GRID, 200, 300, 220, 280)
    with pytest.warns(NoOverlapWarning, match=r"bbox \[.*passes through unchanged.*order"):
        mask = _bind(BboxSource(bounds))
    assert mask.is_empty and not mask.render(full(UTM_GRID)).any()


@pytest.mark.parametrize(
    ("bounds", "match"),
    [
        ((0, 0, 0, 1), "empty or inverted"),
        ((5, 0, 1, 1), "empty or inverted"),
        ((0, 2, 1, 1), "empty or inverted"),
        ((0, 0, float("inf"), 1), "four finite numbers"),
        ((0, 0, 1), "four finite numbers"),
        (("a", 0, 1, 1), "four numbers"),
        (None, "four numbers"),
    ],
)
def test_bad_bounds_are_config_errors(bounds: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        BboxSource(bounds)  # type: ignore[arg-type]


def test_bad_crs_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"crs: EPSG:nope given for bbox \[0, 0, 1, 1\] is not a valid CRS"):
        BboxSource((0, 0, 1, 1), crs="EPSG:nope")


def test_crs_on_a_scene_without_one() -> None:
    grid = Grid(None, UTM_GRID.transform, 10, 10)
    with pytest.raises(MaskError, match=r"scene has no CRS.*bbox"):
        _bind(BboxSource((0, 0, 1, 1), crs="EPSG:4326"), grid)


def test_rotated_grid() -> None:
    grid = Grid(UTM, UTM_GRID.transform @ Affine.rotation(10), 10, 10)
    with pytest.raises(GridError, match=r"rotated.*bbox"):
        _bind(BboxSource((0, 0, 1, 1)), grid)


def test_pickle_describe_and_equality() -> None:
    source = BboxSource([1, 2, 3.5, 4], crs="EPSG:4326")  # type: ignore[arg-type]
    assert source.bounds == (1.0, 2.0, 3.5, 4.0)
    assert pickle.loads(pickle.dumps(source)) == source
    assert source.describe() == "bbox(1, 2, 3.5, 4, EPSG:4326)"
    mask = _bind(BboxSource(_in_grid_units(UTM_GRID, 10.3, 70.6, 95.2, 12.1)))
    clone = pickle.loads(pickle.dumps(mask))
    np.testing.assert_array_equal(clone.render(full(UTM_GRID)), mask.render(full(UTM_GRID)))


@pytest.mark.parametrize("extent", [1e15, 1e300])
def test_a_box_far_larger_than_the_scene_selects_it_all(extent: float) -> None:
    """[-1e15, -1e15, 1e15, 1e15] selected 0 pixels (GDAL burns nothing past int32 pixel
    coordinates); 1e300 overflowed in GEOS and warned 'does not overlap'."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mask = _bind(BboxSource((-extent, -extent, extent, extent))).render(full(UTM_GRID))
        assert mask.all()
        half = _in_grid_units(UTM_GRID, 0, 0, UTM_GRID.width, UTM_GRID.height / 2)
        bounds = (-extent, half[1], extent, extent)
        np.testing.assert_array_equal(
            _bind(BboxSource(bounds)).render(full(UTM_GRID)), _centres_inside(bounds, UTM_GRID)
        )
    with pytest.warns(NoOverlapWarning):
        assert _bind(BboxSource((extent, extent, 2 * extent, 2 * extent))).is_empty
