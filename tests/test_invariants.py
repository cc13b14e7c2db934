"""Invariants of every run, under hypothesis, through process_scene on real GeoTIFFs.

For random small scenes (dtype, bands, nodata, NaN, CRS, pixel size), kernels, masks, boundary modes
and window sizes:

* pixels outside the mask are identical to the input (bit for bit, every band);
* nodata pixels (and NaN in floats) stay exactly as they were;
* the output's CRS, transform, dtype, nodata and band count equal the input's;
* the windowed result equals the whole-array :func:`geomask.masked_convolve`, and two different
  window sizes give the same pixels.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from conftest import write_raster
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.transform import from_origin

from geomask import kernels
from geomask.convolve import masked_convolve
from geomask.masks import ArraySource
from geomask.process import process_scene
from geomask.spec import OutputSpec, RunOptions, Step

KERNELS = [
    ("gaussian", {"sigma": 1.0}),
    ("box", {"size": 3}),
    ("sharpen", {"amount": 0.7}),
    ("sobel_y", {}),
    ("disk", {"radius": 1}),
    ("median", {"size": 3}),
    ("minimum", {"size": 3}),
]
CRSES = ["EPSG:32618", "EPSG:4326", None]


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.dtype(f"u{a.dtype.itemsize}"))


@settings(max_examples=20)
@given(
    height=st.integers(7, 36),
    width=st.integers(7, 36),
    bands=st.integers(1, 3),
    dtype=st.sampled_from(["uint8", "int16", "uint16", "float32", "float64"]),
    kernel_choice=st.sampled_from(KERNELS),
    mode=st.sampled_from(["reflect", "nearest", "wrap", "constant", "leave"]),
    crs=st.sampled_from(CRSES),
    pixel=st.sampled_from([0.5, 30.0, 250.0]),
    nodata_kind=st.sampled_from(["none", "value", "nan"]),
    density=st.sampled_from([0.0, 0.3, 1.0]),
    windows=st.tuples(st.integers(2, 40), st.integers(2, 40)),
    seed=st.integers(0, 2**16),
)
@pytest.mark.slow
def test_run_invariants(
    height, width, bands, dtype, kernel_choice, mode, crs, pixel, nodata_kind, density, windows, seed
):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        array = (rng.normal(size=(bands, height, width)) * 50).astype(dt)
    else:
        info = np.iinfo(dt)
        array = rng.integers(max(info.min, -5000), min(info.max, 5000), size=(bands, height, width)).astype(
            dt
        )
    nodata: float | None = None
    holes = rng.random((bands, height, width)) < 0.1
    if nodata_kind == "value":
        nodata = float(array.flat[0])
        array[holes] = array.flat[0]
    elif nodata_kind == "nan" and dt.kind == "f":
        nodata = float("nan")
        array[holes] = np.nan
    name, params = kernel_choice
    kernel = kernels.get(name, **params)
    normalize = kernel.weight_sum > 0 or nodata is None
    mask = rng.random((height, width)) < density
    if crs == "EPSG:4326":  # degrees
        transform = from_origin(10.0, 50.0, pixel / 1e5, pixel / 1e5)
    else:  # metres, or plain pixel space without a CRS
        transform = from_origin(500_000.0, 4_100_000.0, pixel, pixel)
    step = Step(kernel, ArraySource(mask), mode=mode, cval=3.0, normalize=normalize)
    expected = masked_convolve(array, kernel, mask, mode=mode, cval=3.0, nodata=nodata, normalize=normalize)

    with tempfile.TemporaryDirectory() as tmp:
        src = write_raster(Path(tmp) / "in.tif", array, crs=crs, transform=transform, nodata=nodata, block=16)
        results = []
        for i, window in enumerate(windows):
            out = Path(tmp) / f"out{i}.tif"
            process_scene(
                src,
                OutputSpec(out),
                [step],
                nodata="auto",
                options=RunOptions(window_size=window, align_windows=False, workers=2, batch=3),
            )
            with rasterio.open(src) as a, rasterio.open(out) as b:
                assert b.crs == a.crs
                assert b.transform == a.transform
                assert b.dtypes == a.dtypes
                assert b.count == a.count
                assert (b.nodata == a.nodata) or (np.isnan(b.nodata) and np.isnan(a.nodata))
                results.append(b.read())
    got = results[0]
    # outside the mask: the input, bit for bit
    assert np.array_equal(_bits(got)[:, ~mask], _bits(array)[:, ~mask])
    # nodata (and NaN) pixels never change
    if nodata is not None:
        invalid = np.isnan(array) if np.isnan(nodata) else array == np.asarray(nodata, dtype=dt)
        assert np.array_equal(_bits(got)[invalid], _bits(array)[invalid])
    # windowed == whole array, for both window sizes
    for result in results:
        assert np.array_equal(_bits(result), _bits(expected))
