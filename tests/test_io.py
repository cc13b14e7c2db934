"""Scene inspection and indexed reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from geomask.errors import GeomaskError, GridError, InputError
from geomask.io import inspect_scene, open_scene, read_indexed

TEST_DATA = Path(__file__).resolve().parent / "data"


def test_inspect_reads_header(make_raster):
    src = make_raster(np.zeros((2, 20, 30), "int16"), nodata=-1, block=16)
    info = inspect_scene(src)
    assert (info.count, info.dtype, info.nodata, info.block_shape) == (2, "int16", -1.0, (16, 16))
    assert info.grid.shape == (20, 30) and info.grid.crs.to_epsg() == 32618


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        inspect_scene(tmp_path / "nope.tif")


def test_not_a_raster(tmp_path):
    bogus = tmp_path / "notes.tif"
    bogus.write_text("this is not a tiff")
    with pytest.raises(InputError, match=r"notes\.tif"):
        inspect_scene(bogus)


def test_truncated_tiff(make_raster):
    src = make_raster(np.arange(64 * 64, dtype="uint16").reshape(64, 64), block=None)
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 3])
    # GDAL may fail on open (InputError) or on read (RunError)
    with pytest.raises(GeomaskError) as e, open_scene(src) as ds:
        read_indexed(ds, [1], np.arange(64), np.arange(64))
    assert src.name in str(e.value)


def test_vrt_named_tif_is_refused(make_raster, tmp_path):
    real = make_raster(np.zeros((8, 8), "uint8"))
    vrt = tmp_path / "sneaky.tif"
    with rasterio.open(real) as ds:
        from rasterio.vrt import _boundless_vrt_doc

        vrt.write_text(_boundless_vrt_doc(ds))
    with pytest.raises(InputError, match=r"sneaky\.tif"):
        inspect_scene(vrt)


def test_rotated_transform_refused(make_raster):
    rotated = Affine(30.0, 5.0, 300000.0, 5.0, -30.0, 5000000.0)
    src = make_raster(np.zeros((8, 8), "uint8"), transform=rotated)
    with pytest.raises(GridError, match="rotated"):
        inspect_scene(src)


def test_rotated_real_file_refused():
    rotated = TEST_DATA / "rotated.tif"  # shipped in tests/data (see its README)
    with pytest.raises(GridError):
        inspect_scene(rotated)


def test_complex_dtype_refused(make_raster):
    src = make_raster(np.zeros((8, 8), "complex64"))
    with pytest.raises(InputError, match="complex"):
        inspect_scene(src)


def test_read_indexed_assembles_runs(make_raster):
    array = np.arange(3 * 10 * 12, dtype="int32").reshape(3, 10, 12)
    src = make_raster(array)
    rows = np.array([0, 1, 2, 7, 8, 9])
    cols = np.array([0, 10, 11])
    with open_scene(src) as ds:
        got = read_indexed(ds, [1, 3], rows, cols)
    np.testing.assert_array_equal(got, array[[0, 2]][:, rows][:, :, cols])
