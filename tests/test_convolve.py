"""Oracle tests of geomask.convolve.masked_convolve.

Every result is compared with scipy: :func:`reference` below is a slow, obviously-correct
restatement of the contract built only from ``scipy.ndimage`` and ``np.pad``:

* without nodata (and without ``support``), linear kernels are ``scipy.ndimage.convolve`` /
  ``correlate`` on float64, or two ``correlate1d`` passes (rows, then columns) for kernels that
  carry separable factors; rank kernels are ``median_filter`` / ``minimum_filter`` /
  ``maximum_filter``;
* with nodata (or NaN, or ``support``), ``num``, ``den`` and ``wsum`` are the same scipy sums over
  the values zeroed where invalid, the validity (a constant border is valid unless ``cval`` is
  nodata or NaN) and ones; the result is ``num * (wsum / den)``, unchanged where ``den == 0``;
  rank kernels take the median / min / max over the valid cells of each footprint, padded with
  ``np.pad`` (the scipy modes map onto ``np.pad`` modes);
* the float64 result is cast back: integers ``np.rint`` (half to even), clipped and cast.

The implementation sums in the same order as scipy, so values are compared with exact equality
(``==``, so a computed ``-0.0`` equals ``0.0``); pixels that must not change are compared bit for bit.

The "seed" tests at the end check that the three hand-rolled approaches this tool replaces (a Python
loop, ``scipy.signal.convolve2d`` and ``scipy.ndimage.convolve`` followed by ``out[mask] = ...``) are
reproduced by ``masked_convolve`` with the matching mode and op.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from geomask import kernels
from geomask._nb import rows as nb_rows
from geomask.convolve import masked_convolve
from geomask.errors import ConfigError, GeomaskError, InputError, KernelError
from geomask.kernels import Kernel

DTYPES = (np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64)
MODES = ("reflect", "mirror", "nearest", "wrap", "constant", "leave")
OPS = ("convolve", "correlate")
RANK = ("median", "minimum", "maximum")

# scipy.ndimage boundary modes as np.pad modes (valid while the pad is narrower than the image,
# which holds because a kernel may not be larger than the image).
_NP_PAD = {"reflect": "symmetric", "mirror": "reflect", "nearest": "edge", "wrap": "wrap"}
_RANK_FILTERS = {"median": ndi.median_filter, "minimum": ndi.minimum_filter, "maximum": ndi.maximum_filter}


# --- the oracle -------------------------------------------------------------------------------------


def _is_float(dtype: Any) -> bool:
    return np.dtype(dtype).kind == "f"


def _invalid(band: np.ndarray, nodata: float | None) -> np.ndarray:
    """Pixels that hold no data: equal to ``nodata`` or, for floats, NaN."""
    bad = np.isnan(band) if _is_float(band.dtype) else np.zeros(band.shape, dtype=bool)
    if nodata is not None and not np.isnan(nodata):
        bad |= band == nodata
    return bad


def _cval_is_valid(cval: float, nodata: float | None) -> bool:
    return not (np.isnan(cval) or (nodata is not None and cval == nodata))


def nodata_present(array: np.ndarray, nodata: float | None) -> bool:
    """What makes zero-sum kernels with ``normalize=True`` raise: nodata occurring, or NaN in floats."""
    return bool(_invalid(array, nodata).any())


def _to_dtype(values: np.ndarray, dtype: Any) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)


def _linear(a64: np.ndarray, kernel: Kernel, mode: str, cval: float, op: str) -> np.ndarray:
    """scipy on one float64 plane: 2-D, or two 1-D passes (rows first) for separable kernels."""
    if kernel.separable is not None:
        column, row = kernel.separable
        if op == "convolve":
            column, row = column[::-1], row[::-1]
        rows_done = ndi.correlate1d(a64, row, axis=-1, mode=mode, cval=cval)
        return ndi.correlate1d(rows_done, column, axis=-2, mode=mode, cval=cval)
    scipy_filter = ndi.convolve if op == "convolve" else ndi.correlate
    return scipy_filter(a64, kernel.weights, mode=mode, cval=cval)


def _pad(plane: np.ndarray, halo: tuple[int, int], mode: str, border: float) -> np.ndarray:
    width = ((halo[0], halo[0]), (halo[1], halo[1]))
    if mode == "constant":
        return np.pad(plane, width, mode="constant", constant_values=border)
    return np.pad(plane, width, mode=_NP_PAD[mode])


def _masked_linear(a64, valid, kernel, mode, cval, cval_valid, op, normalize):
    """num * (wsum / den) over the valid cells; returns (values, which pixels get a value).

    scipy's own border handling expresses this: the modes map border cells to image pixels (whose
    validity counts), and a constant border is a cell of value ``cval`` and validity 1, or of
    validity 0 when ``cval`` is nodata or NaN. For separable kernels in constant mode the second
    pass sees ``cval`` beyond the edge, as in the plain path, so a pixel far from any nodata gets
    exactly the plain result.
    """
    zeroed = np.where(valid, a64, 0.0)
    num = _linear(zeroed, kernel, mode, cval if cval_valid else 0.0, op)
    if not normalize:
        return num, np.ones(a64.shape, dtype=bool)
    den = _linear(valid.astype(np.float64), kernel, mode, 1.0 if cval_valid else 0.0, op)
    wsum = _linear(np.ones_like(a64), kernel, mode, 1.0, op)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = num * (wsum / den)
    return values, den != 0


def _masked_rank(a64, valid, kernel, mode, cval, cval_valid):
    """Median (mean of the middle two for even counts) / min / max of the valid cells of each footprint."""
    padded = _pad(np.where(valid, a64, np.nan), kernel.halo, mode, cval if cval_valid else np.nan)
    windows = sliding_window_view(padded, kernel.shape).reshape(*a64.shape, -1)
    ordered = np.sort(windows, axis=-1)  # NaN (invalid) sorts last
    count = np.count_nonzero(~np.isnan(windows), axis=-1)

    def nth(index: np.ndarray) -> np.ndarray:
        return np.take_along_axis(ordered, np.maximum(index, 0)[..., None], axis=-1)[..., 0]

    if kernel.kind == "median":
        values = (nth((count - 1) // 2) + nth(count // 2)) / 2
    elif kernel.kind == "minimum":
        values = nth(np.zeros_like(count))
    else:
        values = nth(count - 1)
    return values, count > 0


def reference(
    array: np.ndarray,
    kernel: Kernel,
    mask: np.ndarray,
    *,
    mode: str = "reflect",
    cval: float = 0.0,
    nodata: float | None = None,
    op: str = "convolve",
    normalize: bool = True,
    support: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The expected output of ``masked_convolve`` and the pixels it computes (the rest must be the input).

    Chooses the 2-D or the 1-D-twice scipy oracle by ``kernel.separable is not None``. Does not
    model the errors: check ``nodata_present`` and the kernel's weight sum first.
    """
    kernel = kernels.as_kernel(kernel)
    height, width = mask.shape
    bands = array.reshape(-1, height, width)
    target = np.asarray(mask, dtype=bool).copy()
    if mode == "leave":
        hr, hc = kernel.halo
        inner = np.zeros_like(target)
        inner[hr : height - hr, hc : width - hc] = True
        target &= inner
        mode = "reflect"  # every mode agrees on pixels whose footprint stays inside the image
    cval_valid = _cval_is_valid(cval, nodata)

    out = bands.copy()
    computed = np.zeros(bands.shape, dtype=bool)
    for i, band in enumerate(bands):
        a64 = band.astype(np.float64)
        invalid = _invalid(band, nodata)
        # Bands are independent: one without nodata takes the plain path even if another has some.
        masked_path = bool(invalid.any()) or support is not None or (mode == "constant" and not cval_valid)
        if not masked_path:
            if kernel.kind == "linear":
                values = _linear(a64, kernel, mode, cval, op)
            else:
                values = _RANK_FILTERS[kernel.kind](band, size=kernel.shape, mode=mode, cval=cval)
                values = values.astype(np.float64)
            changed = target
        else:
            valid = ~invalid
            neighbours = valid if support is None else valid & support
            if kernel.kind == "linear":
                values, ok = _masked_linear(a64, neighbours, kernel, mode, cval, cval_valid, op, normalize)
            else:
                values, ok = _masked_rank(a64, neighbours, kernel, mode, cval, cval_valid)
            changed = target & neighbours & ok  # a pixel outside the support stays, like nodata
        out[i][changed] = _to_dtype(values[changed], array.dtype)
        computed[i] = changed
    return out.reshape(array.shape), computed.reshape(array.shape)


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(f"u{a.dtype.itemsize}") if _is_float(a.dtype) else a


def assert_same(got: np.ndarray, expected: np.ndarray, computed: np.ndarray, context: str = "") -> None:
    """Bit for bit where nothing may change; exact equality (NaN == NaN, -0.0 == 0.0) where computed."""
    assert isinstance(got, np.ndarray), type(got)
    assert got.dtype == expected.dtype, f"dtype {got.dtype} != {expected.dtype}"
    assert got.shape == expected.shape, f"shape {got.shape} != {expected.shape}"
    kept = ~computed
    bad_kept = kept & (_bits(got) != _bits(expected))
    same_value = (got == expected) | (np.isnan(got) & np.isnan(expected) if _is_float(got.dtype) else False)
    bad_computed = computed & ~same_value
    bad = bad_kept | bad_computed
    if bad.any():
        where = np.argwhere(bad)
        lines = [
            f"{int(bad_kept.sum())} pixel(s) that must stay as the input changed, "
            f"{int(bad_computed.sum())} computed pixel(s) differ from scipy {context}"
        ]
        for index in where[:8]:
            ix = tuple(int(i) for i in index)
            kind = "kept" if bad_kept[ix] else "computed"
            g, e = got[ix], expected[ix]
            extra = ""
            if _is_float(got.dtype) and np.isfinite(e) and e != 0:
                extra = f" ({float((g - e) / np.spacing(e)):+.1f} ulp)"
            lines.append(f"  {kind} {ix}: got {g!r}, expected {e!r}{extra}")
        raise AssertionError("\n".join(lines))


# --- hypothesis strategies --------------------------------------------------------------------------

_WEIGHTS = st.one_of(
    st.sampled_from([0.0, 0.0, 0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.25, 0.125, 3.0]),
    st.floats(1e-3, 4.0),
    st.floats(-4.0, -1e-3),
)
_ODD = {n: [s for s in range(1, n + 1, 2)] for n in range(1, 32, 2)}


@st.composite
def kernel_strategy(draw, max_side: int = 9) -> Kernel:
    """Registry kernels with random parameters, and custom odd matrices (zero and negative weights)."""
    name = draw(st.sampled_from([*kernels.names(), "custom", "custom", "custom"]))
    half = max_side // 2
    if name == "box":
        return kernels.get("box", size=draw(st.sampled_from(_ODD[max_side])))
    if name == "gaussian":
        sigma = draw(st.floats(0.2, 3.0))
        radius = draw(st.one_of(st.none(), st.integers(0, half)))
        if radius is None and math.ceil(3 * sigma) > half:
            radius = half
        return kernels.get("gaussian", sigma=sigma, radius=radius)
    if name == "disk":
        return kernels.get("disk", radius=draw(st.integers(0, half)))
    if name == "sharpen":
        # |amount| >= 1e-3 like _WEIGHTS: weights below DBL_EPSILON have their own test (scipy drops them).
        amount = draw(st.one_of(st.just(0.0), st.floats(1e-3, 4.0), st.floats(-1.0, -1e-3)))
        return kernels.get("sharpen", amount=amount)
    if name in RANK:
        return kernels.get(name, size=draw(st.sampled_from(_ODD[min(max_side, 7)])))
    if name == "custom":
        rows = draw(st.sampled_from(_ODD[max_side]))
        cols = draw(st.sampled_from(_ODD[max_side]))
        row = st.lists(_WEIGHTS, min_size=cols, max_size=cols)
        return kernels.from_matrix(draw(st.lists(row, min_size=rows, max_size=rows)))
    return kernels.get(name)


def _values(rng: np.random.Generator, dtype: Any, shape: tuple[int, ...], style: str) -> np.ndarray:
    if not _is_float(dtype):
        info = np.iinfo(dtype)
        if style == "full":  # spans the range, so sharpening and custom kernels clip
            values = rng.integers(info.min, info.max, size=shape, endpoint=True)
        elif style == "narrow":  # few distinct values: ties for rank filters, exact .5 means
            values = rng.integers(info.min, info.max - 8, endpoint=True) + rng.integers(0, 9, size=shape)
        else:
            extremes = [info.min, info.min + 1, (info.min + info.max) // 2, info.max - 1, info.max]
            values = rng.choice(np.array(extremes, dtype=np.int64), size=shape)
        return values.astype(dtype)
    if style == "full":
        values = rng.normal(0.0, 1000.0, size=shape)
    elif style == "narrow":
        values = rng.integers(-4, 5, size=shape) * 0.5
    else:
        values = rng.choice(np.array([-1e6, -1.0, -0.0, 0.0, 0.5, 3.25, 1e6]), size=shape)
    return values.astype(dtype)


_ABSENT = -9999  # a nodata value that the array must not hold (checked)


def _with_nodata(rng, array, kind: str, fraction: float) -> float | None:
    """Sprinkle nodata into ``array`` in place; return the nodata argument."""
    if kind == "none":
        return None
    hit = rng.random(array.shape) < fraction
    if kind == "absent":
        candidates = [_ABSENT, 0, 1, 255, -1]
        info = np.iinfo(array.dtype) if not _is_float(array.dtype) else None
        for value in candidates:
            if info is not None and not info.min <= value <= info.max:
                continue
            if not (array == value).any():
                return float(value) if info is None else value
        return None
    nodata: float | None = None
    if kind in ("value", "value+nan"):
        value = array.flat[int(rng.integers(array.size))].item()
        array[hit] = value
        nodata = value
    if kind in ("nan", "nan-nodata", "value+nan"):
        extra = rng.random(array.shape) < fraction / 2
        array[extra] = np.nan
        if kind == "nan-nodata":
            nodata = float("nan")
    return nodata


@dataclass
class Case:
    """One call of masked_convolve; ``recipe`` says how the arrays were made (seed, style, nodata, mask)."""

    recipe: dict[str, Any]
    array: np.ndarray = field(repr=False)
    kernel: Kernel = field(repr=False)
    mask: np.ndarray = field(repr=False)
    kwargs: dict[str, Any] = field(default_factory=dict)
    support: np.ndarray | None = field(default=None, repr=False)

    def call_kwargs(self) -> dict[str, Any]:
        return dict(self.kwargs, support=self.support)


@st.composite
def cases(draw, *, max_side: int = 9, with_support: bool = False) -> Case:
    kernel = draw(kernel_strategy(max_side))
    kr, kc = kernel.shape
    height = draw(st.integers(kr, 40))
    width = draw(st.integers(kc, 40))
    bands = draw(st.sampled_from([None, None, 1, 3]))
    dtype = draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2**32 - 1))
    style = draw(st.sampled_from(["full", "narrow", "extremes"]))
    kinds = ["none", "value", "absent"] + (["nan", "nan-nodata", "value+nan"] if _is_float(dtype) else [])
    nodata_kind = draw(st.sampled_from(kinds))
    fraction = draw(st.sampled_from([0.02, 0.2, 0.6, 0.95]))
    mask_kind = draw(st.sampled_from(["empty", "full", "full", "random", "random", "random"]))
    density = draw(st.floats(0.0, 1.0))
    mode = draw(st.sampled_from(MODES))
    op = draw(st.sampled_from(OPS))
    normalize = draw(st.booleans())
    if kernel.kind != "linear" and not _is_float(dtype):
        info = np.iinfo(dtype)  # a rank filter's border value must be a value of the dtype
        cval: float = draw(st.sampled_from([0, info.min, info.max, draw(st.integers(info.min, info.max))]))
    else:
        cval = draw(st.sampled_from([0.0, 1.0, -2.5, 77.0, 1e5]))

    rng = np.random.default_rng(seed)
    shape = (height, width) if bands is None else (bands, height, width)
    array = _values(rng, dtype, shape, style)
    nodata = _with_nodata(rng, array, nodata_kind, fraction)
    # A constant border that is nodata (or NaN) does not count either. Not for zero-sum kernels: whether
    # such a border alone makes them raise is left open by the contract.
    border = draw(st.sampled_from(["drawn", "drawn", "drawn", "nodata", "nan"]))
    zero_sum = kernel.kind == "linear" and kernel.weight_sum <= 0
    if border == "nodata" and nodata is not None and not zero_sum:
        cval = nodata
    elif border == "nan" and _is_float(dtype) and not zero_sum:
        cval = float("nan")
    else:
        assume(nodata is None or np.isnan(nodata) or cval != nodata)
    mask = {
        "empty": np.zeros((height, width), dtype=bool),
        "full": np.ones((height, width), dtype=bool),
    }.get(mask_kind)
    if mask is None:
        mask = rng.random((height, width)) < density
    support = None
    if with_support:
        support = rng.random((height, width)) < draw(st.floats(0.0, 1.0))
    as_matrix = kernel.name == "custom" and draw(st.booleans())  # raw list of lists, not a Kernel
    recipe = dict(
        kernel=kernel.describe() if kernel.name != "custom" else kernel.weights.tolist(),
        shape=shape,
        dtype=np.dtype(dtype).name,
        seed=seed,
        style=style,
        nodata_kind=nodata_kind,
        fraction=fraction,
        mask=mask_kind if mask_kind != "random" else f"random({density})",
        as_matrix=as_matrix,
    )
    kwargs = dict(mode=mode, cval=cval, nodata=nodata, op=op, normalize=normalize)
    case = Case(recipe, array, kernel, mask, kwargs, support)
    return case


def _kernel_arg(case: Case) -> Any:
    return case.kernel.weights.tolist() if case.recipe["as_matrix"] else case.kernel


def _must_raise(case: Case) -> bool:
    """A zero-sum kernel with normalize=True is refused, whatever the mask, when nodata (or NaN) occurs
    anywhere in the stack (any band) or a support is given: one rule, decided before any work."""
    k = case.kernel
    return (
        k.kind == "linear"
        and case.kwargs["normalize"]
        and k.weight_sum <= 0
        and (nodata_present(case.array, case.kwargs["nodata"]) or case.support is not None)
    )


def check_case(case: Case) -> None:
    before = case.array.copy()
    mask_before = case.mask.copy()
    if _must_raise(case):
        with pytest.raises(KernelError):
            masked_convolve(case.array, _kernel_arg(case), case.mask, **case.call_kwargs())
        return
    got = masked_convolve(case.array, _kernel_arg(case), case.mask, **case.call_kwargs())
    # The input is never modified and the result is a new array.
    assert np.array_equal(_bits(case.array), _bits(before))
    assert np.array_equal(case.mask, mask_before)
    assert not np.shares_memory(got, case.array)
    expected, computed = reference(case.array, case.kernel, case.mask, **case.call_kwargs())
    assert_same(got, expected, computed, context=f"{case.recipe} {case.kwargs}")


# --- property tests ---------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _warm_up():
    """Compile the numba loops once, so hypothesis' timing is not dominated by the first call."""
    for dtype in (np.uint8, np.float64):
        a = np.arange(25, dtype=dtype).reshape(5, 5)
        masked_convolve(a, kernels.get("box"), np.ones((5, 5), dtype=bool))
        masked_convolve(a, kernels.get("box"), np.ones((5, 5), dtype=bool), nodata=3)
        masked_convolve(a, kernels.get("median"), np.ones((5, 5), dtype=bool), nodata=3)


@pytest.mark.slow
@settings(max_examples=1000, deadline=None)
@given(case=cases())
def test_matches_scipy_oracle(case):
    check_case(case)


@settings(max_examples=300, deadline=None)
@given(case=cases(with_support=True))
def test_support_matches_oracle(case):
    # A zero-sum kernel cannot be renormalised over a support: not part of the contract, left out.
    assume(case.kernel.kind != "linear" or case.kernel.weight_sum > 0 or not case.kwargs["normalize"])
    check_case(case)


@settings(max_examples=100, deadline=None)
@given(case=cases(max_side=5))
def test_bands_are_independent(case):
    stack = np.stack([case.array, case.array[::-1, ::-1]]) if case.array.ndim == 2 else case.array
    assume(not _must_raise(Case(case.recipe, stack, case.kernel, case.mask, case.kwargs)))
    got = masked_convolve(stack, case.kernel, case.mask, **case.kwargs)
    for band, plane in zip(stack, got, strict=True):
        alone = masked_convolve(band, case.kernel, case.mask, **case.kwargs)
        assert np.array_equal(_bits(plane), _bits(alone))


# --- large kernels ----------------------------------------------------------------------------------

_RNG31 = np.random.default_rng(31)
_BIG_KERNELS = {
    "custom31": kernels.from_matrix(_RNG31.choice([0.0, 1.0, -1.0, 0.5, 2.0], size=(31, 31))),
    "box31": kernels.get("box", size=31),
    "gaussian_r15": kernels.get("gaussian", sigma=5.0, radius=15),
    "disk15": kernels.get("disk", radius=15),
    "median31": kernels.get("median", size=31),
    "maximum31": kernels.get("maximum", size=31),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(_BIG_KERNELS))
@pytest.mark.parametrize("dtype", [np.uint16, np.float64])
def test_31x31_kernels_on_a_small_image(name, mode, dtype):
    kernel = _BIG_KERNELS[name]
    rng = np.random.default_rng(7)
    array = _values(rng, dtype, (2, 31, 34), "full")
    mask = rng.random((31, 34)) < 0.7
    op = "correlate" if name == "custom31" else "convolve"
    for nodata in (None, array.flat[5].item()):
        if nodata is not None:
            array[:, rng.random((31, 34)) < 0.3] = nodata
        if kernel.kind == "linear" and kernel.weight_sum <= 0 and nodata is not None:
            continue
        got = masked_convolve(array, kernel, mask, mode=mode, cval=3.0, nodata=nodata, op=op)
        expected, computed = reference(array, kernel, mask, mode=mode, cval=3.0, nodata=nodata, op=op)
        assert_same(got, expected, computed, context=f"{name} {mode} nodata={nodata}")


# --- row strategies ---------------------------------------------------------------------------------
#
# The compiled loops run a row with many targets tap-outer over the whole row (vectorised) and a row
# with few targets pixel by pixel; the switch depends on the row's target count, the image width and
# the kernel, and may change the speed only. The property tests above use images at most 40 pixels
# wide, where nearly every row is "dense": these wide images put both kinds of rows side by side.

_WIDE_KERNELS = {
    "gaussian5": kernels.get("gaussian", sigma=1.0, radius=2),
    "box3": kernels.get("box", size=3),
    "sobel_x": kernels.get("sobel_x"),
    "gaussian_r7": kernels.get("gaussian", sigma=2.5, radius=7),
    "laplacian": kernels.get("laplacian"),
    "custom_2d": kernels.from_matrix([[1.0, 0.0, 2.0], [0.5, -1.0, 0.0], [3.0, 1.0, 0.25]]),
    "disk3": kernels.get("disk", radius=3),
    "median5": kernels.get("median", size=5),
}


def _mixed_rows_mask(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Rows of every density: empty, 1 pixel, a few scattered, 1 %, 10 %, a solid run, full."""
    h, w = shape
    mask = np.zeros(shape, dtype=bool)
    densities = [0.0, -1, 0.003, 0.01, 0.1, -2, 1.0, 0.5]
    for y in range(h):
        d = densities[y % len(densities)]
        if d == -1:
            mask[y, rng.integers(w)] = True
        elif d == -2:
            start = int(rng.integers(w // 2))
            mask[y, start : start + w // 3] = True
        else:
            mask[y] = rng.random(w) < d
    return mask


@pytest.mark.parametrize("name", list(_WIDE_KERNELS))
@pytest.mark.parametrize(
    ("dtype", "nodata_kind"),
    [
        (np.uint16, "none"),
        (np.uint16, "value"),
        (np.float32, "nan"),
        (np.float64, "value+nan"),
        (np.int16, "absent"),
    ],
)
def test_sparse_and_dense_rows_match_the_oracle(name, dtype, nodata_kind):
    kernel = _WIDE_KERNELS[name]
    rng = np.random.default_rng(11)
    array = _values(rng, dtype, (2, 24, 700), "narrow")
    nodata = _with_nodata(rng, array, nodata_kind, 0.02)
    mask = _mixed_rows_mask(rng, (24, 700))
    for mode, normalize in (("reflect", True), ("constant", True), ("wrap", False)):
        kwargs = dict(mode=mode, cval=5.0, nodata=nodata, normalize=normalize)
        case = Case({}, array, kernel, mask, kwargs)
        if _must_raise(case):
            with pytest.raises(KernelError):
                masked_convolve(array, kernel, mask, **kwargs)
            continue
        got = masked_convolve(array, kernel, mask, **kwargs)
        expected, computed = reference(array, kernel, mask, **kwargs)
        assert_same(got, expected, computed, context=f"{name} {np.dtype(dtype).name} {nodata_kind} {mode}")


def _blob_mask(rng: np.random.Generator, shape: tuple[int, int], blobs: int, speckle: float) -> np.ndarray:
    """Discs and boxes of random sizes (ROI-like: rows whose targets span part of the width, spans
    that grow and shrink from row to row) plus independent speckle pixels."""
    h, w = shape
    mask = rng.random(shape) < speckle
    yy, xx = np.ogrid[:h, :w]
    for _ in range(blobs):
        cy, cx, r = int(rng.integers(h)), int(rng.integers(w)), int(rng.integers(1, 40))
        if rng.random() < 0.5:
            mask |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        else:
            mask[max(0, cy - r) : cy + r, max(0, cx - 2 * r) : cx + 2 * r] = True
    return mask


@settings(max_examples=120, deadline=None)
@given(
    name=st.sampled_from(list(_WIDE_KERNELS)),
    dtype=st.sampled_from(DTYPES),
    style=st.sampled_from(["full", "narrow", "extremes"]),
    nodata_kind=st.sampled_from(["none", "none", "nan", "value"]),
    width=st.integers(60, 420),
    blobs=st.integers(0, 12),
    speckle=st.sampled_from([0.0, 0.0, 0.002, 0.03]),
    mode=st.sampled_from(MODES),
    seed=st.integers(0, 2**32 - 1),
)
def test_roi_like_masks_match_the_oracle(name, dtype, style, nodata_kind, width, blobs, speckle, mode, seed):
    """Rows are filtered over the segments that hold their targets only (cut at wide gaps), with the
    row passes cached and extended as the spans move, and stored in straight passes where dense:
    none of it may change a bit. Wide images with disc- and box-shaped masks (the shape of ROI
    polygons) exercise those paths; "extremes" holds -0.0 beside 0.0 and integer values that clip."""
    if nodata_kind == "nan" and not _is_float(dtype):
        nodata_kind = "value"
    kernel = _WIDE_KERNELS[name]
    rng = np.random.default_rng(seed)
    array = _values(rng, dtype, (2, 48, width), style)
    nodata = _with_nodata(rng, array, nodata_kind, 0.01)
    mask = _blob_mask(rng, (48, width), blobs, speckle)
    kwargs = dict(mode=mode, cval=3.0, nodata=nodata, normalize=True)
    case = Case({}, array, kernel, mask, kwargs)
    if _must_raise(case):
        return
    got = masked_convolve(array, kernel, mask, **kwargs)
    expected, computed = reference(array, kernel, mask, **kwargs)
    assert_same(got, expected, computed, context=f"{name} {np.dtype(dtype).name} {nodata_kind} {mode}")


@pytest.mark.parametrize("name", ["box3", "gaussian_r7", "custom_2d", "median5"])
@pytest.mark.parametrize("dtype", [np.float32, np.uint16])
def test_row_segments_at_the_gap_threshold(name, dtype):
    """A row's targets are computed in segments cut at 8 or more empty 8-pixel words (64 columns);
    each row below puts two dense runs or single pixels 7, 8 or 9 words apart, and a dense run
    next to a lone pixel. New array and in place must equal the oracle bit for bit."""
    kernel = _WIDE_KERNELS[name]
    rng = np.random.default_rng(11)
    array = _values(rng, dtype, (1, 40, 400), "full")[0]
    mask = np.zeros(array.shape, dtype=bool)
    for row, gap_words in enumerate((7, 8, 9, 7, 8, 9)):
        r = 4 + 5 * row
        if row < 3:  # two dense runs of 24 columns
            mask[r : r + 3, 16:40] = True
            mask[r : r + 3, 40 + 8 * gap_words : 64 + 8 * gap_words] = True
        else:  # a dense run, then a lone pixel, then another
            mask[r, 8:72] = True
            mask[r, 72 + 8 * gap_words + 3] = True
            mask[r, 72 + 16 * gap_words + 5] = True
    expected, computed = reference(array, kernel, mask, mode="reflect")
    assert_same(masked_convolve(array, kernel, mask, threads=1), expected, computed, context=name)
    inplace = array.copy()
    masked_convolve(inplace, kernel, mask, threads=1, out=inplace)
    assert_same(inplace, expected, computed, context=f"{name} in place")


@pytest.mark.parametrize("name", ["box3", "gaussian5", "gaussian_r7"])
def test_many_segments_per_row_and_moving(name):
    """Separable kernels cache row passes per source row in up to 8 runs of columns, one per
    segment; rows here hold 12 short dense runs 150 columns apart that move by 40 columns from
    row to row (no run touches the last row's), so runs are added, extended and replaced."""
    kernel = _WIDE_KERNELS[name]
    rng = np.random.default_rng(3)
    array = _values(rng, np.float32, (1, 30, 1900), "full")[0]
    mask = np.zeros(array.shape, dtype=bool)
    for r in range(30):
        shift = (40 * r) % 150
        for k in range(12):
            x = 8 + shift + 150 * k
            mask[r, x : x + 12 + (r % 3) * 4] = True
    expected, computed = reference(array, kernel, mask, mode="mirror")
    assert_same(
        masked_convolve(array, kernel, mask, mode="mirror", threads=1), expected, computed, context=name
    )
    inplace = array.copy()
    masked_convolve(inplace, kernel, mask, mode="mirror", threads=1, out=inplace)
    assert_same(inplace, expected, computed, context=f"{name} in place")


@pytest.mark.parametrize("name", ["gaussian5", "custom_2d", "median5"])
def test_threads_split_rows_without_changing_a_bit(name):
    """masked_convolve splits rows over threads (blocks of >= 128 rows); the split changes nothing."""
    kernel = _WIDE_KERNELS[name]
    rng = np.random.default_rng(5)
    array = _values(rng, np.float32, (2, 400, 90), "full")
    nodata = _with_nodata(rng, array, "value+nan", 0.05)
    mask = _mixed_rows_mask(rng, (400, 90))
    one = masked_convolve(array, kernel, mask, nodata=nodata, mode="wrap", threads=1)
    for threads in (2, 3, None):
        got = masked_convolve(array, kernel, mask, nodata=nodata, mode="wrap", threads=threads)
        assert np.array_equal(_bits(got), _bits(one))
    expected, computed = reference(array, kernel, mask, nodata=nodata, mode="wrap")
    assert_same(one, expected, computed)


@pytest.mark.parametrize("name", ["box3", "gaussian_r7", "median5"])
def test_parts_split_by_work_change_nothing(name):
    """Rows are split between threads by estimated work (rows holding targets weigh about ten
    times an empty row), so with the targets crowded into the top rows the parts are uneven:
    in place and new array, any thread count equals one thread bit for bit (and the oracle)."""
    kernel = _WIDE_KERNELS[name]
    rng = np.random.default_rng(8)
    array = _values(rng, np.float32, (1, 1200, 70), "full")[0]
    mask = np.zeros(array.shape, dtype=bool)
    mask[3:150] = _blob_mask(rng, (147, 70), 6, 0.02)
    mask[1100:1104, 10:60] = True
    one = masked_convolve(array, kernel, mask, mode="wrap", threads=1)
    expected, computed = reference(array, kernel, mask, mode="wrap")
    assert_same(one, expected, computed, context=name)
    for threads in (2, 3, 8):
        got = masked_convolve(array, kernel, mask, mode="wrap", threads=threads)
        assert np.array_equal(_bits(got), _bits(one)), threads
        work = array.copy()
        masked_convolve(work, kernel, mask, mode="wrap", threads=threads, out=work)
        assert np.array_equal(_bits(work), _bits(one)), f"{threads} in place"


def _segments_by_the_rule(row: np.ndarray) -> list[tuple[int, int, int]]:
    """(count, start, stop) of a row's segments, by the rule _row_segments documents: runs of
    8-pixel words holding targets, split where at least _GAP empty words lie between, one
    segment when they cover a quarter of their stretch or more."""
    w = row.size
    words = np.zeros(-(-w // 8) * 8, dtype=bool)
    words[:w] = row
    held = [k for k, word in enumerate(words.reshape(-1, 8)) if word.any()]
    runs: list[list[int]] = []
    for k in held:
        if runs and k - runs[-1][-1] - 1 < nb_rows._GAP:
            runs[-1].append(k)
        else:
            runs.append([k])
    segs = [(int(row[r[0] * 8 : (r[-1] + 1) * 8].sum()), r[0] * 8, min(w, (r[-1] + 1) * 8)) for r in runs]
    if len(segs) > 1 and 4 * sum(b - a for _, a, b in segs) >= segs[-1][2] - segs[0][1]:
        segs = [(sum(c for c, _, _ in segs), segs[0][1], segs[-1][2])]
    return segs


@pytest.mark.parametrize("width", [7, 64, 100, 517, 1024, 4099])
def test_row_segments_follow_their_rule(width):
    # The word flags let _row_segments skip 64 empty columns with one load; the segments (the
    # unit of work and of the in-place ring) must still be exactly the documented ones.
    rng = np.random.default_rng(width)
    for density in (0.0005, 0.003, 0.02, 0.2):
        rows = rng.random((40, width)) < density
        rows[::7, width // 3 : width // 3 + 90] = True  # chords of a polygon
        padded = np.zeros((rows.shape[0], -(-width // 8) * 8), dtype=bool)
        padded[:, :width] = rows
        tw = padded.view(np.uint64)
        nz = np.zeros(-(-tw.shape[1] // 8) * 8, dtype=np.uint8)
        segs = np.empty((width // 8 + 1, 3), dtype=np.int64)
        for i in range(rows.shape[0]):
            g = nb_rows._row_segments(tw, i, 0, width, segs, nz)
            got = [tuple(int(v) for v in segs[k]) for k in range(g)]
            assert got == _segments_by_the_rule(rows[i]), (density, i)


@pytest.mark.slow
def test_compiled_kernels_free_what_they_allocate(monkeypatch):
    # The kernels use their arguments and scratch arrays through views that own no reference
    # (geomask._nb.refs._unowned): numba's allocation counters must still balance, call after call.
    # (numba's build: the C build is checked in test_loops.py.)
    from numba.core.runtime import _nrt_python, rtsys

    from geomask import loops

    monkeypatch.setenv("GEOMASK_KERNELS", "numba")
    loops.backend.cache_clear()

    was_on = _nrt_python.memsys_stats_enabled()
    _nrt_python.memsys_enable_stats()
    try:
        rng = np.random.default_rng(3)
        a = rng.random((300, 260)).astype(np.float32)
        mask = rng.random(a.shape) < 0.05
        mask[100:140, 30:200] = True  # dense segments too
        matrix = kernels.from_matrix(rng.random((3, 5)))
        cases = [kernels.get("box"), kernels.get("gaussian", sigma=1.5), matrix, kernels.get("median")]

        def run_all() -> None:
            for kernel in cases:
                for threads in (1, 2):
                    masked_convolve(a, kernel, mask, threads=threads)
                    work = a.copy()
                    masked_convolve(work, kernel, mask, threads=threads, out=work)

        run_all()  # compiled and cached before counting
        before = rtsys.get_allocation_stats()
        run_all()
        after = rtsys.get_allocation_stats()
    finally:
        loops.backend.cache_clear()  # GEOMASK_KERNELS is restored after the test
        if not was_on:
            _nrt_python.memsys_disable_stats()
    assert after.alloc - before.alloc > 0  # the counters ran
    assert after.alloc - before.alloc == after.free - before.free
    assert after.mi_alloc - before.mi_alloc == after.mi_free - before.mi_free


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("nodata", [None, -1.0])
def test_weights_below_dbl_epsilon_are_dropped_like_scipy(op, nodata):
    """scipy.ndimage.correlate/convolve only sum weights with ``|w| > DBL_EPSILON`` (2.2e-16)."""
    a = np.array([[1.5, 0.5, 0.0, 2.0], [-1.0, -1.0, -2.0, 0.0], [-2.0, -2.0, -1.5, 4.0]])
    if nodata is not None:
        a[2, 3] = nodata
    mask = np.ones(a.shape, dtype=bool)
    for k in (
        kernels.get("sharpen", amount=1e-121),
        kernels.from_matrix([[1e-17, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, -1e-300, 2e-16]]),
    ):
        got = masked_convolve(a, k, mask, op=op, nodata=nodata)
        expected, computed = reference(a, k, mask, op=op, nodata=nodata)
        assert_same(got, expected, computed, context=k.describe())
        assert got[0, 2] == 0.0  # 1.0 * 0.0 plus dropped weights


def test_kernel_as_large_as_the_image():
    array = np.arange(9 * 7, dtype=np.float64).reshape(9, 7)
    kernel = kernels.from_matrix(np.arange(63.0).reshape(9, 7) - 30)
    mask = np.ones((9, 7), dtype=bool)
    for mode in MODES:
        got = masked_convolve(array, kernel, mask, mode=mode)
        expected, computed = reference(array, kernel, mask, mode=mode)
        assert_same(got, expected, computed, context=mode)
    # "leave": only the centre pixel has its whole footprint inside the image.
    got = masked_convolve(array, kernel, mask, mode="leave")
    changed = got != array
    assert not changed[np.arange(9) != 4].any() and not changed[:, np.arange(7) != 3].any()


# --- explicit behaviour -----------------------------------------------------------------------------


def _special_floats(dtype) -> np.ndarray:
    """NaN with payloads and signs, -0.0, inf and subnormals: only bit comparisons see them all."""
    bits = {np.float64: np.uint64, np.float32: np.uint32}[dtype]
    if dtype is np.float64:
        specials = [0x7FF8000000000123, 0xFFF8000000000000, 0x8000000000000000, 0x0000000000000001]
    else:
        specials = [0x7FC00123, 0xFFC00000, 0x80000000, 0x00000001]
    a = np.random.default_rng(1).normal(size=(12, 13)).astype(dtype)
    u = a.view(bits)
    for i, s in enumerate(specials):
        u[i, :: 3 + i] = s
    a[8, ::2] = np.inf
    a[9, 1::3] = -np.inf
    return a


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "kernel", [kernels.get("box"), kernels.get("sharpen"), kernels.get("median")], ids=str
)
def test_outside_mask_and_nan_are_unchanged_bit_for_bit(dtype, kernel):
    a = _special_floats(dtype)
    before = a.copy()
    mask = np.zeros(a.shape, dtype=bool)
    mask[2:10, 3:9] = True
    got = masked_convolve(a, kernel, mask)
    assert np.array_equal(_bits(a), _bits(before))
    keep = ~mask | np.isnan(a)
    assert np.array_equal(_bits(got)[keep], _bits(a)[keep])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["box", "gaussian", "sharpen", "emboss", "median", "maximum"])
def test_nodata_pixels_stay_and_dtype_is_preserved(dtype, name):
    rng = np.random.default_rng(2)
    a = _values(rng, dtype, (3, 15, 16), "full")
    nodata = 0
    a[rng.random(a.shape) < 0.3] = nodata
    mask = np.ones((15, 16), dtype=bool)
    got = masked_convolve(a, kernels.get(name), mask, nodata=nodata)
    assert got.dtype == a.dtype and got.shape == a.shape
    assert np.all(got[a == nodata] == nodata)
    expected, computed = reference(a, kernels.get(name), mask, nodata=nodata)
    assert_same(got, expected, computed)
    assert masked_convolve(a[0], kernels.get(name), mask, nodata=nodata).dtype == a.dtype


def test_nodata_renormalises_by_hand():
    a = np.arange(1.0, 10.0).reshape(3, 3)
    a[2, 2] = -1.0
    mask = np.ones((3, 3), dtype=bool)
    got = masked_convolve(a, kernels.get("box"), mask, nodata=-1.0, mode="leave")
    assert got[1, 1] == pytest.approx(36 / 8, rel=1e-15)  # mean of the 8 valid neighbours
    assert got[2, 2] == -1.0
    assert np.array_equal(np.delete(got.ravel(), 4), np.delete(a.ravel(), 4))
    # A NaN counts as nodata in floats whatever ``nodata`` is.
    b = a.copy()
    b[2, 2] = np.nan
    got = masked_convolve(b, kernels.get("box"), mask, mode="leave")
    assert got[1, 1] == pytest.approx(4.5, rel=1e-15) and np.isnan(got[2, 2])


@pytest.mark.parametrize("nodata", [-3.4e38, 0.1, -9999.9])
@pytest.mark.parametrize(
    "kernel", [kernels.get("box"), kernels.get("disk"), kernels.get("median")], ids=lambda k: k.name
)
def test_float32_nodata_given_as_a_float64_decimal(nodata, kernel):
    """GDAL/rasterio hand a float32 band's nodata over as a Python float (-3.4e38 is not a float32).

    ``array != nodata`` compares in float32 (NumPy 2 casts the Python scalar to the array's dtype),
    so the pixels holding ``float32(nodata)`` are nodata: they neither change nor contribute.
    """
    a = np.full((6, 7), 10.0, dtype=np.float32)
    a[2, 3] = a[0, 0] = a[5, 6] = nodata
    assert (a == nodata).sum() == 3 and float(a[2, 3]) != nodata
    mask = np.ones(a.shape, dtype=bool)
    got = masked_convolve(a, kernel, mask, nodata=nodata)
    assert np.array_equal(_bits(got[a == nodata]), _bits(a[a == nodata]))
    assert np.all(got[a != nodata] == np.float32(10.0))
    expected, computed = reference(a, kernel, mask, nodata=nodata)
    assert_same(got, expected, computed)


def test_no_valid_neighbour_leaves_the_pixel():
    a = np.full((3, 5), 7, dtype=np.uint8)
    a[1, 2] = 100
    ring = kernels.from_matrix([[1, 1, 1], [1, 0, 1], [1, 1, 1]])
    got = masked_convolve(a, ring, np.ones((3, 5), dtype=bool), nodata=7)
    assert got[1, 2] == 100  # all weighted neighbours are nodata: unchanged
    assert np.array_equal(got, a)
    median = masked_convolve(a, kernels.get("median"), np.ones((3, 5), dtype=bool), nodata=7)
    assert np.array_equal(median, a)  # the only valid cell is the pixel itself


def test_rank_median_of_an_even_count_is_the_mean_of_the_middle_two():
    a = np.array([[10, 20, 255], [30, 41, 255], [255, 255, 255]], dtype=np.uint8)
    mask = np.zeros((3, 3), dtype=bool)
    mask[1, 1] = True

    def median() -> int:
        return int(masked_convolve(a, kernels.get("median"), mask, nodata=255, mode="leave")[1, 1])

    assert median() == 25  # 10, 20, 30, 41 -> (20 + 30) / 2
    a[0, 1] = 21
    assert median() == 26  # 10, 21, 30, 41 -> 25.5 -> 26 (half to even)
    a[1, 0] = 28
    assert median() == 24  # 10, 21, 28, 41 -> 24.5 -> 24 (half to even)
    f = a.astype(np.float32)
    got = masked_convolve(f, kernels.get("median"), mask, nodata=255, mode="leave")
    assert got[1, 1] == np.float32(24.5)


@pytest.mark.parametrize("size", [3, 5, 7])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_rank_median_with_many_ties_and_even_counts_matches_the_oracle(size, dtype):
    # Few distinct values (many ties) and a nodata value, so footprints hold odd and even counts of
    # valid cells: the in-place selection must give the order statistics a full sort gives.
    rng = np.random.default_rng(size)
    a = rng.integers(0, 5, (37, 41)).astype(dtype)
    mask = rng.random(a.shape) < 0.6
    kernel = kernels.get("median", size=size)
    expected, _ = reference(a, kernel, mask, nodata=4)
    got = masked_convolve(a, kernel, mask, nodata=4)
    assert np.array_equal(got, expected.reshape(a.shape))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32])
def test_rounding_is_half_to_even(dtype):
    a = np.array([[1, 2, 3, 4, 5, 6]], dtype=dtype)
    pair = kernels.from_matrix([[0.0, 0.5, 0.5]])  # correlate: mean of the pixel and its right neighbour
    got = masked_convolve(a, pair, np.ones(a.shape, dtype=bool), op="correlate", mode="nearest")
    # 1.5, 2.5, 3.5, 4.5, 5.5, 6 -> 2, 2, 4, 4, 6, 6
    assert got.dtype == dtype
    assert got.tolist() == [[2, 2, 4, 4, 6, 6]]
    negative = np.array([[-1, -2, -3, -4]], dtype=dtype) if np.iinfo(dtype).min < 0 else None
    if negative is not None:
        got = masked_convolve(
            negative, pair, np.ones(negative.shape, dtype=bool), op="correlate", mode="nearest"
        )
        assert got.tolist() == [[-2, -2, -4, -4]]  # -1.5, -2.5, -3.5, -4


def test_mean_of_two_rounds_half_to_even():
    row = np.array([[0, 3, 0, 0, 1, 4]], dtype=np.uint8)
    weights = kernels.from_matrix([[0.5, 0.0, 0.5]])  # mean of the two neighbours
    got = masked_convolve(row, weights, np.ones(row.shape, dtype=bool), mode="leave")
    # edges left; inside: (0+0)/2=0, (3+0)/2=1.5->2, (0+1)/2=0.5->0, (0+4)/2=2
    assert got.tolist() == [[0, 0, 2, 0, 2, 4]]


def test_sharpen_clips_at_0_and_255():
    a = np.full((5, 5), 200, dtype=np.uint8)
    a[2, 2] = 10
    mask = np.ones((5, 5), dtype=bool)
    got = masked_convolve(a, kernels.get("sharpen"), mask, mode="nearest")
    assert got[2, 2] == 0  # 5*10 - 4*200 = -750
    assert got[1, 2] == got[2, 1] == got[3, 2] == got[2, 3] == 255  # 5*200 - 3*200 - 10 = 390
    assert got[0, 0] == 200
    spike = np.zeros((5, 5), dtype=np.uint8)
    spike[2, 2] = 255
    got = masked_convolve(spike, kernels.get("sharpen"), mask, mode="nearest")
    assert got[2, 2] == 255 and got[1, 2] == 0 and got.sum() == 255
    expected, computed = reference(spike, kernels.get("sharpen"), mask, mode="nearest")
    assert_same(got, expected, computed)


def test_signed_and_wide_integers_clip_at_their_range():
    a = np.array([[-30000, 30000, -30000], [30000, -30000, 30000], [-30000, 30000, -30000]], dtype=np.int16)
    got = masked_convolve(a, kernels.get("sharpen", amount=2.0), np.ones((3, 3), dtype=bool), mode="wrap")
    assert got[1, 1] == -32768 and got[0, 1] == 32767
    b = a.astype(np.int32) * 70000
    got = masked_convolve(b, kernels.get("sharpen", amount=2.0), np.ones((3, 3), dtype=bool), mode="wrap")
    assert got[1, 1] == np.iinfo(np.int32).min and got[0, 1] == np.iinfo(np.int32).max


@pytest.mark.parametrize(
    "kernel",
    [
        kernels.get("laplacian"),
        kernels.get("sobel_x"),
        kernels.get("sobel_y"),
        kernels.from_matrix([[1.0, -1.0, 0.0]]),
        kernels.from_matrix([[-1.0]]),
        kernels.from_matrix(np.zeros((3, 3))),
    ],
    ids=lambda k: k.name if k.name != "custom" else str(k.weights.tolist()),
)
def test_zero_sum_kernel_with_nodata_raises_unless_not_normalized(kernel):
    rng = np.random.default_rng(4)
    a = rng.integers(0, 100, size=(8, 9)).astype(np.int16)
    a[3, 4] = -1
    mask = np.ones((8, 9), dtype=bool)
    with pytest.raises(KernelError):
        masked_convolve(a, kernel, mask, nodata=-1)
    f = a.astype(np.float32)
    f[3, 4] = np.nan
    with pytest.raises(KernelError):
        masked_convolve(f, kernel, mask)
    for arr, nodata in ((a, -1), (f, None)):
        got = masked_convolve(arr, kernel, mask, nodata=nodata, normalize=False)
        expected, computed = reference(arr, kernel, mask, nodata=nodata, normalize=False)
        assert_same(got, expected, computed)
    # Without nodata in the array the kernel applies as usual.
    got = masked_convolve(a, kernel, mask, nodata=-7)
    expected, computed = reference(a, kernel, mask, nodata=-7)
    assert_same(got, expected, computed)


def test_zero_sum_kernel_with_nodata_and_empty_mask():
    """Refused whatever the mask (as the engine refuses a declared nodata before reading a window):
    the rule depends on the array only, never on which pixels happen to be selected."""
    a = np.array([[217, 163, 130], [69, 78, 10], [4, 4, 44]], dtype=np.uint8)
    with pytest.raises(KernelError, match="normalize"):
        masked_convolve(a, kernels.get("laplacian"), np.zeros((3, 3), dtype=bool), nodata=4)
    # Nodata in one band only, the mask selecting only that band's nodata pixels: refused all the same.
    stack = np.stack([a, np.full((3, 3), 9, dtype=np.uint8)])
    with pytest.raises(KernelError, match="normalize"):
        masked_convolve(stack, kernels.get("laplacian"), a == 4, nodata=4)
    # Nodata declared but absent: applied as usual.
    got = masked_convolve(stack[1:], kernels.get("laplacian"), a == 4, nodata=4)
    expected, computed = reference(stack[1:], kernels.get("laplacian"), a == 4, nodata=4)
    assert_same(got, expected, computed)
    assert got[0][a == 4].tolist() == [0, 0]  # the laplacian of a constant


def test_constant_border_that_is_nodata_does_not_count():
    a = np.arange(1.0, 21.0).reshape(4, 5)
    mask = np.ones((4, 5), dtype=bool)
    for cval, nodata in ((-5.0, -5.0), (np.nan, None)):
        got = masked_convolve(a, kernels.get("box"), mask, mode="constant", cval=cval, nodata=nodata)
        assert got[0, 0] == pytest.approx((1 + 2 + 6 + 7) / 4, rel=1e-15)  # the corner sees 4 real pixels
        expected, computed = reference(a, kernels.get("box"), mask, mode="constant", cval=cval, nodata=nodata)
        assert_same(got, expected, computed)
    got = masked_convolve(a, kernels.get("box"), mask, mode="constant", cval=0.0, nodata=-5.0)
    assert got[0, 0] == pytest.approx((1 + 2 + 6 + 7) / 9, rel=1e-15)  # a valid border counts


def test_support_limits_the_neighbours():
    a = np.arange(25.0).reshape(5, 5)
    support = np.zeros((5, 5), dtype=bool)
    support[:, :3] = True
    mask = np.zeros((5, 5), dtype=bool)
    mask[2, 2] = mask[2, 4] = True
    got = masked_convolve(a, kernels.get("box"), mask, support=support, mode="leave")
    assert got[2, 2] == pytest.approx((6 + 7 + 11 + 12 + 16 + 17) / 6, rel=1e-15)
    assert got[2, 4] == a[2, 4]  # leave mode: footprint leaves the image
    got = masked_convolve(a, kernels.get("box"), mask, support=support, mode="nearest")
    assert got[2, 4] == a[2, 4]  # no neighbour in the support: unchanged


@pytest.mark.parametrize("mode", MODES)
def test_masks_empty_and_full(mode):
    a = _values(np.random.default_rng(9), np.int32, (2, 11, 12), "full")
    k = kernels.get("gaussian", sigma=0.8)
    empty = masked_convolve(a, k, np.zeros((11, 12), dtype=bool), mode=mode)
    assert np.array_equal(empty, a) and not np.shares_memory(empty, a)
    full = masked_convolve(a, k, np.ones((11, 12), dtype=bool), mode=mode)
    expected, computed = reference(a, k, np.ones((11, 12), dtype=bool), mode=mode)
    assert_same(full, expected, computed)


def test_raw_matrix_equals_kernel():
    a = _values(np.random.default_rng(10), np.float32, (9, 10), "full")
    mask = np.random.default_rng(11).random((9, 10)) < 0.5
    matrix = [[0.0, -1.0, 0.5], [2.0, 0.0, 1.0], [0.0, 0.25, 0.0]]
    by_kernel = masked_convolve(a, kernels.from_matrix(matrix), mask)
    for raw in (matrix, np.array(matrix), np.array(matrix, dtype=np.float32)):
        assert np.array_equal(_bits(masked_convolve(a, raw, mask)), _bits(by_kernel))


def test_non_contiguous_inputs():
    rng = np.random.default_rng(12)
    base = _values(rng, np.uint16, (3, 24, 30), "full")
    mask_base = rng.random((30, 30)) < 0.6
    views = [base[:, ::2, ::3], np.asfortranarray(base[1]), base[1].T]
    for view in views:
        mask = np.ascontiguousarray(mask_base[: view.shape[-2], : view.shape[-1]])
        for k in (kernels.get("box"), kernels.get("median"), kernels.get("emboss")):
            got = masked_convolve(view, k, mask, nodata=int(view.flat[0]))
            contiguous = masked_convolve(np.ascontiguousarray(view), k, mask, nodata=int(view.flat[0]))
            assert np.array_equal(got, contiguous)
    got = masked_convolve(base[0], kernels.get("box"), mask_base[:30, :24].T)  # a transposed mask view
    assert np.array_equal(
        got, masked_convolve(base[0], kernels.get("box"), np.ascontiguousarray(mask_base[:30, :24].T))
    )


# --- errors -----------------------------------------------------------------------------------------


def test_kernel_larger_than_the_image():
    mask = np.ones((4, 6), dtype=bool)
    for k in (
        kernels.get("box", size=5),
        kernels.from_matrix(np.ones((1, 7))),
        kernels.get("median", size=5),
    ):
        with pytest.raises(KernelError):
            masked_convolve(np.zeros((4, 6), dtype=np.uint8), k, mask)
        with pytest.raises(KernelError):
            masked_convolve(np.zeros((2, 4, 6), dtype=np.float32), k, mask)


@pytest.mark.parametrize("shape", [(4, 5), (5, 4, 1), (1, 5, 4), (5,), (6, 4)])
def test_mask_shape_mismatch(shape):
    with pytest.raises(InputError, match="shape"):
        masked_convolve(np.zeros((5, 4), dtype=np.uint8), kernels.get("box"), np.ones(shape, dtype=bool))
    with pytest.raises(InputError):
        masked_convolve(np.zeros((2, 5, 4)), kernels.get("box"), np.ones(shape, dtype=bool))


def test_support_shape_mismatch():
    with pytest.raises(InputError):
        masked_convolve(
            np.zeros((5, 4)),
            kernels.get("box"),
            np.ones((5, 4), dtype=bool),
            support=np.ones((4, 5), dtype=bool),
        )


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128, np.bool_])
def test_unsupported_dtype(dtype):
    with pytest.raises(InputError, match=np.dtype(dtype).name):
        masked_convolve(np.zeros((5, 5), dtype=dtype), kernels.get("box"), np.ones((5, 5), dtype=bool))


@pytest.mark.parametrize("shape", [(5,), (1, 2, 5, 5)])
def test_wrong_array_dimensions(shape):
    with pytest.raises(InputError):
        masked_convolve(np.zeros(shape), kernels.get("box", size=1), np.ones(shape[-2:], dtype=bool))


@pytest.mark.parametrize("mode", ["symmetric", "grid-wrap", "edge", "", "Reflect"])
def test_bad_mode(mode):
    with pytest.raises(ConfigError):
        masked_convolve(np.zeros((5, 5)), kernels.get("box"), np.ones((5, 5), dtype=bool), mode=mode)


@pytest.mark.parametrize("op", ["conv", "", "Convolve", "correlation"])
def test_bad_op(op):
    with pytest.raises(ConfigError):
        masked_convolve(np.zeros((5, 5)), kernels.get("box"), np.ones((5, 5), dtype=bool), op=op)


def test_errors_share_the_root():
    for error in (KernelError, InputError, ConfigError):
        assert issubclass(error, GeomaskError) and issubclass(error, ValueError)


@pytest.mark.parametrize("matrix", [[[1.0, 1.0]], [[np.nan]], [1.0, 2.0, 3.0], []])
def test_bad_raw_matrix(matrix):
    with pytest.raises(KernelError):
        masked_convolve(np.zeros((5, 5)), matrix, np.ones((5, 5), dtype=bool))


# --- the seed's three approaches --------------------------------------------------------------------


def seed_loop(image: np.ndarray, weights: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(a) Where the mask is set at the kernel centre, sum flipped kernel x neighbourhood; zero padding."""
    kr, kc = weights.shape
    hr, hc = kr // 2, kc // 2
    padded = np.pad(image.astype(np.float64), ((hr, hr), (hc, hc)))
    flipped = weights[::-1, ::-1]
    out = image.astype(np.float64)
    for y in range(image.shape[0]):
        for x in range(image.shape[1]):
            if mask[y, x]:
                acc = 0.0
                for i in range(kr):
                    for j in range(kc):
                        acc += flipped[i, j] * padded[y + i, x + j]
                out[y, x] = acc
    return out


def seed_signal(image: np.ndarray, weights: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(b) scipy.signal.convolve2d, same size, zero fill, then boolean assignment."""
    out = image.astype(np.float64)
    conv = scipy.signal.convolve2d(image.astype(np.float64), weights, mode="same", boundary="fill")
    out[mask] = conv[mask]
    return out


def seed_ndimage(image: np.ndarray, weights: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(c) scipy.ndimage.convolve (reflect) then boolean assignment."""
    out = image.copy()
    out[mask] = ndi.convolve(image, weights)[mask]
    return out


@st.composite
def seed_cases(draw, max_side: int = 5, max_image: int = 12):
    kernel = draw(kernel_strategy(max_side).filter(lambda k: k.kind == "linear"))
    kr, kc = kernel.shape
    shape = (draw(st.integers(kr, max_image)), draw(st.integers(kc, max_image)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    image = rng.normal(0.0, 100.0, size=shape)
    mask = rng.random(shape) < draw(st.floats(0.0, 1.0))
    return image, kernel, mask


def _tolerance(image: np.ndarray, kernel: Kernel) -> dict[str, float]:
    scale = float(np.abs(image).max(initial=1.0) * np.abs(kernel.weights).sum())
    return dict(rtol=1e-12, atol=1e-13 * scale)


@settings(max_examples=60, deadline=None)
@given(seed_cases())
def test_seed_a_python_loop(args):
    image, kernel, mask = args
    got = masked_convolve(image, kernel, mask, mode="constant", cval=0.0, op="convolve")
    np.testing.assert_allclose(got, seed_loop(image, kernel.weights, mask), **_tolerance(image, kernel))
    assert np.array_equal(got[~mask], image[~mask])


def test_seed_a_python_loop_exact_on_integers():
    rng = np.random.default_rng(13)
    image = rng.integers(0, 256, size=(9, 11)).astype(np.uint8)
    weights = rng.integers(-3, 4, size=(5, 3)).astype(np.float64)
    mask = rng.random(image.shape) < 0.5
    got = masked_convolve(image.astype(np.float64), weights, mask, mode="constant", cval=0, op="convolve")
    assert np.array_equal(got, seed_loop(image, weights, mask))  # small integer sums are exact in any order
    clipped = masked_convolve(image, weights, mask, mode="constant", cval=0, op="convolve")
    assert np.array_equal(clipped, np.clip(seed_loop(image, weights, mask), 0, 255).astype(np.uint8))


@settings(max_examples=60, deadline=None)
@given(seed_cases(max_side=9, max_image=30))
def test_seed_b_signal_convolve2d(args):
    image, kernel, mask = args
    got = masked_convolve(image, kernel, mask, mode="constant", op="convolve")
    # scipy.signal sums in another order: a tight tolerance, not equality.
    np.testing.assert_allclose(got, seed_signal(image, kernel.weights, mask), **_tolerance(image, kernel))
    assert np.array_equal(got[~mask], image[~mask])


@settings(max_examples=60, deadline=None)
@given(seed_cases(max_side=9, max_image=30))
def test_seed_c_ndimage_convolve(args):
    image, kernel, mask = args
    got = masked_convolve(image, kernel, mask)  # defaults: mode="reflect", op="convolve"
    expected = seed_ndimage(image, kernel.weights, mask)
    if kernel.separable is None:
        assert np.array_equal(_bits(got), _bits(expected))  # the same scipy sum: exact
    else:
        # Separable kernels run as two 1-D passes, which round differently from one 2-D sum.
        np.testing.assert_allclose(got, expected, **_tolerance(image, kernel))


def test_kernel_cache_is_stamped_by_every_module_of_the_package(tmp_path):
    # numba's cache=True checks only the cached function's own file: after an edit of rows.py alone,
    # linear2d.py's cached kernel (which has the old row machinery compiled in) would be loaded.
    # The kernels' cache stamp covers every module of geomask._nb instead.
    import shutil

    from geomask._nb import jit
    from geomask._nb.linear2d import linear2d
    from geomask._nb.separable import separable

    for kernel in (linear2d, separable):
        assert kernel._cache._impl.locator.get_source_stamp() == jit.package_stamp()
    copy = tmp_path / "_nb"
    shutil.copytree(Path(jit.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert jit.folder_stamp(str(copy)) == jit.package_stamp()
    with open(copy / "rows.py", "a") as f:
        f.write("# edited\n")
    assert jit.folder_stamp(str(copy)) != jit.package_stamp()
