"""Tests of geomask.kernels: the registry, the weights, validation, halo and flipping.

The gaussian weights are checked against scipy.ndimage's own 1-D gaussian, bit for bit, because the
convolution oracle tests rely on ``gaussian`` meaning exactly what ``scipy.ndimage.gaussian_filter1d``
means.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given, settings
from hypothesis import strategies as st

from geomask import kernels
from geomask.errors import ConfigError, GeomaskError, KernelError
from geomask.kernels import KERNELS, Kernel, can_sum_to_zero, get, zero_sum_problem

SEPARABLE = ("box", "gaussian", "sobel_x", "sobel_y")
RANK = ("median", "minimum", "maximum")
ZERO_SUM = ("laplacian", "sobel_x", "sobel_y")


def _scipy_gaussian_1d(sigma: float, radius: int) -> np.ndarray:
    """scipy's 1-D gaussian weights: the private helper if it exists, else the response to an impulse."""
    helper = getattr(getattr(ndi, "_filters", None), "_gaussian_kernel1d", None)
    if helper is not None:
        # scipy correlates with the reversed helper output; the gaussian is symmetric either way.
        return np.asarray(helper(sigma, 0, radius), dtype=np.float64)[::-1]
    impulse = np.zeros(2 * radius + 1)
    impulse[radius] = 1.0
    return ndi.gaussian_filter1d(impulse, sigma, radius=radius, mode="constant")


# --- the registry -----------------------------------------------------------------------------------


def test_names_sorted_and_complete():
    assert kernels.names() == sorted(kernels.KERNELS)
    assert set(kernels.names()) == {
        "box", "gaussian", "disk", "sharpen", "laplacian", "sobel_x", "sobel_y", "emboss",
        "median", "minimum", "maximum",
    }  # fmt: skip


@pytest.mark.parametrize("name", kernels.names())
def test_every_registry_kernel_builds_with_defaults(name):
    k = kernels.get(name)
    assert isinstance(k, Kernel)
    assert k.name == name
    rows, cols = k.shape
    assert rows % 2 == 1 and cols % 2 == 1
    assert k.weights.dtype == np.float64
    assert not k.weights.flags.writeable
    assert np.all(np.isfinite(k.weights))
    assert k.kind == (name if name in RANK else "linear")
    assert (k.separable is not None) == (name in SEPARABLE)
    assert name in k.describe()
    assert f"{rows}x{cols}" in k.describe()
    if name in ZERO_SUM:
        assert k.weight_sum == 0.0
    elif name in RANK:
        assert np.array_equal(k.weights, np.ones((3, 3)))
        assert k.weight_sum == 9.0
    elif name == "emboss":
        assert k.weight_sum == 1.0
    else:
        assert k.weight_sum == pytest.approx(1.0, abs=1e-15)


def test_default_weights():
    assert np.array_equal(kernels.get("box").weights, np.full((3, 3), 1 / 3) * (1 / 3))
    assert kernels.get("gaussian").shape == (7, 7)
    assert kernels.get("gaussian").params == {"sigma": 1.0, "radius": 3}
    plus = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]]) / 5
    assert np.array_equal(kernels.get("disk").weights, plus)
    assert np.array_equal(kernels.get("sharpen").weights, [[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
    assert np.array_equal(
        kernels.get("sharpen", amount=0.5).weights, [[0, -0.5, 0], [-0.5, 3, -0.5], [0, -0.5, 0]]
    )
    assert np.array_equal(kernels.get("laplacian").weights, [[0, 1, 0], [1, -4, 1], [0, 1, 0]])
    assert np.array_equal(kernels.get("sobel_x").weights, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    assert np.array_equal(kernels.get("sobel_y").weights, [[-1, -2, -1], [0, 0, 0], [1, 2, 1]])
    assert np.array_equal(kernels.get("emboss").weights, [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])


def test_sobel_matches_scipy_sobel_orientation():
    # scipy.ndimage.sobel(axis=1) differentiates along columns (x), axis=0 along rows (y); both correlate.
    rng = np.random.default_rng(3)
    image = rng.normal(size=(9, 11))
    for name, axis in (("sobel_x", 1), ("sobel_y", 0)):
        k = kernels.get(name)
        np.testing.assert_allclose(
            ndi.correlate(image, k.weights, mode="nearest"),
            ndi.sobel(image, axis=axis, mode="nearest"),
            atol=1e-12,
        )


@pytest.mark.parametrize("size", [1, 3, 5, 9, 31])
def test_disk_and_rank_sizes(size):
    for name in RANK:
        k = kernels.get(name, size=size)
        assert k.shape == (size, size)
        assert k.params == {"size": size}
    r = size // 2
    disk = kernels.get("disk", radius=r)
    assert disk.shape == (2 * r + 1, 2 * r + 1)
    assert disk.weight_sum == pytest.approx(1.0)
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    assert np.array_equal(disk.weights > 0, x * x + y * y <= r * r)


def test_whole_float_sizes_are_accepted():
    assert kernels.get("box", size=5.0).shape == (5, 5)
    assert kernels.get("median", size=np.int64(3)).shape == (3, 3)
    assert kernels.get("gaussian", sigma=1, radius=2.0).shape == (5, 5)


# --- gaussian against scipy -------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(sigma=st.floats(0.05, 8.0, allow_nan=False, allow_infinity=False))
def test_gaussian_weights_equal_scipy(sigma):
    k = kernels.get("gaussian", sigma=sigma)
    radius = math.ceil(3 * sigma)
    assert k.params["radius"] == radius
    assert k.shape == (2 * radius + 1, 2 * radius + 1)
    column, row = k.separable
    expected = _scipy_gaussian_1d(sigma, radius)
    assert np.array_equal(column, expected)
    assert np.array_equal(row, expected)
    assert np.array_equal(k.weights, np.outer(expected, expected))


@pytest.mark.parametrize(("sigma", "radius"), [(1.0, 0), (1.0, 1), (0.5, 4), (2.5, 3), (3.0, 15)])
def test_gaussian_explicit_radius(sigma, radius):
    k = kernels.get("gaussian", sigma=sigma, radius=radius)
    assert k.params == {"sigma": sigma, "radius": radius}
    assert k.halo == (radius, radius)
    assert np.array_equal(k.separable[1], _scipy_gaussian_1d(sigma, radius))


@pytest.mark.parametrize("sigma", [0.6, 1.0, 1.7])
@pytest.mark.parametrize("mode", ["reflect", "mirror", "nearest", "wrap", "constant"])
def test_gaussian_rows_reproduce_gaussian_filter1d(sigma, mode):
    # One 1-D pass with the kernel's factors is exactly scipy's gaussian_filter1d along that axis.
    image = np.random.default_rng(5).normal(size=(13, 17))
    k = kernels.get("gaussian", sigma=sigma)
    column, row = k.separable
    radius = k.params["radius"]
    got_x = ndi.correlate1d(image, row, axis=-1, mode=mode, cval=0.5)
    got_y = ndi.correlate1d(image, column, axis=-2, mode=mode, cval=0.5)
    assert np.array_equal(
        got_x, ndi.gaussian_filter1d(image, sigma, axis=-1, mode=mode, cval=0.5, radius=radius)
    )
    assert np.array_equal(
        got_y, ndi.gaussian_filter1d(image, sigma, axis=-2, mode=mode, cval=0.5, radius=radius)
    )


# --- separable factors ------------------------------------------------------------------------------


def _separable_kernels():
    yield kernels.get("sobel_x")
    yield kernels.get("sobel_y")
    for size in (1, 3, 5, 7, 9, 31):
        yield kernels.get("box", size=size)
    for sigma, radius in ((0.3, None), (1.0, None), (1.3, None), (2.0, 2), (5.0, 15), (0.8, 0)):
        yield kernels.get("gaussian", sigma=sigma, radius=radius)


@pytest.mark.parametrize("kernel", list(_separable_kernels()), ids=lambda k: k.describe())
def test_separable_weights_are_the_outer_product(kernel):
    column, row = kernel.separable
    assert column.ndim == 1 and row.ndim == 1
    assert column.dtype == np.float64 and row.dtype == np.float64
    assert (column.size, row.size) == kernel.shape
    assert np.array_equal(kernel.weights, np.outer(column, row))


@pytest.mark.parametrize("name", ["disk", "sharpen", "laplacian", "emboss", *RANK])
def test_non_separable_kernels_have_no_factors(name):
    assert kernels.get(name).separable is None
    assert kernels.from_matrix([[1, 2, 1]]).separable is None


# --- custom matrices --------------------------------------------------------------------------------


@pytest.mark.parametrize("matrix", [[[1.0]], [[1, 2, 3]], [[1], [2], [3]], np.arange(15.0).reshape(3, 5)])
def test_non_square_odd_matrices_are_allowed(matrix):
    k = kernels.from_matrix(matrix)
    assert k.name == "custom"
    assert k.kind == "linear"
    assert np.array_equal(k.weights, np.asarray(matrix, dtype=np.float64))
    assert k.halo == (k.shape[0] // 2, k.shape[1] // 2)


def test_custom_via_get_and_as_kernel():
    matrix = [[0, -1, 0], [2, 0, 1], [0, 3, 0]]
    for k in (
        kernels.get("custom", matrix=matrix),
        kernels.get("matrix", matrix=matrix),
        kernels.as_kernel(matrix),
        kernels.as_kernel(np.array(matrix)),
    ):
        assert np.array_equal(k.weights, matrix)
        assert k.weights.dtype == np.float64
    box = kernels.get("box")
    assert kernels.as_kernel(box) is box
    assert np.array_equal(kernels.as_kernel("box").weights, box.weights)


def test_custom_matrix_is_copied_and_read_only():
    matrix = np.ones((3, 3))
    k = kernels.from_matrix(matrix)
    matrix[1, 1] = 7.0
    assert k.weights[1, 1] == 1.0
    with pytest.raises(ValueError):
        k.weights[0, 0] = 2.0


def test_custom_integer_and_zero_weights_survive():
    k = kernels.from_matrix(np.array([[0, 0, 0], [0, 0, 0], [0, 0, 0]], dtype=np.int16))
    assert k.weights.dtype == np.float64
    assert k.weight_sum == 0.0


# --- validation -------------------------------------------------------------------------------------


def _raises(match: str, func, *args, **kwargs) -> KernelError:
    with pytest.raises(KernelError, match=match) as info:
        func(*args, **kwargs)
    return info.value


def test_kernel_error_is_a_config_and_value_error():
    assert issubclass(KernelError, ConfigError)
    assert issubclass(KernelError, ValueError)
    assert issubclass(KernelError, GeomaskError)


@pytest.mark.parametrize(
    "matrix",
    [[[1, 1]], [[1], [1]], [[1, 1], [1, 1]], np.ones((3, 4)), np.ones((4, 3))],
    ids=["1x2", "2x1", "2x2", "3x4", "4x3"],
)
def test_even_matrix_sides_rejected(matrix):
    rows, cols = np.shape(matrix)
    error = _raises("odd", kernels.from_matrix, matrix)
    assert f"{rows}x{cols}" in str(error)


@pytest.mark.parametrize("name", ["box", *RANK])
@pytest.mark.parametrize("size", [0, 2, 4, -3])
def test_even_or_non_positive_sizes_rejected(name, size):
    error = _raises("odd", kernels.get, name, size=size)
    assert str(size) in str(error) and name in str(error)


@pytest.mark.parametrize("size", [2.5, "3", True, None])
def test_non_integer_sizes_rejected(size):
    _raises("whole number", kernels.get, "box", size=size)


@pytest.mark.parametrize("matrix", [[], [[]], np.zeros((0, 3)), np.zeros((3, 0))])
def test_empty_matrix_rejected(matrix):
    _raises("empty", kernels.from_matrix, matrix)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_rejected(bad):
    _raises("NaN or infinite", kernels.from_matrix, [[1, 1, 1], [1, bad, 1], [1, 1, 1]])


@pytest.mark.parametrize("matrix", [[[1e308, 1e308, 1e308]], [[-1e308], [1e308], [-1e308]]])
def test_weights_whose_sum_overflows_rejected(matrix):
    """Finite weights whose absolute sum is inf gave inf/NaN pixels silently (exit 0)."""
    _raises("overflows", kernels.from_matrix, matrix)


@pytest.mark.parametrize("matrix", [[1, 2, 3], [5.0], np.ones((3, 3, 3))])
def test_wrong_dimensions_rejected(matrix):
    error = _raises("2-D", kernels.from_matrix, matrix)
    assert f"{np.ndim(matrix)} dimension" in str(error)


def test_ragged_or_non_numeric_matrix_rejected():
    _raises("rectangular", kernels.from_matrix, [[1, 2, 3], [4, 5]])
    _raises("rectangular", kernels.from_matrix, [["a", "b", "c"]])


@pytest.mark.parametrize("sigma", [0, 0.0, -1.0, np.nan, np.inf, "wide", None])
def test_bad_sigma_rejected(sigma):
    error = _raises("sigma", kernels.get, "gaussian", sigma=sigma)
    assert "gaussian" in str(error)


@pytest.mark.parametrize("radius", [-1, 1.5, "2", True])
@pytest.mark.parametrize("name", ["gaussian", "disk"])
def test_bad_radius_rejected(name, radius):
    _raises("radius", kernels.get, name, radius=radius)


@pytest.mark.parametrize("amount", [np.nan, np.inf, "much"])
def test_bad_sharpen_amount_rejected(amount):
    _raises("amount", kernels.get, "sharpen", amount=amount)


# --- sizes bounded, checked from the parameters -------------------------------------------------

_EXTREMES = [
    ("gaussian", {"sigma": 3000}, "sigma 3000 gives a radius of ceil(3 * sigma), a side of 18001 pixels"),
    ("gaussian", {"sigma": 333.4}, "a side of 2003 pixels, over the limit of 2001"),
    ("gaussian", {"sigma": 1e300}, "use sigma <= 333.333"),
    ("gaussian", {"sigma": 1.7976931348623157e308}, "a side of inf pixels"),
    ("gaussian", {"sigma": 10**400}, "finite number > 0, got about 10^400"),
    ("gaussian", {"sigma": 1e-300}, "at least 0.01"),
    ("gaussian", {"sigma": 5e-324}, "at least 0.01"),
    ("gaussian", {"sigma": -np.inf}, "finite number > 0"),
    ("gaussian", {"sigma": 1, "radius": 10**30}, "radius about 10^30"),
    ("gaussian", {"sigma": 1, "radius": 1e300}, "from 0 to 2001, got 1e+300"),
    ("gaussian", {"sigma": 1, "radius": 1001}, "give radius <= 1000"),
    ("disk", {"radius": 2**63}, "give radius <= 1000"),
    ("box", {"size": 10**30 + 1}, "size about 10^30"),
    ("box", {"size": 2003}, "give size <= 2001"),
    ("box", {"size": 1e300}, "from 0 to 2001"),
    ("box", {"size": -(10**30)}, "got -about 10^30"),
    ("median", {"size": 2**64 + 1}, "give size <= 2001"),
    ("maximum", {"size": np.int64(2**62 + 1)}, "give size <= 2001"),
    ("sharpen", {"amount": 1e308}, "finite number below 1e307"),
    ("sharpen", {"amount": 10**400}, "finite number below 1e307"),
]


@pytest.mark.parametrize(("name", "params", "message"), _EXTREMES)
def test_numeric_extremes_are_one_line_kernel_errors(name, params, message):
    for check in (kernels.get, kernels.shape):
        error = _raises(re.escape(message), check, name, **params)
        assert "\n" not in str(error) and len(str(error)) < 250


def test_oversized_kernels_are_refused_before_allocating():
    import time
    import tracemalloc

    tracemalloc.start()
    start = time.perf_counter()
    try:
        for name, params, _ in _EXTREMES:
            with pytest.raises(KernelError):
                kernels.get(name, **params)
        assert kernels.shape("gaussian", sigma=333.3) == (2001, 2001)
        assert kernels.shape("box", size=2001) == (2001, 2001)
        assert kernels.shape("disk", radius=1000) == (2001, 2001)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # shape() of a 2001x2001 kernel builds nothing (its weights are 32 MB)
    assert time.perf_counter() - start < 1


def test_the_largest_kernels_build():
    assert kernels.get("gaussian", sigma=333.3).shape == (2001, 2001)
    assert kernels.get("median", size=2001).halo == (1000, 1000)
    _raises("the matrix is 1x2003", kernels.from_matrix, np.ones((1, 2003)))


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(kernels.names()),
    value=st.one_of(
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(0, 60),
        st.floats(0, 60),
    ),
    with_radius=st.booleans(),
)
def test_shape_agrees_with_get_and_nothing_else_escapes(name, value, with_radius):
    # Fuzzed parameters: either both refuse with a KernelError (never another exception) or both
    # give the same shape.
    spec = kernels.KERNELS[name]
    params = {}
    if spec.params:
        params[next(iter(spec.params))] = value
        if with_radius and "radius" in spec.params and "radius" not in params:
            params["radius"] = abs(int(value)) % 50 if isinstance(value, int) else 2
    try:
        expected = kernels.get(name, **params).shape
    except KernelError:
        with pytest.raises(KernelError):
            kernels.shape(name, **params)
    else:
        assert kernels.shape(name, **params) == expected


@pytest.mark.parametrize(
    ("name", "suggestion"), [("gausian", "gaussian"), ("sobelx", "sobel_x"), ("medain", "median")]
)
def test_unknown_name_suggests_the_closest(name, suggestion):
    error = _raises("unknown kernel", kernels.get, name)
    message = str(error)
    assert repr(name) in message
    assert f"Did you mean {suggestion!r}?" in message
    for known in kernels.names():
        assert known in message  # lists every choice


def test_unknown_name_without_close_match_lists_choices():
    message = str(_raises("unknown kernel", kernels.get, "zzzzzz"))
    assert "Did you mean" not in message
    assert "box" in message and "custom" in message


def test_unknown_parameter_rejected_with_the_allowed_ones():
    message = str(_raises("no parameter", kernels.get, "box", sigma=1.0))
    assert "'sigma'" in message and "size" in message
    message = str(_raises("no parameter", kernels.get, "laplacian", size=3))
    assert "none" in message
    _raises("matrix", kernels.get, "custom")
    _raises("matrix", kernels.get, "custom", matrix=[[1]], size=3)


def test_direct_kernel_construction_validates():
    with pytest.raises(KernelError, match="odd"):
        Kernel("x", np.ones((2, 3)))
    with pytest.raises(KernelError, match="2-D"):
        Kernel("x", np.ones(3))


# --- halo, fits, flipped ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "halo"), [((1, 1), (0, 0)), ((3, 3), (1, 1)), ((1, 5), (0, 2)), ((9, 3), (4, 1))]
)
def test_halo(shape, halo):
    assert kernels.from_matrix(np.ones(shape)).halo == halo


def test_halo_of_registry_kernels():
    assert kernels.get("gaussian", sigma=2.0).halo == (6, 6)
    assert kernels.get("box", size=31).halo == (15, 15)
    assert kernels.get("median", size=5).halo == (2, 2)
    assert kernels.get("disk", radius=0).halo == (0, 0)


def test_check_fits():
    k = kernels.from_matrix(np.ones((5, 3)))
    k.check_fits(5, 3)
    k.check_fits(100, 100)
    for height, width in ((4, 3), (5, 2), (1, 1)):
        with pytest.raises(KernelError, match=f"{height}x{width}"):
            k.check_fits(height, width)


@pytest.mark.parametrize(
    "kernel",
    [
        kernels.from_matrix(np.arange(15.0).reshape(3, 5)),
        kernels.get("emboss"),
        kernels.get("sobel_x"),
        kernels.get("sobel_y"),
        kernels.get("gaussian", sigma=0.7),
        kernels.get("median", size=5),
    ],
    ids=lambda k: k.name,
)
def test_flipped(kernel):
    flipped = kernel.flipped()
    assert np.array_equal(flipped.weights, kernel.weights[::-1, ::-1])
    assert (flipped.name, flipped.kind, flipped.params) == (kernel.name, kernel.kind, kernel.params)
    assert not flipped.weights.flags.writeable
    assert np.array_equal(flipped.flipped().weights, kernel.weights)
    if kernel.separable is None:
        assert flipped.separable is None
    else:
        assert np.array_equal(flipped.separable[0], kernel.separable[0][::-1])
        assert np.array_equal(flipped.separable[1], kernel.separable[1][::-1])
        assert np.array_equal(flipped.weights, np.outer(*flipped.separable))
    # Convolution with a kernel is correlation with its flipped copy.
    image = np.random.default_rng(11).normal(size=(8, 9))
    assert np.array_equal(
        ndi.convolve(image, kernel.weights, mode="reflect"),
        ndi.correlate(image, flipped.weights, mode="reflect"),
    )
    # Flipping does not touch the original.
    assert not kernel.weights.flags.writeable


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_can_sum_to_zero_agrees_with_the_weights(name: str) -> None:
    """A kernel validate skips without building it (can_sum_to_zero False) is never refused by
    zero_sum_problem, whatever its parameters; the edge detectors are not skipped."""
    params = {"size": [1, 3, 9], "radius": [0, 1, 5], "sigma": [0.01, 0.5, 3.0], "amount": [0.5, 100.0]}
    options = [{}] + [{key: v} for key in KERNELS[name].params for v in params.get(key, [])]
    for option in options:
        kernel = get(name, **option)
        refusable = kernel.kind == "linear" and kernel.weight_sum <= 0
        assert can_sum_to_zero(name) or not refusable, (name, option)
        if not can_sum_to_zero(name):
            assert zero_sum_problem(kernel, True, nodata=True, masked=True, support=True) is None
    assert can_sum_to_zero("laplacian") and can_sum_to_zero("sobel_x") and can_sum_to_zero("custom")


def test_numpy_integers_and_floats_are_accepted_as_sizes() -> None:
    assert get("box", size=np.int64(5)).shape == (5, 5)
    assert get("disk", radius=np.float32(2.0)).shape == (5, 5)
    with pytest.raises(KernelError, match="whole number"):
        get("box", size=np.bool_(True))
