"""``masked_convolve(..., out=)``: in place (``out=array``) and into a given array.

In place, each part of the rows holds its computed rows in a small ring and writes them back only
once no row still to compute reads them; rows read across parts (thread splits) or across the image
(``wrap``) wait until every part is done. The values must be those of the new-array call, bit for
bit, which the oracle tests of ``test_convolve`` pin to scipy.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_convolve import (
    _WIDE_KERNELS,
    DTYPES,
    MODES,
    _bits,
    _blob_mask,
    _kernel_arg,
    _must_raise,
    _values,
    _with_nodata,
    cases,
)

from geomask import kernels
from geomask.convolve import masked_convolve
from geomask.errors import InputError


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(_bits(a), _bits(b))


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(case=cases(with_support=True), threads=st.sampled_from([1, 2, 3]))
def test_in_place_and_given_output_equal_the_new_array(case, threads):
    if _must_raise(case):
        return
    kwargs = dict(case.call_kwargs(), threads=threads)
    kernel = _kernel_arg(case)
    expected = masked_convolve(case.array, kernel, case.mask, **kwargs)

    work = case.array.copy()
    got = masked_convolve(work, kernel, case.mask, out=work, **kwargs)
    assert got is work
    assert _same(work, expected)

    given_out = np.full_like(case.array, 7)
    got = masked_convolve(case.array, kernel, case.mask, out=given_out, **kwargs)
    assert got is given_out
    assert _same(given_out, expected)


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(list(_WIDE_KERNELS)),
    dtype=st.sampled_from(DTYPES),
    nodata_kind=st.sampled_from(["none", "value"]),
    height=st.integers(256, 420),
    width=st.integers(40, 200),
    blobs=st.integers(0, 10),
    speckle=st.sampled_from([0.0, 0.002, 0.05]),
    mode=st.sampled_from(MODES),
    threads=st.sampled_from([1, 2, 3]),
    seed=st.integers(0, 2**32 - 1),
)
def test_in_place_across_thread_parts(
    name, dtype, nodata_kind, height, width, blobs, speckle, mode, threads, seed
):
    """Tall images split into parts of >= 128 rows: rows near a part's edge are read by the next part
    (and, in wrap mode, the first rows by the last), so they are written back only at the end."""
    kernel = _WIDE_KERNELS[name]
    rng = np.random.default_rng(seed)
    array = _values(rng, dtype, (2, height, width), "full")
    nodata = _with_nodata(rng, array, nodata_kind, 0.01)
    if kernel.kind == "linear" and kernel.weight_sum <= 0 and nodata is not None:
        nodata = None
    mask = _blob_mask(rng, (height, width), blobs, speckle)
    kwargs = dict(mode=mode, cval=3.0, nodata=nodata, threads=threads)
    expected = masked_convolve(array, kernel, mask, **kwargs)
    work = array.copy()
    masked_convolve(work, kernel, mask, out=work, **kwargs)
    assert _same(work, expected), f"{name} {np.dtype(dtype).name} {mode} threads={threads}"


def test_in_place_changes_only_masked_pixels():
    """Outside the mask the values stay bit for bit (dense stretches are written back whole, with
    their own values), and an array filtered in place is returned itself."""
    rng = np.random.default_rng(3)
    a = rng.normal(size=(300, 260)).astype(np.float32)
    mask = _blob_mask(rng, a.shape, 4, 0.001)
    before = a.copy()
    expected = masked_convolve(a, "gaussian", mask)
    assert masked_convolve(a, "gaussian", mask, out=a) is a
    assert _same(a, expected)
    assert np.array_equal(_bits(a[~mask]), _bits(before[~mask]))


@pytest.mark.parametrize("layout", ["fortran", "strided"])
def test_non_contiguous_out_is_filled_through_a_new_array(layout):
    rng = np.random.default_rng(4)
    a = rng.integers(0, 5000, size=(2, 140, 90)).astype(np.uint16)
    mask = rng.random((140, 90)) < 0.3
    k = kernels.get("box", size=5)
    expected = masked_convolve(a, k, mask, mode="wrap")
    if layout == "fortran":
        work = np.asfortranarray(a)
    else:
        big = np.zeros((2, 140, 180), dtype=np.uint16)
        work = big[:, :, ::2]
        work[...] = a
    got = masked_convolve(work, k, mask, mode="wrap", out=work)  # in place, through a copy
    assert got is work
    assert _same(np.ascontiguousarray(work), expected)
    separate = np.asfortranarray(np.zeros_like(a))
    assert _same(np.ascontiguousarray(masked_convolve(a, k, mask, mode="wrap", out=separate)), expected)


def test_out_errors():
    a = np.zeros((20, 30), dtype=np.float32)
    mask = np.ones((20, 30), dtype=bool)
    with pytest.raises(InputError, match="shape and dtype"):
        masked_convolve(a, "box", mask, out=np.zeros((20, 31), dtype=np.float32))
    with pytest.raises(InputError, match="shape and dtype"):
        masked_convolve(a, "box", mask, out=np.zeros((20, 30), dtype=np.float64))
    with pytest.raises(InputError, match="numpy array"):
        masked_convolve(a, "box", mask, out=[[0.0] * 30] * 20)
    ro = np.zeros_like(a)
    ro.flags.writeable = False
    with pytest.raises(InputError, match="read-only"):
        masked_convolve(a, "box", mask, out=ro)
    big = np.zeros((21, 30), dtype=np.float32)
    with pytest.raises(InputError, match="overlaps"):
        masked_convolve(big[:20], "box", mask, out=big[1:])
    xr = pytest.importorskip("xarray", reason="xarray (test extra) is not installed")
    with pytest.raises(InputError, match="numpy arrays"):
        masked_convolve(xr.DataArray(a, dims=("y", "x")), "box", mask, out=a)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["box31", "median31"])
@pytest.mark.parametrize("mode", ["wrap", "reflect", "constant"])
def test_in_place_with_31x31_kernels_and_parts(name, mode):
    """The widest halo: up to 15 rows at each part edge and 15 wrapped rows wait in the ring."""
    kernel = kernels.get(name.rstrip("31"), size=31)
    rng = np.random.default_rng(8)
    a = rng.normal(size=(2, 300, 64)).astype(np.float32)
    mask = _blob_mask(rng, (300, 64), 6, 0.05)
    for threads in (1, 2):
        expected = masked_convolve(a, kernel, mask, mode=mode, threads=threads)
        work = a.copy()
        masked_convolve(work, kernel, mask, mode=mode, threads=threads, out=work)
        assert _same(work, expected), f"threads={threads}"
