"""Scenes made of band files (``input: {bands: {red: B04.tif, ...}}``): each band filtered on its own grid.

A small two-grid product in one UTM zone: red and nir at 10 m (64 x 64), swir16 at 20 m (32 x 32),
and an SCL-like class layer at 20 m. Every output is compared with a whole-array oracle: the mask
computed in numpy by sampling the other bands at the band's pixel centres (nearest), then
``masked_convolve`` on the band's full array.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import yaml
from conftest import raw_tiles, write_raster
from rasterio.transform import from_origin

from geomask.config import load_pipeline
from geomask.convolve import masked_convolve
from geomask.errors import ConfigError, GridError, InputError
from geomask.kernels import get
from geomask.pipeline import run_pipeline
from geomask.spec import RunOptions

CRS = "EPSG:32633"
X0, Y0 = 500000.0, 5000000.0
NDVI = "(nir - red) / (nir + red) > 0.3"
CLOUDS = [8, 9]


def make_product(folder: Path, *, swir_crs: str = CRS, size: int = 64, block: int = 16) -> dict[str, Path]:
    """red, nir (10 m, size x size, uint16, nodata 0); swir16, SCL (20 m, half the size, float32, uint8)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    half = size // 2
    red = rng.integers(200, 3000, (size, size)).astype(np.uint16)
    nir = rng.integers(200, 6000, (size, size)).astype(np.uint16)
    red[5, 5] = 0  # nodata: never selected, never changed
    nir[40:44, 50:54] = 0
    swir = rng.normal(1000.0, 300.0, (half, half)).astype(np.float32)
    scl = np.full((half, half), 4, dtype=np.uint8)
    scl[0:6, 10:20] = 8  # clouds
    scl[20:26, 0:8] = 9
    ten, twenty = from_origin(X0, Y0, 10.0, 10.0), from_origin(X0, Y0, 20.0, 20.0)
    swir_grid = twenty
    if swir_crs != CRS:  # about the same ground in another CRS (swir only)
        from rasterio.warp import transform as warp

        xs, ys = warp(CRS, swir_crs, [X0], [Y0])
        swir_grid = from_origin(xs[0], ys[0], 0.0002, 0.0002)
    opts: dict[str, Any] = {"block": block, "compress": "deflate"}
    return {
        "red": write_raster(folder / "B04.tif", red, crs=CRS, transform=ten, nodata=0, **opts),
        "nir": write_raster(folder / "B08.tif", nir, crs=CRS, transform=ten, nodata=0, **opts),
        "swir16": write_raster(folder / "B11.tif", swir, crs=swir_crs, transform=swir_grid, **opts),
        "SCL": write_raster(folder / "SCL.tif", scl, crs=CRS, transform=twenty, nodata=0, **opts),
    }


def write_pipeline(folder: Path, files: dict[str, Path], **keys: Any) -> Path:
    data: dict[str, Any] = {
        "input": {"bands": {name: str(path.relative_to(folder)) for name, path in files.items()}},
        "bands": ["red", "nir", "swir16"],
        "kernel": {"name": "gaussian", "sigma": 1.0},
        "mask": {"all": [{"expression": NDVI}, {"not": {"raster": {"asset": "SCL"}, "values": CLOUDS}}]},
        "output": {"path": "out/{id}/{asset}.tif"},
    }
    data.update(keys)
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def read(path: Path) -> tuple[np.ndarray, Any, Any, str, Any]:
    with rasterio.open(path) as ds:
        return ds.read(1), ds.transform, ds.crs, ds.dtypes[0], ds.nodata


def sample(path: Path, transform: Any, crs: Any, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Values of ``path`` at the centres of a grid's pixels (nearest), and where the centre is inside."""
    from pyproj import Transformer

    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    xs = transform.a * (cols + 0.5) + transform.b * (rows + 0.5) + transform.c
    ys = transform.d * (cols + 0.5) + transform.e * (rows + 0.5) + transform.f
    with rasterio.open(path) as ds:
        data, inverse = ds.read(1), ~ds.transform
        if ds.crs != crs:
            xs, ys = Transformer.from_crs(crs, ds.crs, always_xy=True).transform(xs, ys)
        c = np.floor(inverse.a * xs + inverse.b * ys + inverse.c)
        r = np.floor(inverse.d * xs + inverse.e * ys + inverse.f)
        inside = (r >= 0) & (r < ds.height) & (c >= 0) & (c < ds.width)
        nodata = ds.nodata
    values = np.where(inside, data[np.where(inside, r, 0).astype(int), np.where(inside, c, 0).astype(int)], 0)
    valid = inside if nodata is None else inside & (values != nodata)
    return values, valid


def oracle(files: dict[str, Path], band: str) -> np.ndarray:
    """The whole-array result for one band: the product mask on its grid, then masked_convolve."""
    data, transform, crs, _, nodata = read(files[band])
    mask = oracle_mask(files, transform, crs, data.shape)
    return masked_convolve(data, get("gaussian", sigma=1.0), mask, nodata=nodata)


def oracle_mask(files: dict[str, Path], transform: Any, crs: Any, shape: tuple[int, int]) -> np.ndarray:
    """NDVI > 0.3 and not cloud, on a band's grid: every layer sampled at its pixel centres."""
    red, ok_red = sample(files["red"], transform, crs, shape)
    nir, ok_nir = sample(files["nir"], transform, crs, shape)
    scl, ok_scl = sample(files["SCL"], transform, crs, shape)
    red, nir = red.astype(np.float64), nir.astype(np.float64)
    with np.errstate(all="ignore"):
        ndvi = (nir - red) / (nir + red)
        selected = (ndvi > 0.3) & np.isfinite(ndvi) & ok_red & ok_nir
    clouds = np.isin(scl, CLOUDS) & ok_scl
    return selected & ~clouds


@pytest.mark.parametrize("window", [16, 48, 1024])
def test_each_band_equals_the_whole_array_oracle(tmp_path: Path, window: int) -> None:
    files = make_product(tmp_path / "S2")
    pipeline = write_pipeline(tmp_path, files)
    reports = run_pipeline(pipeline, options=RunOptions(scheduler="synchronous", window_size=window))
    assert [r.status for r in reports] == ["done"] * 3
    for band in ("red", "nir", "swir16"):
        out = tmp_path / "out" / "S2" / f"{band}.tif"
        result, transform, crs, dtype, nodata = read(out)
        source, s_transform, s_crs, s_dtype, s_nodata = read(files[band])
        assert (transform, crs, dtype, nodata) == (s_transform, s_crs, s_dtype, s_nodata)
        expected = oracle(files, band)
        assert np.array_equal(result, expected), band
        assert not np.array_equal(result, source), band  # the mask selected something
    assert not (tmp_path / "out" / "S2" / "SCL.tif").exists()  # a mask asset, not a selected band


def test_untouched_tiles_are_copied_byte_for_byte(tmp_path: Path) -> None:
    files = make_product(tmp_path / "S2", size=512, block=128)  # 4 x 4 tiles at 10 m, 2 x 2 at 20 m
    pipeline = write_pipeline(
        tmp_path,
        files,
        mask={"bbox": [X0, Y0 - 150.0, X0 + 150.0, Y0]},  # the first 15 x 15 (10 m) pixels
    )
    run_pipeline(pipeline, options=RunOptions(scheduler="synchronous", window_size=128))
    for band, tiles in (("red", 16), ("nir", 16), ("swir16", 4)):
        src, out = raw_tiles(files[band]), raw_tiles(tmp_path / "out" / "S2" / f"{band}.tif")
        assert len(src) == len(out) == tiles
        assert out[1:] == src[1:] and out[0] != src[0], band  # only the first tile is touched


def test_another_crs_is_sampled_per_pixel(tmp_path: Path) -> None:
    """swir16 in EPSG:4326: the NDVI mask on its grid samples red/nir through PROJ per pixel."""
    files = make_product(tmp_path / "S2", swir_crs="EPSG:4326")
    pipeline = write_pipeline(tmp_path, files, bands=["swir16"])
    for window in (16, 1024):
        run_pipeline(
            pipeline, overwrite=True, options=RunOptions(scheduler="synchronous", window_size=window)
        )
        result = read(tmp_path / "out" / "S2" / "swir16.tif")[0]
        assert np.array_equal(result, oracle(files, "swir16"))
        assert not np.array_equal(result, read(files["swir16"])[0])


def test_provenance_covers_every_band_file(tmp_path: Path) -> None:
    """Changing the SCL layer (read by the mask only) redoes the product's outputs; a rerun skips."""
    files = make_product(tmp_path / "S2")
    pipeline = write_pipeline(tmp_path, files)
    options = RunOptions(scheduler="synchronous")
    assert [r.status for r in run_pipeline(pipeline, options=options)] == ["done"] * 3
    assert [r.status for r in run_pipeline(pipeline, options=options)] == ["skipped"] * 3
    with rasterio.open(files["SCL"], "r+") as ds:
        scl = ds.read(1)
        scl[0, 0] = 9
        ds.write(scl, 1)
    assert [r.status for r in run_pipeline(pipeline, options=options)] == ["done"] * 3


def test_validation_refuses_bad_names(tmp_path: Path) -> None:
    files = make_product(tmp_path / "S2")
    pipeline = write_pipeline(tmp_path, files, mask={"expression": "(nri - red) / (nir + red) > 0.3"})
    with pytest.raises(ConfigError, match=r"no band or asset 'nri'.*Did you mean 'nir'"):
        run_pipeline(pipeline)
    assert not (tmp_path / "out").exists()
    pipeline = write_pipeline(tmp_path, files, mask={"raster": {"asset": "SLC"}, "values": CLOUDS})
    with pytest.raises(ConfigError, match=r"no band or asset 'SLC'.*Did you mean 'SCL'"):
        run_pipeline(pipeline)
    assert not (tmp_path / "out").exists()


def test_bad_band_file_writes_nothing(tmp_path: Path) -> None:
    files = make_product(tmp_path / "S2")
    files["swir16"].write_text("not a tiff")
    pipeline = write_pipeline(tmp_path, files)
    with pytest.raises(InputError, match=r"B11\.tif"):
        run_pipeline(pipeline)
    assert not (tmp_path / "out").exists()


def test_template_collision_is_refused(tmp_path: Path) -> None:
    files = make_product(tmp_path / "S2")
    pipeline = write_pipeline(tmp_path, files, output={"path": "out/{id}.tif"})
    with pytest.raises(ConfigError, match=r"would both be written to .*use \{asset\}"):
        load_pipeline(pipeline).scenes()


def test_map_units_give_the_same_ground_size_on_every_grid(tmp_path: Path) -> None:
    """sigma: 20 m is 2 pixels on the 10 m bands and 1 pixel on the 20 m band."""
    files = make_product(tmp_path / "S2")
    pipeline = write_pipeline(tmp_path, files, kernel={"name": "gaussian", "sigma": "20 m"})
    reports = run_pipeline(pipeline, options=RunOptions(scheduler="synchronous", window_size=16))
    assert [r.notes for r in reports] == [["gaussian sigma 20 m = 2 px"]] * 2 + [
        ["gaussian sigma 20 m = 1 px"]
    ]
    for band, sigma in (("red", 2.0), ("swir16", 1.0)):
        data, transform, crs, _, nodata = read(files[band])
        mask_only = oracle_mask(files, transform, crs, data.shape)
        expected = masked_convolve(data, get("gaussian", sigma=sigma), mask_only, nodata=nodata)
        assert np.array_equal(read(tmp_path / "out" / "S2" / f"{band}.tif")[0], expected), band


def test_continue_on_error_goes_on_with_the_next_band(tmp_path: Path) -> None:
    files = make_product(tmp_path / "S2")
    files["swir16"].write_text("plain text")
    pipeline = write_pipeline(tmp_path, files)
    reports = run_pipeline(pipeline, options=RunOptions(scheduler="synchronous"), continue_on_error=True)
    assert [r.status for r in reports] == ["done", "done", "failed"]
    assert "B11.tif" in (reports[2].error or "")
    assert not (tmp_path / "out" / "S2" / "swir16.tif").exists()


def test_an_output_never_replaces_a_band_file(tmp_path: Path) -> None:
    """The SCL asset is read by a mask, not run: an output at its path is still refused."""
    files = make_product(tmp_path / "S2")
    pipeline = write_pipeline(tmp_path, files, bands=["red"], output={"path": "S2/SCL.tif"})
    before = files["SCL"].read_bytes()
    with pytest.raises(ConfigError, match=r"a band file of product S2.*never replaces"):
        run_pipeline(pipeline, overwrite=True)
    assert files["SCL"].read_bytes() == before


def test_band_names_in_bands_select_outputs(tmp_path: Path) -> None:
    files = make_product(tmp_path / "S2")
    pipeline = write_pipeline(tmp_path, files, bands=["nir"], output={"path": "out/{id}_{asset}_{stem}.tif"})
    [report] = run_pipeline(pipeline, options=RunOptions(scheduler="synchronous"))
    assert Path(report.output).name == "S2_nir_B08.tif" and report.status == "done"


def test_a_band_file_without_crs_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    files = make_product(tmp_path / "S2")
    with rasterio.open(files["swir16"]) as ds:
        swir, transform = ds.read(1), ds.transform
    write_raster(files["swir16"], swir, crs=None, transform=transform, block=16)
    pipeline = write_pipeline(tmp_path, files)
    with pytest.raises(GridError, match=r"B11\.tif has no CRS but .*B04\.tif has one"):
        run_pipeline(pipeline)
    assert not (tmp_path / "out").exists()


def test_provenance_covers_the_product_files_and_item(tmp_path: Path) -> None:
    """GEOMASK_SOURCES_SHA256 changes with any file of the product (a STAC item JSON included)."""
    from geomask.provenance import provenance_tags

    files = make_product(tmp_path / "S2")
    item = tmp_path / "S2" / "item.json"
    item.write_text('{"id": "S2"}')
    model = load_pipeline(write_pipeline(tmp_path, files))
    product_files = [str(files["red"]), str(files["SCL"]), str(item)]

    def digest() -> str:
        tags = provenance_tags(model, [], files["red"], product_files=product_files)
        return tags["GEOMASK_SOURCES_SHA256"]

    first = digest()
    assert provenance_tags(model, [], files["red"])["GEOMASK_SOURCES_SHA256"] != first
    item.write_text('{"id": "S2", "properties": {}}')
    assert digest() != first
