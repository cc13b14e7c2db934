"""The windowed engine equals masked_convolve on the whole array, byte for byte."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from conftest import write_raster
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.enums import ColorInterp

from geomask import kernels
from geomask.convolve import masked_convolve
from geomask.errors import ConfigError, GeomaskError, KernelError, OutputExistsError, RunError
from geomask.masks import ArraySource, MaskContext, VectorSource
from geomask.masks.base import MaskSource
from geomask.process import process_scene
from geomask.spec import OutputSpec, RunOptions, Step

DTYPES = ["uint8", "uint16", "int16", "int32", "float32", "float64"]
MODES = ["reflect", "mirror", "nearest", "wrap", "constant", "leave"]


def random_scene(rng: np.random.Generator, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return (rng.normal(size=shape) * 100).astype(dt)
    info = np.iinfo(dt)
    lo, hi = max(info.min, -50_000), min(info.max, 50_000)
    return rng.integers(lo, hi, size=shape, endpoint=True).astype(dt)


def run_engine(src: Path, steps: list[Step], **kwargs) -> np.ndarray:
    options = kwargs.pop("options", RunOptions(window_size=16, align_windows=False, workers=2))
    out = src.with_name(src.stem + ".out.tif")
    process_scene(src, OutputSpec(out, overwrite=True), steps, options=options, **kwargs)
    with rasterio.open(out) as ds:
        return ds.read()


def assert_bits_equal(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.dtype == expected.dtype and got.shape == expected.shape
    u = np.dtype(f"u{got.dtype.itemsize}")
    diff = got.view(u) != expected.view(u)
    assert not diff.any(), f"{int(diff.sum())} pixels differ, first at {np.argwhere(diff)[0]}"


KERNEL_CHOICES = [
    ("gaussian", {"sigma": 1.0}),
    ("box", {"size": 3}),
    ("sharpen", {"amount": 1.5}),
    ("laplacian", {}),
    ("sobel_x", {}),
    ("emboss", {}),
    ("disk", {"radius": 2}),
    ("median", {"size": 3}),
    ("maximum", {"size": 5}),
]


@settings(max_examples=40)
@given(
    data=st.data(),
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    bands=st.integers(1, 2),
    dtype=st.sampled_from(DTYPES),
    kernel_choice=st.sampled_from(KERNEL_CHOICES),
    mode=st.sampled_from(MODES),
    window=st.integers(1, 45),
    with_nodata=st.booleans(),
    density=st.sampled_from([0.0, 0.05, 0.5, 1.0]),
    seed=st.integers(0, 2**16),
)
@pytest.mark.slow
def test_windowed_equals_whole_array(
    data, height, width, bands, dtype, kernel_choice, mode, window, with_nodata, density, seed
):
    name, params = kernel_choice
    kernel = kernels.get(name, **params)
    rows, cols = kernel.shape
    if rows > height or cols > width:
        kernel = kernels.get("box", size=1)
    rng = np.random.default_rng(seed)
    array = random_scene(rng, dtype, (bands, height, width))
    mask = rng.random((height, width)) < density
    nodata = None
    if with_nodata:
        nodata = float(array.flat[0])
        array.flat[rng.integers(0, array.size, size=max(1, array.size // 10))] = array.flat[0]
    normalize = kernel.weight_sum > 0 or nodata is None
    op = data.draw(st.sampled_from(["convolve", "correlate"]))
    cval = data.draw(st.sampled_from([0.0, 7.0]))
    expected = masked_convolve(
        array, kernel, mask, mode=mode, cval=cval, nodata=nodata, op=op, normalize=normalize
    )
    with tempfile.TemporaryDirectory() as tmp:
        src = write_raster(Path(tmp) / "in.tif", array, nodata=nodata, block=16)
        step = Step(kernel, ArraySource(mask), op=op, mode=mode, cval=cval, normalize=normalize)
        got = run_engine(
            src,
            [step],
            nodata=nodata if nodata is not None else None,
            options=RunOptions(window_size=window, align_windows=False, workers=2, batch=3),
        )
    assert_bits_equal(got, expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_big_kernel_small_windows_last_window_one_pixel(make_raster, dtype):
    rng = np.random.default_rng(1)
    array = random_scene(rng, dtype, (1, 41, 49))  # 49 = 3 * 16 + 1: the last window column is 1 pixel
    mask = rng.random((41, 49)) < 0.3
    kernel = kernels.from_matrix(rng.normal(size=(31, 31)))
    expected = masked_convolve(array, kernel, mask, mode="reflect")
    got = run_engine(make_raster(array), [Step(kernel, ArraySource(mask))], nodata=None)
    assert_bits_equal(got, expected)


@pytest.mark.slow
def test_processes_scheduler_equals_threads(make_raster):
    rng = np.random.default_rng(2)
    array = random_scene(rng, "uint16", (2, 70, 90))
    mask = rng.random((70, 90)) < 0.2
    steps = [Step(kernels.get("gaussian", sigma=2.0), ArraySource(mask), mode="wrap")]
    src = make_raster(array)
    threads = run_engine(src, steps, nodata=None)
    processes = run_engine(
        src,
        steps,
        nodata=None,
        options=RunOptions(window_size=32, align_windows=False, scheduler="processes", workers=2),
    )
    assert_bits_equal(processes, threads)
    assert_bits_equal(threads, masked_convolve(array, steps[0].kernel, mask, mode="wrap"))


def test_multi_step_equals_sequential_calls(make_raster):
    rng = np.random.default_rng(3)
    array = random_scene(rng, "float32", (1, 50, 60))
    m1 = rng.random((50, 60)) < 0.5
    m2 = rng.random((50, 60)) < 0.5
    k1, k2 = kernels.get("gaussian", sigma=1.5), kernels.get("median", size=5)
    steps = [Step(k1, ArraySource(m1), mode="wrap"), Step(k2, ArraySource(m2), mode="mirror")]
    expected = masked_convolve(masked_convolve(array, k1, m1, mode="wrap"), k2, m2, mode="mirror")
    got = run_engine(make_raster(array), steps, nodata=None)
    assert_bits_equal(got, expected)


def test_bands_subset_leaves_other_bands(make_raster):
    rng = np.random.default_rng(4)
    array = random_scene(rng, "uint8", (3, 30, 30))
    mask = np.ones((30, 30), bool)
    kernel = kernels.get("box", size=5)
    got = run_engine(make_raster(array), [Step(kernel, ArraySource(mask))], bands=[2], nodata=None)
    assert_bits_equal(got[[0, 2]], array[[0, 2]])
    assert_bits_equal(got[1], masked_convolve(array[1], kernel, mask))


def test_output_keeps_georeferencing_and_metadata(make_raster):
    rng = np.random.default_rng(5)
    array = random_scene(rng, "int16", (3, 40, 50))
    src = make_raster(array, nodata=-9999, crs="EPSG:3857")
    with rasterio.open(src, "r+") as ds:
        ds.descriptions = ("red", "green", "blue")
        ds.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
        ds.update_tags(SOURCE="test")
    out = src.with_name("out.tif")
    mask = np.zeros((40, 50), bool)
    mask[10:20, 10:30] = True
    report = process_scene(src, OutputSpec(out), [Step(kernels.get("gaussian"), ArraySource(mask))])
    with rasterio.open(src) as a, rasterio.open(out) as b:
        assert (b.crs, b.transform, b.nodata, b.dtypes, b.count) == (
            a.crs,
            a.transform,
            a.nodata,
            a.dtypes,
            a.count,
        )
        assert b.descriptions == ("red", "green", "blue")
        assert b.colorinterp == a.colorinterp
        assert b.tags()["SOURCE"] == "test"
        before, after = a.read(), b.read()
    assert_bits_equal(after[:, ~mask], before[:, ~mask])
    assert report.pixels_selected == mask.sum()
    assert 0 < report.pixels_changed <= mask.sum()
    assert not list(src.parent.glob("*.partial"))


def test_windows_without_mask_are_skipped(make_raster):
    array = np.arange(64 * 64, dtype="uint16").reshape(64, 64)
    mask = np.zeros((64, 64), bool)
    mask[5, 5] = True
    src = make_raster(array)
    out = src.with_name("out.tif")
    report = process_scene(
        src,
        OutputSpec(out),
        [Step(kernels.get("box"), ArraySource(mask))],
        options=RunOptions(window_size=16, align_windows=False),
    )
    assert (report.windows_total, report.windows_computed, report.windows_skipped) == (16, 1, 15)


def test_cog_output(make_raster):
    rng = np.random.default_rng(6)
    array = random_scene(rng, "uint8", (3, 300, 300))
    mask = rng.random((300, 300)) < 0.1
    src = make_raster(array, block=64)
    out = src.with_name("out.tif")
    spec = OutputSpec(out, format="COG", block_size=128)
    process_scene(src, spec, [Step(kernels.get("sharpen"), ArraySource(mask))])
    with rasterio.open(out) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert ds.overviews(1)
        got = ds.read()
    assert_bits_equal(got, masked_convolve(array, kernels.get("sharpen"), mask))


class Boom(MaskSource):
    """A mask that fails in the middle of a run (after some windows were written)."""

    def bind(self, context: MaskContext):
        from geomask.masks.base import BoundMask

        class _Bound(BoundMask):
            def render(self, window):
                if window.row_off >= 32:
                    raise RunError("boom")
                return np.ones((int(window.height), int(window.width)), bool)

        return _Bound()


def test_failure_leaves_nothing_at_output(make_raster):
    src = make_raster(np.zeros((64, 64), "uint8"))
    out = src.with_name("out.tif")
    with pytest.raises(RunError):
        process_scene(
            src,
            OutputSpec(out),
            [Step(kernels.get("box"), Boom())],
            options=RunOptions(window_size=16, align_windows=False, batch=2),
        )
    assert sorted(p.name for p in src.parent.iterdir()) == [src.name]


def test_output_exists_and_output_is_input(make_raster):
    src = make_raster(np.zeros((8, 8), "uint8"))
    step = Step(kernels.get("box"))
    out = src.with_name("out.tif")
    out.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError) as e:
        process_scene(src, OutputSpec(out), [step])
    assert e.value.exit_code == 2 and "--overwrite" in str(e.value)
    assert out.read_bytes() == b"keep me"
    with pytest.raises(ConfigError):
        process_scene(src, OutputSpec(src, overwrite=True), [step])


def test_zero_sum_kernel_with_nodata_refused_before_work(make_raster):
    src = make_raster(np.zeros((8, 8), "uint8"), nodata=0)
    with pytest.raises(KernelError, match="normalize"):
        process_scene(src, OutputSpec(src.with_name("o.tif")), [Step(kernels.get("laplacian"))])
    assert not src.with_name("o.tif").exists()


def test_corrupt_tile_names_scene_and_window(tmp_path):
    corrupt = Path(__file__).resolve().parent / "data" / "corrupt.tif"  # shipped in tests/data
    out = tmp_path / "out.tif"
    with pytest.raises(GeomaskError) as e:
        process_scene(corrupt, OutputSpec(out), [Step(kernels.get("box"))])
    assert "corrupt.tif" in str(e.value) and "window" in str(e.value)
    assert not list(tmp_path.iterdir())


def test_real_scene_with_roi_in_another_crs(rgb_scene, roi_fields, tmp_path):
    """RGB.byte.tif (EPSG:32618) with ROIs in EPSG:4326: windowed equals whole-array oracle."""
    source = VectorSource(roi_fields)
    with rasterio.open(rgb_scene) as ds:
        array = ds.read()
        from geomask.grid import Grid

        grid = Grid(ds.crs, ds.transform, ds.height, ds.width)
        nodata = ds.nodata
    bound = source.bind(MaskContext(grid, str(rgb_scene), nodata))
    mask = bound.render(rasterio.windows.Window(0, 0, grid.width, grid.height))
    assert mask.sum() > 10_000
    kernel = kernels.get("gaussian", sigma=1.0)
    expected = masked_convolve(array, kernel, mask, nodata=nodata)
    out = tmp_path / "out.tif"
    report = process_scene(
        rgb_scene, OutputSpec(out), [Step(kernel, source)], options=RunOptions(window_size=128)
    )
    with rasterio.open(out) as ds:
        got = ds.read()
    assert_bits_equal(got, expected)
    assert report.pixels_selected == int(mask.sum())
    assert report.pixels_changed > 0
