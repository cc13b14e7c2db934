"""Tests of geomask.masks.vector: reading, reprojection, errors and tile-invariant rendering."""

from __future__ import annotations

import pickle
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from _fixtures_masks import full, tiled
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from rasterio.crs import CRS
from rasterio.features import rasterize
from rasterio.windows import Window

import geomask.masks.vector as vector_module
from geomask.errors import GridError, InputError, MaskError, NoOverlapWarning, RepairedGeometryWarning
from geomask.grid import Grid
from geomask.masks import (
    AllSource,
    AnySource,
    ArrayMask,
    ArraySource,
    BboxSource,
    BoundMask,
    ExpressionSource,
    FullMask,
    FullSource,
    GrowSource,
    KMeansSource,
    MaskContext,
    MaskSource,
    NotSource,
    RasterSource,
    ShrinkSource,
    VectorSource,
    write_mask,
)
from geomask.masks.blockcache import BLOCKS, BlockCache
from geomask.masks.vector import BLOCK_SIZE, BoundVectorMask

DATA = Path(__file__).resolve().parents[1] / "data"
UTM = CRS.from_epsg(32618)
WGS84 = CRS.from_epsg(4326)

# A 90 x 110 grid of 30 m pixels in UTM 18N, with an origin that is not a round number.
UTM_GRID = Grid(UTM, Affine(30.0, 0.0, 500_013.7, 0.0, -30.0, 4_100_021.3), 90, 110)
# A 70 x 80 grid of 0.0004 degree pixels in EPSG:4326, over the same area.
GEO_GRID = Grid(WGS84, Affine(0.0004, 0.0, -75.0051, 0.0, -0.0004, 37.0447), 70, 80)


# ---------------------------------------------------------------- helpers


def _random_polygons(grid: Grid, count: int, seed: int) -> list[shapely.Polygon]:
    """Star-shaped polygons of 5..12 vertices spread over ``grid`` (in its CRS), some crossing its edge."""
    rng = np.random.default_rng(seed)
    size = min(grid.res) * min(grid.shape)
    polygons = []
    for _ in range(count):
        cx, cy = grid.transform @ (rng.uniform(-5, grid.width + 5), rng.uniform(-5, grid.height + 5))
        n = int(rng.integers(5, 13))  # jittered, evenly spread angles: gaps below pi keep it simple
        angles = (np.arange(n) + rng.uniform(0, 0.8, n)) * (2 * np.pi / n)
        radii = rng.uniform(0.03, 0.2, n) * size
        polygons.append(shapely.Polygon(np.c_[cx + radii * np.cos(angles), cy + radii * np.sin(angles)]))
    return polygons


def _write(path: Path, geoms: list, crs: CRS | str | None, **columns: list) -> Path:
    """Write ``geoms`` (and attribute columns) to ``path``; the driver follows the suffix."""
    frame = gpd.GeoDataFrame(columns or {"id": list(range(len(geoms)))}, geometry=geoms, crs=crs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pyogrio warns when writing without a CRS
        frame.to_file(path, engine="pyogrio")
    return path


def _oracle(path: Path, grid: Grid, *, all_touched: bool = False, **read: object) -> NDArray[np.bool_]:
    """Whole-grid rasterize of the file's features reprojected to the grid: what the mask must equal."""
    frame = gpd.read_file(path, engine="pyogrio", **read).to_crs(grid.crs)
    return rasterize(
        frame.geometry, out_shape=grid.shape, transform=grid.transform, all_touched=all_touched
    ).astype(bool)


def _reblocked(mask: BoundVectorMask, block_size: int) -> BoundVectorMask:
    """The same mask rasterized in blocks of another size (to reach block edges on small grids)."""
    return BoundVectorMask(mask.geometries, mask.shape, all_touched=mask.all_touched, block_size=block_size)


def _bind(source: VectorSource, grid: Grid = UTM_GRID) -> BoundVectorMask:
    return source.bind(MaskContext(grid))


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def vectors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same random polygons over UTM_GRID, as GeoJSON in EPSG:4326, GPKG in UTM and a Shapefile."""
    folder = tmp_path_factory.mktemp("vectors")
    utm = gpd.GeoSeries(_random_polygons(UTM_GRID, 12, seed=1), crs=UTM)
    lonlat = list(utm.to_crs(WGS84))
    return {
        "geojson": _write(folder / "fields.geojson", lonlat, WGS84),
        "gpkg": _write(folder / "fields.gpkg", list(utm), UTM),
        "shp": _write(folder / "fields.shp", lonlat, WGS84),
    }


@pytest.fixture(scope="module")
def bound(vectors: dict[str, Path]) -> BoundVectorMask:
    return _bind(VectorSource(vectors["geojson"]))


@pytest.fixture(scope="module")
def oracle(vectors: dict[str, Path]) -> NDArray[np.bool_]:
    return _oracle(vectors["geojson"], UTM_GRID)


# ---------------------------------------------------------------- tile invariance


@pytest.mark.parametrize("kind", ["geojson", "gpkg", "shp"])
def test_whole_render_equals_oracle_for_every_format(vectors: dict[str, Path], kind: str) -> None:
    mask = _bind(VectorSource(vectors[kind]))
    expected = _oracle(vectors[kind], UTM_GRID)
    assert 500 < expected.sum() < expected.size - 500  # non-trivial
    np.testing.assert_array_equal(mask.render(full(UTM_GRID)), expected)


@settings(max_examples=30, deadline=None)
@given(
    block_size=st.sampled_from([5, 16, 37, BLOCK_SIZE]),
    size=st.tuples(st.integers(3, 95), st.integers(3, 115)),
    phase=st.tuples(st.integers(0, 40), st.integers(0, 40)),
    window=st.tuples(st.integers(0, 89), st.integers(0, 109), st.integers(1, 90), st.integers(1, 110)),
)
@pytest.mark.slow
def test_windowed_equals_whole_grid_oracle(
    bound: BoundVectorMask,
    oracle: NDArray[np.bool_],
    block_size: int,
    size: tuple[int, int],
    phase: tuple[int, int],
    window: tuple[int, int, int, int],
) -> None:
    mask = _reblocked(bound, block_size)
    np.testing.assert_array_equal(tiled(mask, UTM_GRID.shape, size, phase), oracle)
    row, col, height, width = window
    height, width = min(height, UTM_GRID.height - row), min(width, UTM_GRID.width - col)
    np.testing.assert_array_equal(
        mask.render(Window(col, row, width, height)), oracle[row : row + height, col : col + width]
    )


@pytest.mark.parametrize("all_touched", [False, True])
def test_one_pixel_windows(vectors: dict[str, Path], all_touched: bool) -> None:
    small = Grid(UTM, UTM_GRID.transform @ Affine.translation(30, 20), 24, 31)
    mask = _bind(VectorSource(vectors["gpkg"], all_touched=all_touched), small)
    whole = mask.render(full(small))
    assert 0 < whole.sum() < whole.size
    for block_size in (BLOCK_SIZE, 8):
        np.testing.assert_array_equal(tiled(_reblocked(mask, block_size), small.shape, (1, 1)), whole)
    if not all_touched:
        np.testing.assert_array_equal(whole, _oracle(vectors["gpkg"], small))


def test_default_blocks_on_a_grid_larger_than_one_block(tmp_path: Path) -> None:
    grid = Grid(UTM, Affine(10.0, 0.0, 600_003.3, 0.0, -10.0, 4_200_007.9), 300, 530)
    path = _write(tmp_path / "big.gpkg", _random_polygons(grid, 15, seed=7), UTM)
    mask = _bind(VectorSource(path), grid)
    expected = _oracle(path, grid)
    np.testing.assert_array_equal(mask.render(full(grid)), expected)
    for size, phase in (((100, 130), (0, 0)), ((256, 256), (17, 250)), ((37, 301), (5, 0))):
        np.testing.assert_array_equal(tiled(mask, grid.shape, size, phase), expected)


def test_utm_vector_on_a_geographic_grid(tmp_path: Path) -> None:
    lonlat = _random_polygons(GEO_GRID, 10, seed=3)
    path = _write(tmp_path / "utm.gpkg", list(gpd.GeoSeries(lonlat, crs=WGS84).to_crs(UTM)), UTM)
    mask = _bind(VectorSource(path), GEO_GRID)
    expected = _oracle(path, GEO_GRID)
    assert 200 < expected.sum() < expected.size - 200
    np.testing.assert_array_equal(mask.render(full(GEO_GRID)), expected)
    np.testing.assert_array_equal(tiled(_reblocked(mask, 9), GEO_GRID.shape, (11, 13), (4, 6)), expected)


def test_all_touched_is_tile_invariant_and_close_to_whole_image(vectors: dict[str, Path]) -> None:
    touched = _bind(VectorSource(vectors["geojson"], all_touched=True))
    centres = _bind(VectorSource(vectors["geojson"]))
    whole = touched.render(full(UTM_GRID))
    for block_size in (BLOCK_SIZE, 16, 7):
        for size, phase in (((8, 8), (3, 5)), ((33, 17), (0, 9)), ((90, 110), (0, 0))):
            np.testing.assert_array_equal(
                tiled(_reblocked(touched, block_size), UTM_GRID.shape, size, phase), whole
            )

    # Every pixel whose centre is inside is touched, and touching adds only pixels on the boundaries.
    inside = centres.render(full(UTM_GRID))
    assert (whole >= inside).all() and whole.sum() > inside.sum()
    frame = gpd.read_file(vectors["geojson"], engine="pyogrio").to_crs(UTM)
    reference = rasterize(
        frame.geometry, out_shape=UTM_GRID.shape, transform=UTM_GRID.transform, all_touched=True
    )
    boundary = rasterize(
        frame.geometry.boundary, out_shape=UTM_GRID.shape, transform=UTM_GRID.transform, all_touched=True
    ).astype(bool)
    differ = whole != reference.astype(bool)
    assert differ.sum() <= 0.01 * whole.sum()
    assert not (differ & ~boundary).any()
    assert not (whole & ~reference.astype(bool) & ~boundary).any()


@pytest.mark.slow
@pytest.mark.parametrize("all_touched", [False, True])
def test_ties_on_pixel_centres_and_edges_are_decided_alike_in_every_window(
    tmp_path: Path, all_touched: bool
) -> None:
    # Edges exactly on pixel centres (ties for the centre rule) and on pixel edges (ties for all_touched).
    t = UTM_GRID.transform
    boxes = [
        shapely.box(*t @ (c + shift, r + h + shift), *t @ (c + w + shift, r + shift))
        for c, r, w, h in ((3, 4, 20, 30), (37, 41, 60, 33), (70, 2, 17, 25))
        for shift in (0.0, 0.5)
    ]
    mask = _bind(VectorSource(_write(tmp_path / "ties.gpkg", boxes, UTM), all_touched=all_touched))
    whole = mask.render(full(UTM_GRID))
    for block_size in (BLOCK_SIZE, 16, 5):
        for size, phase in (((4, 3), (1, 2)), ((8, 8), (3, 5)), ((33, 17), (0, 9))):
            np.testing.assert_array_equal(
                tiled(_reblocked(mask, block_size), UTM_GRID.shape, size, phase), whole
            )
    # A whole-grid rasterize in map coordinates may break the ties otherwise, but only on the boundaries.
    reference = rasterize(boxes, out_shape=UTM_GRID.shape, transform=t, all_touched=all_touched).astype(bool)
    boundary = rasterize(
        shapely.boundary(boxes), out_shape=UTM_GRID.shape, transform=t, all_touched=True
    ).astype(bool)
    assert not ((whole != reference) & ~boundary).any()


def test_window_away_from_geometries_skips_rasterize(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corner = shapely.box(*UTM_GRID.transform @ (2, 12), *UTM_GRID.transform @ (12, 2))
    mask = _bind(VectorSource(_write(tmp_path / "corner.gpkg", [corner], UTM)))
    assert mask.render(Window(0, 0, 20, 20)).sum() == 100

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("rasterize called for a window with no geometry")

    monkeypatch.setattr(vector_module, "rasterize", fail)
    far = mask.render(Window(60, 50, 50, 40))
    assert far.shape == (40, 50) and not far.any()


# ---------------------------------------------------------------- geometry kinds and options


def test_lines_and_points_burn(tmp_path: Path) -> None:
    t = UTM_GRID.transform
    line = shapely.LineString([t @ (3.3, 4.2), t @ (70.6, 50.1), t @ (100.2, 10.7)])
    point = shapely.Point(t @ (40.4, 80.6))
    multipoint = shapely.MultiPoint([t @ (5.5, 85.5), t @ (105.5, 85.5)])
    path = _write(
        tmp_path / "features.geojson",
        list(gpd.GeoSeries([line, point, multipoint], crs=UTM).to_crs(WGS84)),
        WGS84,
    )
    mask = _bind(VectorSource(path))
    whole = mask.render(full(UTM_GRID))
    assert whole[80, 40] and whole[85, 5] and whole[85, 105]
    assert whole[4, 3] and whole[50, 70] and whole[10, 100]
    np.testing.assert_array_equal(whole, _oracle(path, UTM_GRID))
    np.testing.assert_array_equal(tiled(_reblocked(mask, 6), UTM_GRID.shape, (7, 9), (2, 3)), whole)


def test_buffer_is_in_grid_units_after_reprojection(vectors: dict[str, Path]) -> None:
    plain = _bind(VectorSource(vectors["geojson"])).render(full(UTM_GRID))
    frame = gpd.read_file(vectors["geojson"], engine="pyogrio").to_crs(UTM)
    for distance in (90.0, -45.0):
        mask = _bind(VectorSource(vectors["geojson"], buffer=distance)).render(full(UTM_GRID))
        expected = rasterize(
            shapely.buffer(frame.geometry.to_numpy(), distance),
            out_shape=UTM_GRID.shape,
            transform=UTM_GRID.transform,
        ).astype(bool)
        np.testing.assert_array_equal(mask, expected)
        assert (mask >= plain).all() if distance > 0 else (mask <= plain).all()
        assert mask.sum() != plain.sum()


def test_extreme_buffers_and_far_coordinates_select_what_they_cover(tmp_path: Path) -> None:
    """A buffer of 1e308 raised GEOSException ('unexpected', exit 1); -1e308 leaked a RuntimeWarning;
    a polygon reaching 1e15 m covering the scene burned nothing (past int32 pixels GDAL gives up)."""
    point = shapely.Point(UTM_GRID.transform @ (10.5, 10.5))
    path = _write(tmp_path / "point.gpkg", [point], UTM)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from shapely
        for distance in (1e308, 1e12):
            assert _bind(VectorSource(path, buffer=distance)).render(full(UTM_GRID)).all()
        with pytest.warns(NoOverlapWarning):
            assert _bind(VectorSource(path, buffer=-1e308)).is_empty
    middle = 4_100_021.3 - 30 * 45.25  # the top edge runs across the grid, between pixel centres
    huge = shapely.Polygon([(-1e15, -1e15), (1e15, -1e15), (1e15, middle), (-1e15, middle)])
    mask = _bind(VectorSource(_write(tmp_path / "huge.gpkg", [huge], UTM))).render(full(UTM_GRID))
    assert mask.any() and not mask.all()  # the top edge crosses the grid
    cols, rows = np.meshgrid(np.arange(UTM_GRID.width) + 0.5, np.arange(UTM_GRID.height) + 0.5)
    xs, ys = UTM_GRID.transform @ (cols, rows)
    np.testing.assert_array_equal(mask, shapely.contains_xy(huge, xs, ys))


def test_negative_buffer_erasing_everything_warns(tmp_path: Path) -> None:
    point = shapely.Point(UTM_GRID.transform @ (10.5, 10.5))
    path = _write(tmp_path / "point.gpkg", [point], UTM)
    with pytest.warns(NoOverlapWarning, match="point.gpkg"):
        mask = _bind(VectorSource(path, buffer=-1.0))
    assert mask.is_empty


@pytest.mark.slow
def test_where_filters_features(tmp_path: Path) -> None:
    polygons = _random_polygons(UTM_GRID, 6, seed=5)
    covers = ["forest", "urban", "forest", "water", "urban", "forest"]
    path = _write(tmp_path / "covers.shp", polygons, UTM, id=list(range(6)), landcover=covers)
    where = "landcover = 'forest'"
    mask = _bind(VectorSource(path, where=where))
    assert mask.describe() == "vector(covers.shp, 3 features)"
    np.testing.assert_array_equal(mask.render(full(UTM_GRID)), _oracle(path, UTM_GRID, where=where))
    everything = _bind(VectorSource(path)).render(full(UTM_GRID))
    assert mask.render(full(UTM_GRID)).sum() < everything.sum()


def test_layer_by_name_and_index(tmp_path: Path) -> None:
    path = tmp_path / "layers.gpkg"
    a, b = _random_polygons(UTM_GRID, 2, seed=11)
    for name, geom in (("a", a), ("b", b)):
        gpd.GeoDataFrame({"id": [1]}, geometry=[geom], crs=UTM).to_file(path, layer=name, engine="pyogrio")
    by_name = _bind(VectorSource(path, layer="b")).render(full(UTM_GRID))
    by_index = _bind(VectorSource(path, layer=1)).render(full(UTM_GRID))
    np.testing.assert_array_equal(by_name, by_index)
    np.testing.assert_array_equal(by_name, _oracle(path, UTM_GRID, layer="b"))


def test_crs_is_assumed_for_files_without_one(tmp_path: Path, vectors: dict[str, Path]) -> None:
    utm = list(gpd.read_file(vectors["gpkg"], engine="pyogrio").geometry)
    path = _write(tmp_path / "nocrs.shp", utm, None)
    assert not (tmp_path / "nocrs.prj").exists()
    mask = _bind(VectorSource(path, crs="EPSG:32618"))
    np.testing.assert_array_equal(mask.render(full(UTM_GRID)), _oracle(vectors["gpkg"], UTM_GRID))
    # The same crs as the file's own is accepted.
    _bind(VectorSource(vectors["gpkg"], crs="EPSG:32618"))


def test_no_crs_on_either_side_shares_coordinates(tmp_path: Path) -> None:
    grid = Grid(None, Affine(2.0, 0.0, 100.0, 0.0, -2.0, 300.0), 40, 50)
    path = _write(tmp_path / "plain.shp", [shapely.box(110.0, 250.0, 140.0, 290.0)], None)
    mask = _bind(VectorSource(path), grid).render(full(grid))
    assert mask.sum() == 15 * 20 and mask[5:25, 5:20].all()


def test_repaired_geometries_warn_and_burn(tmp_path: Path) -> None:
    t = UTM_GRID.transform
    bowtie = shapely.Polygon([t @ (10, 10), t @ (40, 40), t @ (40, 10), t @ (10, 40)])
    spike = shapely.Polygon(
        [t @ (60, 10), t @ (90, 10), t @ (90, 40), t @ (60, 40), t @ (60, 10), t @ (50, 5), t @ (60, 10)]
    )
    good = shapely.box(*t @ (60, 80), *t @ (80, 60))
    path = _write(tmp_path / "broken.gpkg", [bowtie, spike, good], UTM)
    with pytest.warns(RepairedGeometryWarning, match=r"repaired 2 invalid geometries of 3 in .*broken\.gpkg"):
        mask = _bind(VectorSource(path))
    whole = mask.render(full(UTM_GRID))
    assert whole[25, 15] and whole[25, 35] and not whole[15, 25]  # both triangles of the bow tie
    assert whole[20:40, 60:90].all() and not whole[5:8, 50:56].any()  # the spike is dropped, the square kept
    expected = rasterize(
        [shapely.make_valid(bowtie), shapely.box(*t @ (60, 40), *t @ (90, 10)), good],
        out_shape=UTM_GRID.shape,
        transform=t,
    ).astype(bool)
    np.testing.assert_array_equal(whole, expected)


def test_no_overlap_warns_and_renders_nothing(tmp_path: Path) -> None:
    far = shapely.box(*UTM_GRID.transform @ (200, 300), *UTM_GRID.transform @ (220, 280))
    path = _write(tmp_path / "far.gpkg", [far], UTM)
    with pytest.warns(NoOverlapWarning, match=r"far\.gpkg.*passes through unchanged"):
        mask = _bind(VectorSource(path))
    assert mask.is_empty
    assert not mask.render(full(UTM_GRID)).any()
    with pytest.raises(MaskError, match=r"far\.gpkg"):
        _bind(VectorSource(path, require_overlap=True))


def test_pickle_round_trip(bound: BoundVectorMask) -> None:
    for mask in (bound, _reblocked(bound, 16)):
        clone = pickle.loads(pickle.dumps(mask))
        assert isinstance(clone, BoundVectorMask) and clone.block_size == mask.block_size
        window = Window(7, 11, 60, 70)
        np.testing.assert_array_equal(clone.render(window), mask.render(window))
        np.testing.assert_array_equal(clone.render(full(UTM_GRID)), mask.render(full(UTM_GRID)))
    source = VectorSource("roi.gpkg", layer="x", buffer=-30.0)
    assert pickle.loads(pickle.dumps(source)) == source


def test_render_from_several_threads(bound: BoundVectorMask, oracle: NDArray[np.bool_]) -> None:
    mask = _reblocked(bound, 16)
    windows = [Window(c, r, 23, 19) for r in range(0, 90 - 19, 9) for c in range(0, 110 - 23, 11)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(mask.render, windows))
    for window, result in zip(windows, results, strict=True):
        r, c = int(window.row_off), int(window.col_off)
        np.testing.assert_array_equal(result, oracle[r : r + 19, c : c + 23])


def test_describe(vectors: dict[str, Path], bound: BoundVectorMask) -> None:
    assert bound.describe() == "vector(fields.geojson, 12 features)"
    assert VectorSource(vectors["gpkg"]).describe() == "vector(fields.gpkg)"
    assert (
        VectorSource("a/roi.gpkg", layer="fields", where="id = 1", buffer=30.0, all_touched=True).describe()
        == "vector(roi.gpkg, layer=fields, where=id = 1, buffer=30.0, all_touched)"
    )


def test_windows_outside_the_grid_are_refused(bound: BoundVectorMask) -> None:
    for window in (Window(-1, 0, 5, 5), Window(100, 0, 11, 5), Window(0, 85, 5, 6), Window(0.5, 0, 5, 5)):
        with pytest.raises(MaskError, match=r"fields\.geojson"):
            bound.render(window)


# ---------------------------------------------------------------- errors


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.gpkg"
    with pytest.raises(MaskError, match=r"not found: .*nope\.gpkg"):
        _bind(VectorSource(path))


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a vector file\n")
    with pytest.raises(MaskError, match=r"cannot read .*notes\.txt as a vector file") as info:
        _bind(VectorSource(path))
    assert info.value.__cause__ is not None
    with pytest.raises(MaskError, match=r"RGB\.byte\.tif"):
        _bind(VectorSource(DATA / "RGB.byte.tif"))


@pytest.mark.slow
def test_empty_file_and_empty_filter(tmp_path: Path, vectors: dict[str, Path]) -> None:
    path = _write(tmp_path / "empty.gpkg", [], UTM, id=[])
    with pytest.raises(MaskError, match=r"empty\.gpkg.*(empty|no features)"):
        _bind(VectorSource(path))
    with pytest.raises(MaskError, match=r"fields\.gpkg.*id = 999"):
        _bind(VectorSource(vectors["gpkg"], where="id = 999"))
    nulls = _write(tmp_path / "nulls.gpkg", [None, None], UTM)
    with pytest.raises(MaskError, match=r"nulls\.gpkg has no features with a geometry"):
        _bind(VectorSource(nulls))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["gpkg", "geojson"])
@pytest.mark.parametrize("where", ["no_such_column = 1", "id = = 1"])
def test_invalid_where_names_the_layer_and_lists_its_fields(
    vectors: dict[str, Path], kind: str, where: str
) -> None:
    with pytest.raises(MaskError) as caught:
        _bind(VectorSource(vectors[kind], where=where))
    message = str(caught.value)
    layer = vectors[kind].stem
    assert f"where: {where} is not a valid filter for layer {layer} of vector file" in message
    assert message.endswith("its fields are id")
    assert "b'" not in message and "'b" not in message and "SELECT" not in message


RUNAWAY = (
    "id IN (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c WHERE x < 0)"
)


def test_runaway_where_is_stopped_at_its_time_limit(vectors: dict[str, Path]) -> None:
    import psutil

    start = time.monotonic()
    with pytest.raises(MaskError, match=r"did not finish within 0\.5 s and was stopped"):
        _bind(VectorSource(vectors["gpkg"], where=RUNAWAY, where_time_limit=0.5))
    assert time.monotonic() - start < 3.0
    # the child reading the file is gone (multiprocessing's resource tracker may stay: it is shared)
    assert not [p for p in psutil.Process().children() if "resource_tracker" not in " ".join(p.cmdline())]


@pytest.mark.slow
def test_where_read_in_a_child_gives_the_same_features(vectors: dict[str, Path]) -> None:
    where = "id IN (SELECT id FROM fields WHERE id % 2 = 0)"  # SQLite subqueries still work on a GPKG
    mask = _bind(VectorSource(vectors["gpkg"], where=where))
    np.testing.assert_array_equal(
        mask.render(full(UTM_GRID)), _oracle(vectors["gpkg"], UTM_GRID, where=where)
    )


def test_missing_crs(tmp_path: Path) -> None:
    path = _write(tmp_path / "nocrs.shp", _random_polygons(UTM_GRID, 2, seed=2), None)
    with pytest.raises(MaskError, match=r"nocrs\.shp has no CRS; add crs: EPSG:XXXX"):
        _bind(VectorSource(path))


def test_bad_or_conflicting_crs(vectors: dict[str, Path]) -> None:
    with pytest.raises(MaskError, match=r"crs: EPSG:nope given for vector file .*fields\.gpkg"):
        _bind(VectorSource(vectors["gpkg"], crs="EPSG:nope"))
    with pytest.raises(MaskError, match=r"fields\.gpkg declares CRS EPSG:32618.*EPSG:4326"):
        _bind(VectorSource(vectors["gpkg"], crs="EPSG:4326"))


def test_a_crs_given_as_wkt_is_named_by_its_code_in_messages(vectors: dict[str, Path]) -> None:
    with pytest.raises(MaskError) as caught:
        _bind(VectorSource(vectors["gpkg"], crs=WGS84.to_wkt()))
    message = str(caught.value)
    assert "declares CRS EPSG:32618, which differs from crs: EPSG:4326;" in message
    assert "GEOGCS" not in message and "DATUM" not in message and len(message) < 300


def test_a_vector_path_too_long_for_the_file_system_is_said_as_such(tmp_path: Path) -> None:
    with pytest.raises(MaskError, match=r"file name too long: a name of 305 bytes, the limit is 255"):
        _bind(VectorSource(tmp_path / ("a" * 300 + ".gpkg")))


def test_multi_layer_file_needs_a_layer(tmp_path: Path) -> None:
    path = tmp_path / "two.gpkg"
    for name in ("fields", "roads"):
        gpd.GeoDataFrame({"id": [1]}, geometry=[shapely.box(0, 0, 1, 1)], crs=UTM).to_file(
            path, layer=name, engine="pyogrio"
        )
    with pytest.raises(MaskError, match=r"two\.gpkg has 2 layers \(fields, roads\)"):
        _bind(VectorSource(path))
    with pytest.raises(MaskError, match=r"two\.gpkg has no layer lakes; its layers are fields, roads"):
        _bind(VectorSource(path, layer="lakes"))
    with pytest.raises(MaskError, match=r"two\.gpkg has no layer index 2"):
        _bind(VectorSource(path, layer=2))


def test_grid_without_crs(vectors: dict[str, Path]) -> None:
    grid = Grid(None, UTM_GRID.transform, 10, 10)
    with pytest.raises(MaskError, match=r"scene has no CRS.*fields\.gpkg"):
        _bind(VectorSource(vectors["gpkg"]), grid)


def test_rotated_grid(vectors: dict[str, Path]) -> None:
    grid = Grid(UTM, UTM_GRID.transform @ Affine.rotation(10), 10, 10)
    with pytest.raises(GridError, match=r"rotated.*fields\.gpkg"):
        _bind(VectorSource(vectors["gpkg"]), grid)


def test_error_classes() -> None:
    assert issubclass(MaskError, InputError) and issubclass(MaskError, ValueError)


# ---------------------------------------------------------------- package surface and real data


def test_masks_package_exports() -> None:
    import geomask.masks as masks

    assert masks.__all__ == sorted(masks.__all__)
    assert {
        AllSource,
        AnySource,
        ArrayMask,
        ArraySource,
        BboxSource,
        BoundMask,
        ExpressionSource,
        FullMask,
        FullSource,
        GrowSource,
        KMeansSource,
        MaskContext,
        MaskSource,
        NotSource,
        RasterSource,
        ShrinkSource,
        VectorSource,
        write_mask,
    } == {getattr(masks, name) for name in masks.__all__}


@pytest.fixture(scope="module")
def landsat() -> tuple[Grid, NDArray[np.bool_]]:
    """RGB.byte.tif's grid and its valid-data mask."""
    with rasterio.open(DATA / "RGB.byte.tif") as dataset:
        return Grid(dataset.crs, dataset.transform, dataset.height, dataset.width), dataset.dataset_mask() > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["roi_fields.geojson", "roi_fields.gpkg"])
def test_sample_rois_over_landsat(landsat: tuple[Grid, NDArray[np.bool_]], name: str) -> None:
    grid, valid = landsat
    mask = _bind(VectorSource(DATA / name), grid)
    assert mask.describe() == f"vector({name}, 5 features)"
    whole = mask.render(full(grid))
    assert 50_000 < whole.sum() < 100_000
    assert (whole & valid).sum() > 0.99 * whole.sum()  # over the image, not its nodata corners
    np.testing.assert_array_equal(whole, _oracle(DATA / name, grid))
    np.testing.assert_array_equal(tiled(mask, grid.shape, (200, 300), (50, 100)), whole)
    forest = _bind(VectorSource(DATA / name, where="landcover = 'forest'"), grid).render(full(grid))
    assert 0 < forest.sum() < whole.sum() and (whole >= forest).all()


def test_box_shapefile_over_landsat(landsat: tuple[Grid, NDArray[np.bool_]]) -> None:
    grid, valid = landsat
    whole = _bind(VectorSource(DATA / "box.shp"), grid).render(full(grid))
    pixel_area = grid.res[0] * grid.res[1]
    assert whole.sum() == pytest.approx(75_000 * 50_000 / pixel_area, rel=0.01)
    assert (whole & valid).sum() > 0.99 * whole.sum()


def test_vector_mask_that_is_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    """Opening a FIFO blocks until a writer comes (GDAL deaf to Ctrl-C): refused from its stat."""
    import os

    from geomask.errors import MaskError
    from geomask.grid import Grid
    from geomask.masks import MaskContext, VectorSource

    fifo = tmp_path / "roi.geojson"
    os.mkfifo(fifo)
    grid = Grid("EPSG:32618", Affine(30.0, 0.0, 300000.0, 0.0, -30.0, 5000000.0), 8, 8)
    with pytest.raises(MaskError, match="FIFO"):
        VectorSource(str(fifo)).bind(MaskContext(grid, "scene.tif", None))


# ---------------------------------------------------------------- one read per file (batches)


def test_vector_file_read_once_per_version_of_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Binding the same vector file for several scenes reads it once; a changed file is read again."""
    path = _write(tmp_path / "rois.gpkg", _random_polygons(UTM_GRID, 5, seed=3), UTM)
    reads: list[str] = []
    real = VectorSource._read
    monkeypatch.setattr(VectorSource, "_read", lambda self, p: reads.append(p) or real(self, p))
    first = _bind(VectorSource(path))
    again = _bind(VectorSource(path))
    other = _bind(VectorSource(path), GEO_GRID)
    assert len(reads) == 1
    assert np.array_equal(first.render(Window(0, 0, 110, 90)), again.render(Window(0, 0, 110, 90)))
    assert np.array_equal(other.render(Window(0, 0, 80, 70)), _oracle(path, GEO_GRID))
    _bind(VectorSource(path, where="id > 1"))  # another selection of the file: its own read
    assert len(reads) == 2
    _write(path, _random_polygons(UTM_GRID, 7, seed=4), UTM)  # the file changes: read again
    changed = _bind(VectorSource(path))
    assert len(reads) == 3
    assert np.array_equal(changed.render(Window(0, 0, 110, 90)), _oracle(path, UTM_GRID))


def test_a_1024_window_burns_in_four_rasterize_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of 512: a 1024 x 1024 window whose every block holds ROIs costs 4 ``rasterize`` calls
    (each call has ~0.25 ms of fixed cost with the GIL held; blocks of 256 took 16)."""
    import geomask.masks.vector as vector

    cells = [
        shapely.box(c + 10, r + 10, c + 200, r + 200)
        for r in range(0, 1024, 256)
        for c in range(0, 1024, 256)
    ]
    mask = BoundVectorMask(np.array(cells, dtype=object), (1024, 1024))
    BLOCKS.clear()  # burned blocks kept by earlier tests are not burned again
    calls = []
    real = vector.rasterize

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(vector, "rasterize", counted)
    burned = mask.render(Window(0, 0, 1024, 1024))
    assert len(calls) == 4
    assert burned.sum() == 16 * 190 * 190


# ---------------------------------------------------------------- burned blocks kept (masks/blockcache.py)


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = vector_module.rasterize

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(vector_module, "rasterize", counted)
    return calls


def _rois(shift: float = 0.0) -> NDArray[np.object_]:
    rng = np.random.default_rng(7)
    centres = rng.uniform(20, 1004, size=(40, 2))
    return np.array([shapely.Point(c + shift, r).buffer(9.3) for c, r in centres], dtype=object)


def test_the_scenes_of_a_grid_burn_their_blocks_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two masks of the same geometries on one grid (two scenes of a batch): the second is served the
    first's blocks, without ``rasterize``, pixel for pixel the same."""
    BLOCKS.clear()
    calls = _counting(monkeypatch)
    first = BoundVectorMask(_rois(), (1024, 1024)).render(Window(0, 0, 1024, 1024))
    assert len(calls) == 4
    second = BoundVectorMask(_rois(), (1024, 1024)).render(Window(0, 0, 1024, 1024))
    assert len(calls) == 4
    assert np.array_equal(first, second) and first.sum() > 0
    second[:] = False  # the render is the caller's: the kept blocks are untouched
    again = BoundVectorMask(_rois(), (1024, 1024)).render(Window(100, 100, 900, 900))
    assert np.array_equal(again, first[100:1000, 100:1000])


@pytest.mark.parametrize("change", ["geometries", "all_touched", "grid"])
def test_a_block_is_served_only_for_the_same_geometries_and_options(
    monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """Geometries moved by a hair or ``all_touched``: every block burned again; a grid whose edge cuts
    its blocks: those (the block at the origin, whole in both grids, is the same pixels and is served).
    Each result equals a mask burned without the cache."""
    BLOCKS.clear()
    BoundVectorMask(_rois(), (1024, 1024)).render(Window(0, 0, 1024, 1024))
    geoms, shape, touched = _rois(), (1024, 1024), False
    if change == "geometries":
        geoms = _rois(shift=1e-9)
    elif change == "all_touched":
        touched = True
    else:
        shape = (1000, 1000)
    calls = _counting(monkeypatch)
    got = BoundVectorMask(geoms, shape, all_touched=touched).render(Window(0, 0, 1000, 1000))
    assert len(calls) == (3 if change == "grid" else 4)
    BLOCKS.clear()
    assert np.array_equal(
        got, BoundVectorMask(geoms, shape, all_touched=touched).render(Window(0, 0, 1000, 1000))
    )


def test_the_block_cache_is_bounded_least_recently_used_first_out() -> None:
    cache = BlockCache(3 * 100)
    blocks = {k: np.zeros((10, 10), dtype=bool) for k in "abcd"}
    for k in "abc":
        cache.put(k, blocks[k])
    assert cache.get("a") is blocks["a"]  # "b" is now the least recently used
    cache.put("d", blocks["d"])
    assert cache.get("b") is None and cache.get("c") is not None and cache.get("d") is not None
    assert not blocks["a"].flags.writeable
    assert cache.put("big", np.zeros((20, 20), dtype=bool)) is not None and cache.get("big") is None
