"""geomask.masked_convolve on xarray DataArrays opened with rioxarray: coords/CRS kept, dask stays lazy."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import rioxarray
import xarray as xr

import geomask
from geomask.kernels import get


@pytest.fixture
def scene(make_raster):
    rng = np.random.default_rng(3)
    data = rng.integers(1, 3000, size=(2, 70, 90)).astype("uint16")
    data[:, 30:34, 40:60] = 0  # nodata inside the mask
    return make_raster(data, nodata=0, block=16), data


def _mask():
    mask = np.zeros((70, 90), bool)
    mask[10:60, 5:80] = True
    return mask


def test_round_trip_keeps_crs_coords_and_attrs(scene):
    path, data = scene
    da = rioxarray.open_rasterio(path)
    da.attrs["note"] = "kept"
    out = geomask.masked_convolve(da, get("gaussian", sigma=1.5), _mask())
    assert isinstance(out, xr.DataArray) and out.dims == da.dims and out.dtype == da.dtype
    assert out.rio.crs == da.rio.crs and out.rio.transform() == da.rio.transform()
    xr.testing.assert_identical(out.coords.to_dataset(), da.coords.to_dataset())
    assert out.attrs == da.attrs
    expected = geomask.masked_convolve(data, get("gaussian", sigma=1.5), _mask(), nodata=0)
    np.testing.assert_array_equal(out.values, expected)  # nodata taken from the file
    assert not np.array_equal(out.values, data)


@pytest.mark.parametrize(
    ("mode", "kernel"),
    [
        ("reflect", get("gaussian", sigma=2)),
        ("mirror", get("sharpen", amount=0.5)),
        ("nearest", get("median", size=5)),
        ("wrap", get("box", size=7)),
        ("constant", get("disk", radius=3)),
    ],
)
def test_dask_backed_stays_lazy_and_is_bit_exact(scene, mode, kernel):
    path, data = scene
    da = rioxarray.open_rasterio(path, chunks={"band": 1, "y": 16, "x": 32})
    mask = xr.DataArray(_mask(), dims=("y", "x")).chunk({"y": 20, "x": 20})
    out = geomask.masked_convolve(da, kernel, mask, mode=mode, cval=7)
    assert dask.is_dask_collection(out) and out.chunks == da.chunks
    expected = geomask.masked_convolve(data, kernel, _mask(), mode=mode, cval=7, nodata=0)
    np.testing.assert_array_equal(out.compute(scheduler="threads").values, expected)


def test_dask_2d_with_support(scene):
    path, data = scene
    da = rioxarray.open_rasterio(path, chunks={"y": 25, "x": 25}).isel(band=0).astype("float32")
    support = np.ones((70, 90), bool)
    support[:, 45:] = False
    out = geomask.masked_convolve(da, get("gaussian", sigma=1), _mask(), support=support, nodata=0)
    expected = geomask.masked_convolve(
        data[0].astype("float32"), get("gaussian", sigma=1), _mask(), support=support, nodata=0
    )
    np.testing.assert_array_equal(out.values, expected)
    assert out.rio.crs.to_epsg() == 32618


def test_leave_mode_is_refused_lazily(scene):
    da = rioxarray.open_rasterio(scene[0], chunks={"y": 32, "x": 32})
    with pytest.raises(geomask.errors.ConfigError, match="leave"):
        geomask.masked_convolve(da, get("box", size=3), None, mode="leave")


def test_numpy_function_refuses_a_dataarray_and_names_the_dispatcher(scene):
    """geomask.convolve.masked_convolve is the numpy implementation; DataArrays go through geomask's."""
    import geomask.convolve

    da = rioxarray.open_rasterio(scene[0])
    with pytest.raises(geomask.errors.InputError, match=r"DataArray call geomask\.masked_convolve$"):
        geomask.convolve.masked_convolve(da, get("box", size=3), _mask())
    with pytest.raises(geomask.errors.InputError, match="out= is for numpy arrays"):
        geomask.masked_convolve(da, get("box", size=3), _mask(), out=np.empty(da.shape, da.dtype))
