"""Tests of ``output.nodata`` (the output's declared nodata) and of the nodata collision count.

A chosen nodata is declared by the output; pixels invalid in the input are written as it, valid
pixels keep the values ``output.nodata: auto`` gives them. Computed pixels that equal the declared
nodata are counted per scene and the command line warns about them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
from _fixtures_cli import write_yaml
from conftest import raw_tiles, write_raster
from test_engine import assert_bits_equal
from typer.testing import CliRunner

from geomask import kernels, tiffraw
from geomask.cli import app
from geomask.convolve import masked_convolve
from geomask.dtypes import Conversion, output_nodata_problem
from geomask.errors import ConfigError
from geomask.masks import ArraySource
from geomask.process import process_scene
from geomask.spec import OutputSpec, RunOptions, SceneReport, Step

runner = CliRunner()
GAUSS = kernels.get("gaussian", sigma=1.0)
TILE = 32


def _scene(shape: tuple[int, int, int] = (2, 40, 50), seed: int = 0) -> np.ndarray:
    """uint16 pixels 1..4 with a flat block of 7 (a Laplacian gives exactly 0 there) and nodata (0)
    rows at the top and a nodata hole inside."""
    rng = np.random.default_rng(seed)
    data = rng.integers(1, 5, size=shape).astype(np.uint16)
    data[:, 10:20, 10:30] = 7
    data[:, 0:5, :] = 0
    data[:, 25:28, 30:34] = 0
    return data


def _mask(shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[3:30, 5:40] = True
    return mask


def _run(
    src: Path, steps: list[Step], *, window: int = 16, **output: object
) -> tuple[np.ndarray, rasterio.profiles.Profile, dict, SceneReport]:
    out = src.with_name(src.stem + ".out.tif")
    options = RunOptions(window_size=window, align_windows=False, workers=2)
    report = process_scene(src, OutputSpec(out, overwrite=True, **output), steps, options=options)  # type: ignore[arg-type]
    with rasterio.open(out) as ds:
        return ds.read(), ds.profile, ds.tags(), report


def _laplacian(mask: np.ndarray) -> list[Step]:
    return [Step(kernels.get("laplacian"), ArraySource(mask), normalize=False)]


def test_output_nodata_number_declared_invalid_rewritten_valid_unchanged(tmp_path: Path) -> None:
    data = _scene()
    mask = _mask(data.shape[1:])
    src = write_raster(tmp_path / "s.tif", data, nodata=0)
    steps = [Step(GAUSS, ArraySource(mask))]
    auto, auto_profile, _, _ = _run(src, steps)
    got, profile, tags, _ = _run(src, steps, nodata=65535.0)
    assert auto_profile["nodata"] == 0 and profile["nodata"] == 65535 and tags["GEOMASK_NODATA"] == "65535"
    invalid = data == 0
    assert (got[invalid] == 65535).all()  # inside and outside the mask
    assert np.array_equal(got[~invalid], auto[~invalid])  # computed and passed through: as with auto
    assert np.array_equal(auto, masked_convolve(data, GAUSS, mask, nodata=0))


def test_output_nodata_nan_with_float32(tmp_path: Path) -> None:
    data = _scene()
    mask = _mask(data.shape[1:])
    src = write_raster(tmp_path / "s.tif", data, nodata=0)
    steps = [Step(GAUSS, ArraySource(mask))]
    auto, _, _, _ = _run(src, steps, dtype="float32")
    got, profile, tags, _ = _run(src, steps, dtype="float32", nodata=math.nan)
    assert profile["dtype"] == "float32" and math.isnan(profile["nodata"]) and tags["GEOMASK_NODATA"] == "nan"
    invalid = data == 0
    assert np.isnan(got[invalid]).all() and not np.isnan(got[~invalid]).any()
    assert_bits_equal(got[~invalid], auto[~invalid])
    assert np.array_equal(got[:, ~mask & ~invalid[0]], data[:, ~mask & ~invalid[0]].astype(np.float32))


def test_output_nodata_on_a_conversion_to_an_integer_type(tmp_path: Path) -> None:
    data = _scene().astype(np.int16) - 2  # nodata -2 now; int16 -> int32 converts exactly
    mask = _mask(data.shape[1:])
    src = write_raster(tmp_path / "s.tif", data, nodata=-2)
    steps = [Step(GAUSS, ArraySource(mask))]
    auto, auto_profile, _, _ = _run(src, steps, dtype="int32")
    got, profile, _, _ = _run(src, steps, dtype="int32", nodata=-99999.0)
    assert auto_profile["nodata"] == -2 and profile["nodata"] == -99999
    invalid = data == -2
    assert (got[invalid] == -99999).all() and np.array_equal(got[~invalid], auto[~invalid])


def test_input_without_nodata_only_declares_the_value(tmp_path: Path) -> None:
    data = _scene() + 1  # no pixel is 0, and the file has no nodata: every pixel is valid
    mask = _mask(data.shape[1:])
    src = write_raster(tmp_path / "s.tif", data, nodata=None)
    steps = [Step(GAUSS, ArraySource(mask))]
    auto, _, _, _ = _run(src, steps)
    got, profile, _, _ = _run(src, steps, nodata=0.0)
    assert profile["nodata"] == 0 and np.array_equal(got, auto)
    # A float scene without nodata: its NaN pixels are invalid, and become the chosen value.
    floats = data.astype(np.float32)
    floats[:, 0:2, 0:3] = np.nan
    fsrc = write_raster(tmp_path / "f.tif", floats, nodata=None)
    fauto, _, _, _ = _run(fsrc, steps)
    fgot, fprofile, _, _ = _run(fsrc, steps, nodata=-9999.0)
    nan = np.isnan(floats)
    assert fprofile["nodata"] == -9999 and (fgot[nan] == -9999).all()
    assert_bits_equal(fgot[~nan], fauto[~nan])


def test_run_nodata_and_output_nodata_stay_distinct(tmp_path: Path) -> None:
    """``nodata:`` says which input pixels are invalid, ``output.nodata`` what they are written as."""
    data = _scene()
    mask = _mask(data.shape[1:])
    src = write_raster(tmp_path / "s.tif", data, nodata=None)  # the file declares no nodata
    out = tmp_path / "o.tif"
    options = RunOptions(window_size=16, align_windows=False)
    spec = OutputSpec(out, overwrite=True, nodata=9.0)
    process_scene(src, spec, [Step(GAUSS, ArraySource(mask))], nodata=7, options=options)
    with rasterio.open(out) as ds:
        got, declared = ds.read(), ds.nodata
    assert declared == 9
    sevens = data == 7
    assert (got[sevens] == 9).all()  # the run's nodata (7) written as the output's (9)
    expected = masked_convolve(data, GAUSS, mask, nodata=7)
    assert np.array_equal(got[~sevens], expected[~sevens])


def test_fill_step_filled_pixels_keep_their_value(tmp_path: Path) -> None:
    data = _scene()
    mask = _mask(data.shape[1:])
    src = write_raster(tmp_path / "s.tif", data, nodata=0)
    steps = [Step(kernels.get("box", size=3), ArraySource(mask), fill=1)]
    auto, _, _, _ = _run(src, steps)
    got, _, _, _ = _run(src, steps, nodata=65535.0)
    filled = (data == 0) & (auto != 0)  # the hole inside the mask, filled
    assert filled.any()
    assert np.array_equal(got[filled], auto[filled])
    assert (got[(data == 0) & ~filled] == 65535).all()


def test_alpha_masked_pixels_written_as_output_nodata_alpha_kept(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    rgb = rng.integers(1, 255, size=(3, 32, 32)).astype(np.uint8)
    alpha = np.full((32, 32), 255, dtype=np.uint8)
    alpha[4:9, 4:20] = 0
    src = write_raster(tmp_path / "a.tif", np.concatenate([rgb, alpha[None]]), photometric="RGB", alpha="YES")
    mask = np.ones((32, 32), dtype=bool)
    auto, _, _, _ = _run(src, [Step(GAUSS, ArraySource(mask))])
    got, profile, _, _ = _run(src, [Step(GAUSS, ArraySource(mask))], nodata=0.0)
    assert profile["nodata"] == 0
    assert np.array_equal(got[3], alpha)  # the alpha band, byte for byte
    assert (got[:3, alpha == 0] == 0).all()
    assert np.array_equal(got[:3, alpha != 0], auto[:3, alpha != 0])


def test_collisions_counted_for_a_laplacian_on_nodata_zero(tmp_path: Path) -> None:
    data = _scene()
    mask = _mask(data.shape[1:])
    src = write_raster(tmp_path / "s.tif", data, nodata=0)
    got, _, _, report = _run(src, _laplacian(mask))
    # The oracle: computed pixels (in the mask, valid) that came out 0 (clipped or exactly 0).
    expected = masked_convolve(data, kernels.get("laplacian"), mask, nodata=0, normalize=False)
    assert np.array_equal(got, expected)
    collide = ((expected == 0) & (data != 0) & mask).any(axis=0)
    assert report.nodata_collisions == int(collide.sum()) > 0 and report.output_nodata == "0"
    # float32: only the exact zeros (the flat block) collide; with nan as nodata, none do.
    floats, _, _, f_report = _run(src, _laplacian(mask), dtype="float32")
    exact = ((floats == 0) & (data != 0) & mask).any(axis=0)
    assert f_report.nodata_collisions == int(exact.sum()) > 0
    _, _, _, nan_report = _run(src, _laplacian(mask), dtype="float32", nodata=math.nan)
    assert nan_report.nodata_collisions == 0 and nan_report.output_nodata == "nan"
    # Counted the same whatever the windows (one window for the whole scene).
    _, _, _, whole = _run(src, _laplacian(mask), window=64)
    assert whole.nodata_collisions == report.nodata_collisions


def test_collisions_count_computed_pixels_only(tmp_path: Path) -> None:
    """A float scene written as uint8 with clip: negative values outside the mask clip onto the
    output's nodata (0) but were not computed, so they are not counted; those inside are."""
    rng = np.random.default_rng(4)
    data = rng.uniform(-50, 200, size=(1, 32, 32)).astype(np.float32)
    mask = np.zeros((32, 32), dtype=bool)
    mask[8:24, 8:24] = True
    src = write_raster(tmp_path / "f.tif", data, nodata=None)
    steps = [Step(kernels.get("box", size=1), ArraySource(mask))]  # the identity: computed = input
    got, profile, _, report = _run(src, steps, dtype="uint8", clip=True)
    assert profile["nodata"] == 0 and (got[0][~mask] == 0).sum() > 0
    assert report.nodata_collisions == int(((got[0] == 0) & mask).sum()) > 0


def test_collision_warning_on_the_command_line(tmp_path: Path) -> None:
    write_raster(tmp_path / "scene.tif", _scene(), nodata=0)
    text = "input: scene.tif\nkernel: {name: laplacian}\nnormalize: false\noutput: {path: out/a.tif}\n"
    result = runner.invoke(app, ["run", str(write_yaml(tmp_path / "a.yaml", text)), "-q"])
    assert result.exit_code == 0, result.output
    [warning] = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert "scene.tif: " in warning and "computed pixels equal the output nodata (0)" in warning
    assert "output.nodata" in warning
    text = text.replace("out/a.tif}", "out/b.tif, dtype: float32, nodata: nan}")
    result = runner.invoke(app, ["run", str(write_yaml(tmp_path / "b.yaml", text)), "-q"])
    assert result.exit_code == 0, result.output
    assert "warning:" not in result.stderr
    with rasterio.open(tmp_path / "out" / "b.tif") as ds:
        assert ds.dtypes[0] == "float32" and math.isnan(ds.nodata)


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("{path: out/x.tif, dtype: float32, nodata: 0.1}", "not exactly a float32 value"),
        ("{path: out/x.tif, dtype: uint8, nodata: -1}", "not a uint8 value"),
        ("{path: out/x.tif, nodata: nan}", "nan needs a float output dtype"),
        ("{path: out/x.tif, nodata: 70000}", "not a uint16 value"),
        ("{path: out/x.tif, nodata: none}", "expected auto, nan or a number"),
        ("{path: out/x.tif, dtype: int16, nodata: nan}", "nan needs a float output dtype"),
    ],
)
def test_invalid_output_nodata_exits_2_with_one_line(tmp_path: Path, output: str, message: str) -> None:
    write_raster(tmp_path / "scene.tif", _scene(), nodata=0)  # uint16
    text = f"input: scene.tif\nkernel: {{name: box}}\noutput: {output}\n"
    pipeline = write_yaml(tmp_path / "p.yaml", text)
    result = runner.invoke(app, ["validate", str(pipeline)])
    assert result.exit_code == 2 and "output.nodata" in result.stdout and message in result.stdout
    result = runner.invoke(app, ["run", str(pipeline), "-q"])
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "x.tif").exists()


def test_invalid_output_nodata_refused_before_writing_from_python(tmp_path: Path) -> None:
    src = write_raster(tmp_path / "s.tif", _scene(), nodata=0)
    with pytest.raises(ConfigError, match=r"output\.nodata: nan needs a float output dtype"):
        _run(src, [Step(GAUSS)], nodata=math.nan)
    assert not (tmp_path / "s.out.tif").exists()


def test_output_nodata_problem_rules() -> None:
    assert output_nodata_problem(math.nan, "float32") is None
    assert output_nodata_problem(-9999, "float32") is None
    assert output_nodata_problem(float(np.finfo(np.float32).min), "float32") is None
    assert output_nodata_problem(0.1, "float64") is None
    assert "0.10000000149011612" in (output_nodata_problem(0.1, "float32") or "")
    assert output_nodata_problem(16777217, "float32") is not None
    assert output_nodata_problem(255, "uint8") is None and output_nodata_problem(256, "uint8") is not None
    assert output_nodata_problem(1.5, "int32") is not None
    assert output_nodata_problem(math.inf, "float32") is not None
    # finish: invalid pixels still invalid become the value, filled and valid ones stay.
    values = np.array([[[0, 5, 0, 3]]], dtype=np.uint16)
    invalid = np.array([[[True, True, False, False]]])  # the 5 was filled, the second 0 is computed
    Conversion("uint16", 0, 0, final_nodata=9).finish(values, invalid)
    assert values.tolist() == [[[9, 5, 0, 3]]]


def _tiled(tmp_path: Path, data: np.ndarray, nodata: float | None) -> Path:
    options = {"block": TILE, "compress": "deflate", "predictor": 2, "interleave": "pixel"}
    return write_raster(tmp_path / "t.tif", data, nodata=nodata, **options)


def _tile_run(src: Path, mask: np.ndarray, out: Path, **output: object) -> np.ndarray:
    spec = OutputSpec(out, creation_options={"PREDICTOR": "2"}, block_size=TILE, overwrite=True, **output)  # type: ignore[arg-type]
    process_scene(src, spec, [Step(GAUSS, ArraySource(mask))], options=RunOptions(window_size=2 * TILE))
    with rasterio.open(out) as ds:
        return ds.read()


def test_tile_copy_with_output_nodata(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    data = rng.integers(1, 5000, size=(2, 150, 200)).astype(np.uint16)
    data[:, 100:140, 10:60] = 0  # nodata in tiles no step touches
    data[:, 40:45, 45:50] = 0  # and inside the mask
    mask = np.zeros(data.shape[1:], dtype=bool)
    mask[40:60, 40:70] = True
    src = _tiled(tmp_path, data, nodata=0)
    reference = masked_convolve(data, GAUSS, mask, nodata=0)
    # The same nodata as the input's: unchanged tiles are still the input's compressed bytes.
    same = _tile_run(src, mask, tmp_path / "same.tif", nodata=0.0)
    assert np.array_equal(same, reference)
    layout = tiffraw.layout_of(src)
    assert layout is not None and layout == tiffraw.layout_of(tmp_path / "same.tif")
    src_raw, out_raw = raw_tiles(src), raw_tiles(tmp_path / "same.tif")
    [i] = layout.indices(4, 0)  # rows 128..159, columns 0..31: nodata, outside the mask
    assert out_raw[i] == src_raw[i]
    # Another nodata: the tiles holding nodata cannot be copied raw; the result is the reference's
    # with the nodata pixels rewritten, whatever the windows.
    other = _tile_run(src, mask, tmp_path / "other.tif", nodata=65535.0)
    assert np.array_equal(other, np.where(data == 0, 65535, reference))
    whole = process_scene(
        src,
        OutputSpec(tmp_path / "whole.tif", nodata=65535.0, overwrite=True),
        [Step(GAUSS, ArraySource(mask))],
        options=RunOptions(window_size=512),
    )
    assert whole.windows_total == 1
    with rasterio.open(tmp_path / "whole.tif") as ds:
        assert np.array_equal(ds.read(), other)
