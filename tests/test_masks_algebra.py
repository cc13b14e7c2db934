"""Tests of geomask.masks.algebra: any/all/not and grow/shrink across window edges."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from _fixtures_masks import WINDOW_SIZES, full, pixel_by_pixel, tiled, window_of
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from rasterio.crs import CRS
from rasterio.windows import Window
from scipy import ndimage

from geomask.errors import ConfigError, MaskError, NoOverlapWarning
from geomask.grid import Grid
from geomask.masks import (
    AllSource,
    AnySource,
    ArraySource,
    BboxSource,
    GrowSource,
    MaskContext,
    MaskSource,
    NotSource,
    ShrinkSource,
)
from geomask.masks.algebra import disk

GRID = Grid(CRS.from_epsg(32618), Affine(30.0, 0.0, 300_000.0, 0.0, -30.0, 5_000_000.0), 50, 64)


def _blobs(seed: int, density: float = 0.02, radius: int = 3) -> NDArray[np.bool_]:
    """Random round-ish blobs, some touching the grid's border."""
    rng = np.random.default_rng(seed)
    seeds = rng.random(GRID.shape) < density
    return ndimage.binary_dilation(seeds, structure=disk(radius))


A, B, C = _blobs(1), _blobs(2, 0.01, 5), _blobs(3, 0.05, 1)


def _brute(mask: NDArray[np.bool_], radius: int, operation: str) -> NDArray[np.bool_]:
    """Dilation (outside False) or erosion (outside True) by a disk, by shifting: scipy-free oracle."""
    grow = operation == "grow"
    padded = np.pad(mask, radius, constant_values=not grow)
    out = np.zeros_like(mask) if grow else np.ones_like(mask)
    height, width = mask.shape
    for dy, dx in np.argwhere(disk(radius)) - radius:
        shifted = padded[radius + dy : radius + dy + height, radius + dx : radius + dx + width]
        out = out | shifted if grow else out & shifted
    return out


def _grow(mask: NDArray[np.bool_], radius: int) -> NDArray[np.bool_]:
    return ndimage.binary_dilation(mask, structure=disk(radius), border_value=0) if radius else mask


def _shrink(mask: NDArray[np.bool_], radius: int) -> NDArray[np.bool_]:
    return ndimage.binary_erosion(mask, structure=disk(radius), border_value=1) if radius else mask


def _bind(source: MaskSource):  # the bound classes differ per source
    return source.bind(MaskContext(GRID))


def _check_windows(source: MaskSource, expected: NDArray[np.bool_]) -> None:
    mask = _bind(source)
    np.testing.assert_array_equal(mask.render(full(GRID)), expected)
    for size in WINDOW_SIZES:
        np.testing.assert_array_equal(tiled(mask, GRID.shape, size, (3, 5)), expected)
    np.testing.assert_array_equal(pixel_by_pixel(mask, Window(0, 0, 15, 12)), expected[:12, :15])


# ---------------------------------------------------------------- oracles


def test_disk() -> None:
    assert disk(0).tolist() == [[True]]
    np.testing.assert_array_equal(disk(1), [[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    assert disk(2).sum() == 13 and disk(5).sum() == 81


def test_any_all_not() -> None:
    a, b, c = ArraySource(A), ArraySource(B), ArraySource(C)
    _check_windows(AnySource([a, b, c]), A | B | C)
    _check_windows(AllSource([a, NotSource(b)]), A & ~B)
    _check_windows(NotSource(AnySource([a, c])), ~(A | C))
    _check_windows(AllSource([AnySource([a, b]), NotSource(AllSource([b, c]))]), (A | B) & ~(B & C))


@pytest.mark.parametrize("radius", [0, 1, 2, 4, 9, 14])
def test_grow_and_shrink_equal_scipy_and_brute_force(radius: int) -> None:
    mask = A | B
    grown, shrunk = _grow(mask, radius), _shrink(mask, radius)
    np.testing.assert_array_equal(grown, _brute(mask, radius, "grow"))
    np.testing.assert_array_equal(shrunk, _brute(mask, radius, "shrink"))
    if radius:
        assert grown.sum() > mask.sum() > shrunk.sum()
    # radius 9 and 14 exceed most of WINDOW_SIZES: the halo spans several windows.
    _check_windows(GrowSource(ArraySource(mask), radius), grown)
    _check_windows(ShrinkSource(ArraySource(mask), radius), shrunk)


def test_shrink_is_the_dual_of_grow_and_keeps_the_scene_border() -> None:
    mask = A | C
    for radius in (1, 3, 7):
        shrunk = _bind(ShrinkSource(ArraySource(mask), radius)).render(full(GRID))
        dual = _bind(NotSource(GrowSource(NotSource(ArraySource(mask)), radius))).render(full(GRID))
        np.testing.assert_array_equal(shrunk, dual)
    everything = np.ones(GRID.shape, dtype=bool)
    assert _bind(ShrinkSource(ArraySource(everything), 5)).render(full(GRID)).all()
    assert not _bind(GrowSource(ArraySource(~everything), 5)).render(full(GRID)).any()


def test_nested_morphology_and_algebra() -> None:
    source = GrowSource(ShrinkSource(AnySource([ArraySource(A), NotSource(ArraySource(B))]), 2), 3)
    expected = _grow(_shrink(A | ~B, 2), 3)
    assert _bind(source).halo == 5
    _check_windows(source, expected)
    opened = AllSource([GrowSource(ArraySource(C), 4), ShrinkSource(ArraySource(A | C), 1)])
    _check_windows(opened, _grow(C, 4) & _shrink(A | C, 1))


def test_with_a_file_free_vector_source() -> None:
    corner = GRID.transform @ (10, 40)
    other = GRID.transform @ (40, 10)
    box = BboxSource((corner[0], corner[1], other[0], other[1]))
    inside = np.zeros(GRID.shape, dtype=bool)
    inside[10:40, 10:40] = True
    _check_windows(
        AllSource([GrowSource(box, 3), NotSource(ShrinkSource(box, 2))]),
        _grow(inside, 3) & ~_shrink(inside, 2),
    )


@settings(max_examples=15, deadline=None)
@given(
    grow=st.integers(0, 12),
    shrink=st.integers(0, 12),
    size=st.tuples(st.integers(1, 30), st.integers(1, 30)),
    phase=st.tuples(st.integers(0, 30), st.integers(0, 30)),
    window=st.tuples(st.integers(0, 49), st.integers(0, 63), st.integers(1, 50), st.integers(1, 64)),
)
def test_windowed_equals_whole_mask(
    grow: int,
    shrink: int,
    size: tuple[int, int],
    phase: tuple[int, int],
    window: tuple[int, int, int, int],
) -> None:
    source = ShrinkSource(GrowSource(AnySource([ArraySource(A), ArraySource(C)]), grow), shrink)
    expected = _shrink(_grow(A | C, grow), shrink)
    mask = _bind(source)
    np.testing.assert_array_equal(tiled(mask, GRID.shape, size, phase), expected)
    win = window_of(GRID, *window)
    r, c = int(win.row_off), int(win.col_off)
    np.testing.assert_array_equal(mask.render(win), expected[r : r + win.height, c : c + win.width])


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    density=st.sampled_from([0.0, 0.001, 0.01, 0.1, 0.5, 0.9, 0.99, 1.0]),
    shape=st.tuples(st.integers(1, 40), st.integers(1, 40)),
    radius=st.one_of(st.integers(0, 8), st.integers(9, 90)),
    window=st.tuples(st.integers(0, 39), st.integers(0, 39), st.integers(1, 12), st.integers(1, 12)),
)
@pytest.mark.slow
def test_grow_and_shrink_equal_scipy_on_random_masks(
    seed: int,
    density: float,
    shape: tuple[int, int],
    radius: int,
    window: tuple[int, int, int, int],
) -> None:
    # Random masks, radii up to several times the scene and windows much smaller than the radius: every
    # window equals scipy's whole-array dilation/erosion by the same disk (the distance transform is exact).
    mask = np.random.default_rng(seed).random(shape) < density
    grid = Grid(GRID.crs, GRID.transform, *shape)
    row, col = min(window[0], shape[0] - 1), min(window[1], shape[1] - 1)
    win = Window(col, row, min(window[3], shape[1] - col), min(window[2], shape[0] - row))
    for source, expected in (
        (GrowSource(ArraySource(mask), radius), _grow(mask, radius)),
        (ShrinkSource(ArraySource(mask), radius), _shrink(mask, radius)),
    ):
        bound = source.bind(MaskContext(grid))
        np.testing.assert_array_equal(bound.render(Window(0, 0, shape[1], shape[0])), expected)
        np.testing.assert_array_equal(
            bound.render(win), expected[row : row + int(win.height), col : col + int(win.width)]
        )


def test_disk_edge_is_exact_for_large_radii() -> None:
    # One selected pixel grown by r selects exactly disk(r): the rim pixels with dy² + dx² == r² (e.g. 3-4-5,
    # 60-80-100) are in, those one step further out are not.
    for radius in (5, 25, 100):
        size = 2 * radius + 3
        mask = np.zeros((size, size), dtype=bool)
        mask[radius + 1, radius + 1] = True
        grid = Grid(GRID.crs, GRID.transform, size, size)
        grown = GrowSource(ArraySource(mask), radius).bind(MaskContext(grid)).render(Window(0, 0, size, size))
        expected = np.zeros_like(mask)
        expected[1:-1, 1:-1] = disk(radius)
        np.testing.assert_array_equal(grown, expected)


_LARGE_RADIUS_SCRIPT = """
import resource, sys, time
import numpy as np
from affine import Affine
from rasterio.windows import Window
from geomask.grid import Grid
from geomask.masks import ArraySource, GrowSource, MaskContext, ShrinkSource

shape = (337, 300)
mask = np.zeros(shape, dtype=bool)
mask[150:160, 100:140] = True
mask[5, 290] = True
grid = Grid(None, Affine(30.0, 0.0, 0.0, 0.0, -30.0, 0.0), *shape)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
for source in (GrowSource(ArraySource(mask), 300), ShrinkSource(ArraySource(~mask), 300)):
    bound = source.bind(MaskContext(grid))
    whole = bound.render(Window(0, 0, shape[1], shape[0]))
    assert (bound.render(Window(250, 10, 50, 64)) == whole[10:74, 250:300]).all()
    for row in range(0, shape[0], 64):  # small windows, each with a 300-pixel halo
        bound.render(Window(0, row, 64, min(64, shape[0] - row)))
elapsed = time.perf_counter() - start
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(elapsed, grown * 1024)
"""


@pytest.mark.slow
def test_large_radii_run_in_memory_linear_in_the_window() -> None:
    # grow 100 took 10 GB on a 337x300 scene and >= 200 raised MemoryError (scipy's structuring-element
    # dilation keeps per-border offset tables of (2r+1)² entries each, allocated in C: measured as the
    # peak resident size of a fresh interpreter). Now a few MB and well under a second.
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", _LARGE_RADIUS_SCRIPT], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    elapsed, grown = map(float, done.stdout.split())
    assert grown < 100e6, f"peak resident size grew by {grown / 1e6:.0f} MB"
    assert elapsed < 5, f"{elapsed:.1f} s"


# ---------------------------------------------------------------- emptiness, errors, pickling


def test_empty_masks() -> None:
    far = GRID.transform @ (200, 200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoOverlapWarning)
        empty = BboxSource((far[0], far[1] - 10, far[0] + 10, far[1]))
        assert _bind(GrowSource(empty, 3)).is_empty and _bind(ShrinkSource(empty, 3)).is_empty
        assert _bind(AllSource([ArraySource(A), empty])).is_empty
        assert not _bind(AnySource([ArraySource(A), empty])).is_empty
        assert _bind(AnySource([empty, empty])).is_empty
        assert _bind(NotSource(empty)).render(full(GRID)).all()
        assert not _bind(AllSource([ArraySource(A), empty])).render(Window(0, 0, 5, 5)).any()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: AnySource([]), r"any: needs at least one"),
        (lambda: AllSource(ArraySource(A)), r"all: takes a list of mask sources, got a single array"),
        (lambda: AnySource(3), r"any: takes a list"),
        (lambda: AllSource([ArraySource(A), "b1 > 0"]), r"all: expects mask sources, got 'b1 > 0'"),
        (lambda: NotSource(None), r"not: expects mask sources"),
        (lambda: GrowSource(ArraySource(A), -1), r"grow: takes a whole number of pixels >= 0, got -1"),
        (lambda: ShrinkSource(ArraySource(A), 1.5), r"shrink: takes a whole number .* got 1\.5"),
        (lambda: GrowSource(ArraySource(A), True), r"grow: takes a whole number"),
    ],
)
def test_bad_arguments_are_config_errors(make, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make()


def test_windows_outside_the_grid_are_refused() -> None:
    for source in (AnySource([ArraySource(A)]), NotSource(ArraySource(A)), GrowSource(ArraySource(A), 2)):
        with pytest.raises(MaskError, match=r"50x64 grid"):
            _bind(source).render(Window(60, 0, 5, 5))


def test_describe_and_pickle() -> None:
    corner = GRID.transform @ (10, 40)
    box = BboxSource((corner[0], corner[1], corner[0] + 300, corner[1] + 300))
    source = GrowSource(AllSource([box, NotSource(ShrinkSource(box, 2))]), 3)
    assert source.describe() == (
        "grow(all(bbox(300300, 4.9988e+06, 300600, 4.9991e+06), "
        "not(shrink(bbox(300300, 4.9988e+06, 300600, 4.9991e+06), 2))), 3)"
    )
    assert pickle.loads(pickle.dumps(source)) == source
    mask = _bind(source)
    clone = pickle.loads(pickle.dumps(mask))
    np.testing.assert_array_equal(clone.render(full(GRID)), mask.render(full(GRID)))
    assert AnySource([box]) == AnySource((box,))
