"""Tests of geomask.masks.expression: whitelisted band expressions, evaluated per window."""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from _fixtures_masks import WINDOW_SIZES, full, pixel_by_pixel, tiled, window_of
from affine import Affine
from conftest import write_raster
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from rasterio.crs import CRS
from rasterio.windows import Window

from geomask.errors import ConfigError, InputError, MaskError
from geomask.grid import Grid
from geomask.masks import ExpressionSource, MaskContext
from geomask.masks.expression import BoundExpressionMask

GRID = Grid(CRS.from_epsg(32618), Affine(30.0, 0.0, 300_000.0, 0.0, -30.0, 5_000_000.0), 60, 70)
NODATA = 0

Bands = NDArray[np.float64]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, NDArray[np.uint16]]:
    """Four uint16 bands with nodata 0 sprinkled in each band, and equal b2/b3 pixels (zero divisors)."""
    rng = np.random.default_rng(0)
    data = rng.integers(1, 2000, size=(4, *GRID.shape)).astype(np.uint16)
    data[rng.random(data.shape) < 0.03] = NODATA
    equal = rng.random(GRID.shape) < 0.1
    data[2][equal] = data[1][equal]
    data[3, :4, :4] = data[2, :4, :4] = 0  # 0 / 0 in the NDVI, and nodata
    path = write_raster(
        tmp_path_factory.mktemp("expr") / "scene.tif", data, transform=GRID.transform, nodata=NODATA
    )
    return path, data


def _bind(source: ExpressionSource, path: Path, nodata: float | None = NODATA) -> BoundExpressionMask:
    return source.bind(MaskContext(GRID, str(path), nodata))


def _valid(data: NDArray[np.uint16], *bands: int) -> NDArray[np.bool_]:
    return np.all([data[band - 1] != NODATA for band in bands], axis=0)


def _finite(*arrays: Bands) -> NDArray[np.bool_]:
    return np.all([np.isfinite(array) for array in arrays], axis=0)


# Each case: the expression, the bands it uses, and the same condition in numpy on the whole scene
# (True where every intermediate value is finite and the condition holds).
CASES: list[tuple[str, tuple[int, ...], Callable[..., NDArray[np.bool_]]]] = [
    (
        "(b4 - b3) / (b4 + b3) > 0.4",
        (3, 4),
        lambda b: _finite((b[4] - b[3]) / (b[4] + b[3])) & ((b[4] - b[3]) / (b[4] + b[3]) > 0.4),
    ),
    (
        "(b1 > 100) & ~(b2 < 500) | (b3 <= 700)",
        (1, 2, 3),
        lambda b: (b[1] > 100) & ~(b[2] < 500) | (b[3] <= 700),
    ),
    ("sqrt(b1) - log(b2) >= 30", (1, 2), lambda b: np.sqrt(b[1]) - np.log(b[2]) >= 30),
    ("abs(b1 - b2) < 300", (1, 2), lambda b: np.abs(b[1] - b[2]) < 300),
    (
        "minimum(b1, b2) * 2 ** 0.5 > maximum(b3, b4) / 3",
        (1, 2, 3, 4),
        lambda b: np.minimum(b[1], b[2]) * 2**0.5 > np.maximum(b[3], b[4]) / 3,
    ),
    ("0 < b1 - 500 < 1000", (1,), lambda b: (b[1] - 500 > 0) & (b[1] - 500 < 1000)),
    ("b1 / (b2 - b3) > 1", (1, 2, 3), lambda b: (b[2] != b[3]) & (b[1] / (b[2] - b[3]) > 1)),
    ("~(b1 / (b2 - b3) > 1)", (1, 2, 3), lambda b: (b[2] != b[3]) & ~(b[1] / (b[2] - b[3]) > 1)),
    ("-b1 + +b2 != 5", (1, 2), lambda b: -b[1] + b[2] != 5),
    ("b2 == b3", (2, 3), lambda b: b[2] == b[3]),
    ("log(b1 - 1000) > 5", (1,), lambda b: (b[1] > 1000) & (np.log(b[1] - 1000) > 5)),
]


def _oracle(data: NDArray[np.uint16], bands: tuple[int, ...], condition: Callable) -> NDArray[np.bool_]:
    values = {k: data[k - 1].astype(np.float64) for k in range(1, data.shape[0] + 1)}
    with np.errstate(all="ignore"):
        return condition(values) & _valid(data, *bands)


@pytest.mark.slow
@pytest.mark.parametrize(("text", "bands", "condition"), CASES, ids=[case[0] for case in CASES])
def test_equals_numpy_on_the_whole_scene(
    scene: tuple[Path, NDArray[np.uint16]], text: str, bands: tuple[int, ...], condition: Callable
) -> None:
    path, data = scene
    expected = _oracle(data, bands, condition)
    assert 0 < expected.sum() < expected.size
    mask = _bind(ExpressionSource(text), path)
    assert mask.bands == bands
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # division by zero, log(0) ... warn nothing
        whole = mask.render(full(GRID))
    np.testing.assert_array_equal(whole, expected)
    for size in WINDOW_SIZES:
        np.testing.assert_array_equal(tiled(mask, GRID.shape, size, (2, 3)), expected)
    np.testing.assert_array_equal(pixel_by_pixel(mask, Window(0, 0, 12, 9)), expected[:9, :12])


@settings(max_examples=10, deadline=None)
@given(
    case=st.sampled_from(CASES),
    size=st.tuples(st.integers(2, 40), st.integers(2, 40)),
    phase=st.tuples(st.integers(0, 40), st.integers(0, 40)),
    window=st.tuples(st.integers(0, 59), st.integers(0, 69), st.integers(1, 60), st.integers(1, 70)),
)
@pytest.mark.slow
def test_windowed_equals_whole_scene(
    scene: tuple[Path, NDArray[np.uint16]],
    case: tuple[str, tuple[int, ...], Callable],
    size: tuple[int, int],
    phase: tuple[int, int],
    window: tuple[int, int, int, int],
) -> None:
    path, data = scene
    text, bands, condition = case
    expected = _oracle(data, bands, condition)
    mask = _bind(ExpressionSource(text), path)
    np.testing.assert_array_equal(tiled(mask, GRID.shape, size, phase), expected)
    win = window_of(GRID, *window)
    r, c = int(win.row_off), int(win.col_off)
    np.testing.assert_array_equal(mask.render(win), expected[r : r + win.height, c : c + win.width])


def test_nodata_only_in_referenced_bands(scene: tuple[Path, NDArray[np.uint16]]) -> None:
    path, data = scene
    whole = _bind(ExpressionSource("b1 >= 0"), path).render(full(GRID))
    np.testing.assert_array_equal(whole, data[0] != NODATA)  # nodata in b2..b4 does not matter
    # Without a nodata value, 0 is an ordinary value.
    assert _bind(ExpressionSource("b1 >= 0"), path, nodata=None).render(full(GRID)).all()


def test_float_scene_with_nan_and_nodata(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    data = rng.normal(size=(2, *GRID.shape)).astype(np.float32)
    data[0, :3] = np.nan
    data[1, -3:] = -9999.0
    path = write_raster(tmp_path / "float.tif", data, transform=GRID.transform, nodata=-9999.0)
    mask = _bind(ExpressionSource("b1 * b2 > -100"), path, nodata=-9999.0)
    expected = ~np.isnan(data[0]) & (data[1] != -9999.0)
    np.testing.assert_array_equal(mask.render(full(GRID)), expected)
    np.testing.assert_array_equal(tiled(mask, GRID.shape, (7, 9)), expected)


def test_constant_conditions(scene: tuple[Path, NDArray[np.uint16]]) -> None:
    path, _ = scene
    assert _bind(ExpressionSource("1 < 2"), path).render(Window(3, 4, 5, 6)).all()
    assert not _bind(ExpressionSource("1 / 0 > 0"), path).render(Window(3, 4, 5, 6)).any()
    assert not _bind(ExpressionSource("10 ** 400 > 0"), path).render(Window(0, 0, 2, 2)).any()


# ---------------------------------------------------------------- rejected input

REJECTED = [
    '__import__("os")',
    "__import__('os').system('touch PWNED') > 0",
    "b1.real > 0",
    "b1.__class__ > 0",
    "(lambda: 1)() > 0",
    "(lambda b1: b1 > 0)(b1)",
    "b1[0] > 0",
    "'a' > 'b'",
    "b'x' > 0",
    "open('x') > 0",
    "eval('1') > 0",
    "exec('import os')",
    "np.abs(b1) > 0",
    "b1 if b1 else b2",
    "[b1] > 0",
    "{b1: 1}",
    "b1 > 0 and b2 > 0",
    "b1 > 0 or b2 > 0",
    "not b1 > 0",
    "abs(b1, b2) > 1",
    "abs(x=b1) > 0",
    "abs(*b1) > 0",
    "b1 > 0 & b2 > 0",
    "b1 + 1",
    "(b1 > 0) + 1",
    "~b1 > 0",
    "-(b1 > 0)",
    "b1 @ b2 > 0",
    "b1 // 2 > 0",
    "b1 % 2 > 0",
    "b1 ^ b2 > 0",
    "b1 >> 2 > 0",
    "1j > 0",
    "True & (b1 > 0)",
    "None > 0",
    "b1 > 0; import os",
    "import os",
    "b1 is b2",
    "b1 in (1, 2)",
    "f'{b1}' > 0",
    "(b1 := 3) > 0",
    "sqrt > 0",
    "abs(b1 > 0) > 0",
    "... > 0",
    "sum(b1 for b1 in b2) > 0",
    "sqrt(b1) > 0 = 1",
    "",
    "   ",
    "(" * 300 + "b1 > 0" + ")" * 300,
    "b1" + " + b1" * 1300 + " > 0",
    "9" * 5000 + " > b1",
]


@pytest.mark.parametrize("text", REJECTED)
def test_rejected_at_construction(text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"expression") as info:
        ExpressionSource(text)
    assert info.value.exit_code == 2  # the CLI reports invalid input and runs nothing
    assert not (tmp_path / "PWNED").exists()


def test_messages_say_what_and_where() -> None:
    with pytest.raises(
        ConfigError, match=r"calling '__import__' at column 1 is not allowed; expressions may"
    ):
        ExpressionSource('__import__("os")')
    with pytest.raises(ConfigError, match=r"Attribute 'b1\.real' at column 1"):
        ExpressionSource("b1.real > 0")
    with pytest.raises(ConfigError, match=r"calling 'lambda: 1'"):
        ExpressionSource("(lambda: 1)() > 0")
    with pytest.raises(ConfigError, match=r"Lambda 'lambda: 1' at column 2"):
        ExpressionSource("(lambda: 1) > 0")
    with pytest.raises(ConfigError, match=r"put each comparison in parentheses"):
        ExpressionSource("b1 > 0 & b2 > 0")
    with pytest.raises(ConfigError, match=r"gives numbers, not a condition.*'b1 \+ 1 > 0\.4'"):
        ExpressionSource("b1 + 1")
    with pytest.raises(ConfigError, match=r"'and' \(use & with parentheses\)"):
        ExpressionSource("b1 > 0 and b2 > 0")
    with pytest.raises(ConfigError, match=r"abs takes 1 argument, got 2"):
        ExpressionSource("abs(b1, b2) > 1")
    with pytest.raises(ConfigError, match=r"must be a string"):
        ExpressionSource(3)  # type: ignore[arg-type]


def test_bands_beyond_the_scene(scene: tuple[Path, NDArray[np.uint16]]) -> None:
    path, _ = scene
    with pytest.raises(ConfigError, match=r"uses b5, b12, but scene .*scene\.tif has 4 bands \(b1\.\.b4\)"):
        _bind(ExpressionSource("(b5 > 0) & (b12 > b1)"), path)


@pytest.mark.parametrize("text", ["x > 1", "b0 > 1", "b01 > 1", "B1 > 1", "(nir - red) / (nir + red) > 0.3"])
def test_names_are_parsed_but_a_single_file_has_no_names(
    text: str, scene: tuple[Path, NDArray[np.uint16]]
) -> None:
    """Names other than b1..bN are a product's band names (B04, nir): a single-file scene refuses them."""
    path, _ = scene
    source = ExpressionSource(text)  # valid syntax: a product input resolves the names
    with pytest.raises(
        ConfigError, match=r"scene .*scene\.tif is a single file whose bands are b1\.\.b4"
    ) as info:
        _bind(source, path)
    assert info.value.exit_code == 2


def test_scene_needed(tmp_path: Path) -> None:
    with pytest.raises(MaskError, match=r"no scene path"):
        ExpressionSource("b1 > 0").bind(MaskContext(GRID))
    with pytest.raises(InputError, match=r"nope\.tif"):
        ExpressionSource("b1 > 0").bind(MaskContext(GRID, str(tmp_path / "nope.tif")))


def test_pickle_threads_and_describe(scene: tuple[Path, NDArray[np.uint16]]) -> None:
    path, data = scene
    text, bands, condition = CASES[0]
    source = ExpressionSource(text)
    assert pickle.loads(pickle.dumps(source)) == source
    assert source.describe() == f"expression({text})"
    mask = pickle.loads(pickle.dumps(_bind(source, path)))
    expected = _oracle(data, bands, condition)
    windows = [Window(c, r, 13, 11) for r in range(0, 60 - 11, 7) for c in range(0, 70 - 13, 9)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(mask.render, windows))
    for window, result in zip(windows, results, strict=True):
        r, c = int(window.row_off), int(window.col_off)
        np.testing.assert_array_equal(result, expected[r : r + 11, c : c + 13])
    with pytest.raises(MaskError, match=r"grid of"):
        mask.render(Window(60, 0, 20, 5))
