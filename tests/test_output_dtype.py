"""Tests of ``output.dtype``: the steps compute into the output dtype; whole-array float oracles."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import numpy as np
import pytest
import rasterio
import scipy.ndimage as ndi
from _fixtures_cli import make_project, write_yaml
from conftest import write_raster
from hypothesis import given, settings
from hypothesis import strategies as st
from test_engine import assert_bits_equal
from typer.testing import CliRunner

from geomask import kernels
from geomask.cli import app
from geomask.config.output import OutputDtype
from geomask.convolve import masked_convolve
from geomask.dtypes import OUTPUT_DTYPES, Conversion, conversion_problem, default_nodata, output_nodata
from geomask.errors import ConfigError
from geomask.masks import ArraySource
from geomask.process import process_scene
from geomask.spec import OutputSpec, RunOptions, Step

runner = CliRunner()
LAPLACIAN = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64)


def _run(src: Path, steps: list[Step], window: int = 16, **output: object) -> tuple[np.ndarray, dict, object]:
    out = src.with_name(src.stem + ".out.tif")
    options = RunOptions(window_size=window, align_windows=False, workers=2)
    process_scene(src, OutputSpec(out, overwrite=True, **output), steps, options=options)  # type: ignore[arg-type]
    with rasterio.open(out) as ds:
        return ds.read(), ds.tags(), ds.nodata


def test_laplacian_on_uint8_as_float32_keeps_negative_values(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    scene = rng.integers(0, 256, size=(40, 37), dtype=np.uint8)
    mask = rng.random((40, 37)) < 0.6
    src = write_raster(tmp_path / "s.tif", scene)
    got, tags, _ = _run(src, [Step(kernels.get("laplacian"), ArraySource(mask))], dtype="float32")
    # The oracle: the whole array in float64 (scipy), cast once to float32 inside the mask.
    whole = ndi.correlate(scene.astype(np.float64), LAPLACIAN, mode="reflect")
    expected = np.where(mask, whole, scene).astype(np.float32)
    assert_bits_equal(got[0], expected)
    assert (got[0][mask] < 0).any()
    assert tags["GEOMASK_DTYPE"] == "float32 (from uint8)"
    # Without output.dtype the same run clips to 0..255, as before.
    same, _, _ = _run(src, [Step(kernels.get("laplacian"), ArraySource(mask))])
    assert same.dtype == np.uint8 and (same[0][mask] == 0).sum() > (whole[mask] <= 0).sum() * 0.9


def test_outside_the_mask_converted_exactly_and_nodata_kept(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    scene = rng.integers(0, 60000, size=(2, 33, 29)).astype(np.uint16)
    scene[:, 5:9, 3:12] = 0
    mask = np.zeros((33, 29), dtype=bool)
    mask[10:20, 4:25] = True
    src = write_raster(tmp_path / "s.tif", scene, nodata=0)
    got, tags, nodata = _run(
        src, [Step(kernels.get("gaussian", sigma=1.0), ArraySource(mask))], dtype="int32"
    )
    assert got.dtype == np.int32 and nodata == 0 and tags["GEOMASK_NODATA"] == "0"
    assert np.array_equal(got[:, ~mask], scene[:, ~mask].astype(np.int32))
    expected = masked_convolve(scene.astype(np.int32), kernels.get("gaussian", sigma=1.0), mask, nodata=0)
    assert_bits_equal(got, expected)


def test_clip_rounds_half_to_even_and_clips(tmp_path: Path) -> None:
    scene = np.array([[-0.5, 0.5, 1.5, 2.5, 300.0, -7.0, np.nan, 254.5]], dtype=np.float32)
    src = write_raster(tmp_path / "s.tif", np.repeat(scene, 4, axis=0), block=None)
    nothing = ArraySource(np.zeros((4, 8), dtype=bool))
    with pytest.raises(ConfigError, match=r"set output\.clip: true"):
        _run(src, [Step(kernels.get("box"), nothing)], dtype="uint8")
    got, tags, nodata = _run(src, [Step(kernels.get("box"), nothing)], dtype="uint8", clip=True)
    assert got[0, 0].tolist() == [0, 0, 2, 2, 255, 0, 0, 254]
    assert nodata == 0 and tags["GEOMASK_DTYPE"] == "uint8 (from float32, clipped)"


@settings(max_examples=12, deadline=None)
@given(
    dtype=st.sampled_from(["uint8", "int16", "uint16"]),
    out=st.sampled_from(["float32", "float64", "int32"]),
    kernel=st.sampled_from([("laplacian", {}), ("gaussian", {"sigma": 1.0}), ("median", {"size": 3})]),
    window=st.integers(3, 40),
    seed=st.integers(0, 1000),
)
def test_tiled_equals_whole_array(dtype: str, out: str, kernel: tuple, window: int, seed: int) -> None:
    import tempfile

    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    scene = rng.integers(info.min, info.max, size=(2, 30, 26), endpoint=True).astype(dtype)
    scene[:, rng.random((30, 26)) < 0.1] = info.max
    mask = rng.random((30, 26)) < 0.5
    k = kernels.get(kernel[0], **kernel[1])
    with tempfile.TemporaryDirectory() as tmp:
        src = write_raster(Path(tmp) / "s.tif", scene, nodata=float(info.max))
        step = Step(k, ArraySource(mask))
        if k.kind == "linear" and k.weight_sum <= 0:  # zero-sum: no renormalisation over nodata
            step = Step(k, ArraySource(mask), normalize=False)
        got, _, nodata = _run(src, [step], window=window, dtype=out)
    assert nodata == info.max
    converted = scene.astype(out)
    expected = masked_convolve(converted, k, mask, nodata=float(info.max), normalize=step.normalize)
    assert_bits_equal(got, expected)


def test_conversion_rules() -> None:
    assert set(get_args(OutputDtype)) == set(OUTPUT_DTYPES)
    assert conversion_problem("uint8", "float32", False) is None
    assert conversion_problem("uint16", "float32", False) is None
    assert "cannot hold every uint16 value" in str(conversion_problem("uint16", "uint8", False))
    assert conversion_problem("float32", "int16", False) is not None
    assert conversion_problem("int32", "float32", False) is not None  # beyond 2**24
    assert conversion_problem("int32", "float64", False) is None
    assert conversion_problem("uint16", "uint8", True) is None
    assert output_nodata(0, "uint16", "float32") == 0
    assert output_nodata(-9999, "int16", "uint8") == default_nodata("uint8") == 0
    assert np.isnan(output_nodata(np.nan, "float32", "float64"))  # type: ignore[arg-type]
    assert output_nodata(None, "float32", "int16") == -32768
    assert output_nodata(None, "uint8", "int16") is None
    values = np.array([[2**24 + 1, -5, 7]], dtype=np.int32)
    assert Conversion("float64", None, None).apply(values).tolist() == [[2**24 + 1, -5, 7]]
    big = np.array([1e300, -1e300, np.nan], dtype=np.float64)
    assert Conversion("float32", None, None).apply(big)[:2].tolist() == [
        np.finfo(np.float32).max,
        -np.finfo(np.float32).max,
    ]


def test_pipeline_output_dtype_validate_and_run(tmp_path: Path) -> None:
    make_project(tmp_path)  # a two-band uint16 scene with nodata 0
    bad = make_project(tmp_path, output={"path": "out/x.tif", "dtype": "uint8"})
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    assert "output.dtype: " in result.stdout and "set output.clip: true" in result.stdout
    result = runner.invoke(app, ["run", str(bad), "-q"])
    assert result.exit_code == 2 and "set output.clip: true" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    good = make_project(tmp_path, output={"path": "out/x.tif", "dtype": "float32"})
    result = runner.invoke(app, ["run", str(good), "-q"])
    assert result.exit_code == 0, result.output
    with rasterio.open(tmp_path / "scene.tif") as src, rasterio.open(tmp_path / "out" / "x.tif") as out:
        assert out.dtypes == ("float32", "float32") and out.nodata == 0
        data, scene = out.read(), src.read()
    untouched = data == scene.astype(np.float32)
    assert untouched.mean() > 0.3 and not untouched.all()
    clipped = make_project(tmp_path, output={"path": "out/y.tif", "dtype": "uint8", "clip": True})
    assert runner.invoke(app, ["validate", str(clipped)]).exit_code == 0
    text = "input: scene.tif\nkernel: {name: box}\noutput: {path: out/z.tif, dtype: complex64}\n"
    result = runner.invoke(app, ["validate", str(write_yaml(tmp_path / "z.yaml", text))])
    assert result.exit_code == 2 and "output.dtype" in result.stdout
