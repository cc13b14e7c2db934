"""Tests of geomask.masks.reproject: vector masks at the antimeridian, around poles and beyond a
projection's valid area (a geostationary disk), against lon/lat polygons rasterized directly."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from _fixtures_masks import full, tiled
from affine import Affine
from numpy.typing import NDArray
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.features import rasterize

from geomask.errors import NoOverlapWarning, OutsideProjectionWarning
from geomask.grid import Grid
from geomask.masks import BboxSource, MaskContext, VectorSource
from geomask.messages import crs_name

WGS84 = CRS.from_epsg(4326)
# Lon 170..190 (past 180, "0..360 style") and lon -180..180, both 0.1 degree pixels, lat 10..-5.
PAST_180 = Grid(WGS84, Affine(0.1, 0.0, 170.0, 0.0, -0.1, 10.0), 150, 200)
WORLD = Grid(WGS84, Affine(0.1, 0.0, -180.0, 0.0, -0.1, 10.0), 150, 3600)
GEOS = "+proj=geos +h=35785831 +lon_0=0 +sweep=y +ellps=WGS84 +units=m +no_defs"
DISK = 5_500_000.0
GEOS_GRID = Grid(CRS.from_string(GEOS), Affine(40_000.0, 0.0, -DISK, 0.0, -40_000.0, DISK), 275, 275)

# A lon/lat polygon across 180 with a hole across 180; edges off pixel centres and edges.
ACROSS = shapely.Polygon(
    shapely.box(179.03, 0.33, 181.07, 4.71).exterior.coords,
    [shapely.box(179.91, 1.27, 180.36, 2.18).exterior.coords],
)


def _lonlat_to(crs: str | CRS, polygon: shapely.Polygon, step: float = 0.05) -> shapely.Geometry:
    """``polygon`` (lon/lat, densified by ``step`` degrees) with its vertices moved to ``crs``."""
    transformer = Transformer.from_crs(WGS84, crs, always_xy=True)
    return shapely.transform(
        shapely.segmentize(polygon, step),
        lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])),
    )


def _write(path: Path, geoms: list, crs: str | CRS) -> Path:
    gpd.GeoDataFrame({"id": list(range(len(geoms)))}, geometry=geoms, crs=crs).to_file(path, engine="pyogrio")
    return path


def _oracle(grid: Grid, *polygons: shapely.Geometry) -> NDArray[np.bool_]:
    """The lon/lat polygons (same densification as :func:`_lonlat_to`) rasterized directly."""
    shapes = [shapely.segmentize(p, 0.05) for p in polygons]
    return rasterize(shapes, out_shape=grid.shape, transform=grid.transform).astype(bool)


def _shifted(polygon: shapely.Geometry, dx: float) -> shapely.Geometry:
    return shapely.transform(polygon, lambda xy: xy + np.array([dx, 0.0]))


@pytest.mark.parametrize("crs", ["EPSG:3832", "EPSG:3994", "EPSG:32660"])
@pytest.mark.parametrize("grid", [PAST_180, WORLD], ids=["lon170-190", "lon-180-180"])
def test_projected_polygon_across_the_antimeridian(tmp_path: Path, crs: str, grid: Grid) -> None:
    path = _write(tmp_path / "across.gpkg", [_lonlat_to(crs, ACROSS)], crs)
    mask = VectorSource(path).bind(MaskContext(grid))
    expected = _oracle(grid, ACROSS, _shifted(ACROSS, -360.0))
    assert expected.sum() > 800
    assert (tiled(mask, grid.shape, (37, 53)) == expected).all()
    assert (mask.render(full(grid)) == expected).all()


def test_lonlat_polygon_west_of_180_lands_past_180_on_a_0_360_scene(tmp_path: Path) -> None:
    west = shapely.box(-179.46, 1.13, -178.52, 3.38)
    path = _write(tmp_path / "west.geojson", [west], WGS84)
    mask = VectorSource(path).bind(MaskContext(PAST_180))
    expected = _oracle(PAST_180, _shifted(west, 360.0))
    assert expected.sum() > 100
    assert (mask.render(full(PAST_180)) == expected).all()


def test_bbox_across_the_antimeridian() -> None:
    projected = Transformer.from_crs(WGS84, "EPSG:3832", always_xy=True)
    x0, y0 = projected.transform(179.03, 0.33)
    x1, y1 = projected.transform(181.07, 4.71)
    for grid in (PAST_180, WORLD):
        got = BboxSource((x0, y0, x1, y1), crs="EPSG:3832").bind(MaskContext(grid)).render(full(grid))
        cols = np.flatnonzero(got.any(axis=0))
        lons = grid.transform.c + (cols + 0.5) * 0.1
        assert got.sum() > 800
        assert ((lons > 179.0) | (lons < -178.9)).all()  # never the lon 175..179 of the old bug
        lonlat = BboxSource((179.03, 0.33, 181.07, 4.71), crs="EPSG:4326").bind(MaskContext(grid))
        assert (
            lonlat.render(full(grid)).sum()
            == _oracle(grid, ACROSS.envelope, _shifted(ACROSS.envelope, -360)).sum()
        )


def test_polygon_around_the_north_pole_covers_every_longitude(tmp_path: Path) -> None:
    arctic = Grid(WGS84, Affine(1.0, 0.0, -180.0, 0.0, -0.5, 90.0), 40, 360)
    polar = Transformer.from_crs(WGS84, "EPSG:3995", always_xy=True)
    x, y = polar.transform(0.0, 81.234)
    radius = float(np.hypot(x, y))
    angles = np.linspace(0, 2 * np.pi, 1441)[:-1]
    circle = shapely.Polygon(np.c_[radius * np.cos(angles), radius * np.sin(angles)])
    path = _write(tmp_path / "cap.gpkg", [circle], "EPSG:3995")
    got = VectorSource(path).bind(MaskContext(arctic)).render(full(arctic))
    lat_centres = 90.0 - (np.arange(arctic.height) + 0.5) * 0.5
    expected = np.broadcast_to((lat_centres > 81.234)[:, None], arctic.shape)
    assert (got == expected).all()


def _lonlat_of_pixel_centres(grid: Grid) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    cols, rows = np.meshgrid(np.arange(grid.width) + 0.5, np.arange(grid.height) + 0.5)
    xs, ys = grid.transform @ (cols, rows)
    lon, lat = Transformer.from_crs(grid.crs, WGS84, always_xy=True).transform(xs, ys, errcheck=False)
    return np.asarray(lon), np.asarray(lat)


def test_lonlat_polygon_partly_beyond_the_geostationary_disk_is_clipped(tmp_path: Path) -> None:
    polygon = shapely.segmentize(shapely.box(-100.0, -10.0, -60.0, 10.0), 1.0)  # the disk ends near -81
    path = _write(tmp_path / "limb.geojson", [polygon], WGS84)
    with pytest.warns(OutsideProjectionWarning, match=r"1 clipped to it, 0 dropped"):
        got = VectorSource(path).bind(MaskContext(GEOS_GRID)).render(full(GEOS_GRID))
    lon, lat = _lonlat_of_pixel_centres(GEOS_GRID)
    inside = np.isfinite(lon) & shapely.contains_xy(polygon, lon, lat)
    assert not (got & ~inside).any()  # nothing outside the polygon or off the disk
    assert got.sum() >= 0.9 * inside.sum()  # the limb costs at most a sampling cell


def test_geostationary_polygon_partly_off_the_disk_on_a_lonlat_scene(tmp_path: Path) -> None:
    polygon = shapely.segmentize(shapely.box(-DISK, -1e6, -4e6, 1e6), 5e4)
    path = _write(tmp_path / "geos.gpkg", [polygon], CRS.from_string(GEOS))
    scene = Grid(WGS84, Affine(0.25, 0.0, -100.0, 0.0, -0.25, 15.0), 120, 200)
    with pytest.warns(OutsideProjectionWarning, match=r"1 clipped"):
        got = VectorSource(path).bind(MaskContext(scene)).render(full(scene))
    lon, lat = _lonlat_of_pixel_centres(scene)
    x, y = Transformer.from_crs(WGS84, GEOS, always_xy=True).transform(lon, lat, errcheck=False)
    inside = np.isfinite(x) & shapely.contains_xy(polygon, np.nan_to_num(x), np.nan_to_num(y))
    assert got.sum() > 100
    assert not (got & ~inside).any()
    assert got.sum() >= 0.9 * inside.sum()


@pytest.mark.parametrize(
    ("polygon", "crs", "grid"),
    [
        (shapely.box(100.0, -10.0, 120.0, 10.0), "EPSG:4326", GEOS_GRID),  # behind the earth
        (
            shapely.box(-DISK, DISK - 5e5, -DISK + 5e5, DISK),
            GEOS,
            Grid(WGS84, Affine(1, 0, -100, 0, -1, 60), 120, 200),
        ),
    ],
    ids=["lonlat-behind-disk", "geos-corner-in-space"],
)
def test_polygon_wholly_beyond_the_valid_area_is_dropped_with_a_warning(
    tmp_path: Path, polygon: shapely.Polygon, crs: str, grid: Grid
) -> None:
    path = _write(
        tmp_path / "away.gpkg",
        [shapely.segmentize(polygon, (polygon.bounds[2] - polygon.bounds[0]) / 16)],
        CRS.from_user_input(crs),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mask = VectorSource(path).bind(MaskContext(grid))
    kinds = {type(w.message) for w in caught}
    assert {OutsideProjectionWarning, NoOverlapWarning} <= kinds
    assert "0 clipped to it, 1 dropped" in str(
        next(w.message for w in caught if w.category is OutsideProjectionWarning)
    )
    assert mask.is_empty and not mask.render(full(grid)).any()


@pytest.mark.parametrize(
    ("crs", "name"),
    [
        (CRS.from_epsg(32618), "EPSG:32618"),
        ("EPSG:4326", "EPSG:4326"),
        (CRS.from_epsg(32618).to_wkt(), "EPSG:32618"),
        (GEOS, "+proj=geos"),
    ],
)
def test_crs_name_is_short(crs: object, name: str) -> None:
    text = crs_name(crs)
    assert text.startswith(name)
    assert len(text) <= 80 and "PROJCS" not in text and "PROJCRS" not in text
