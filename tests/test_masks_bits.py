"""Tests of bit-flag masks (``bits``/``bitfield`` on a raster mask): numpy bit tests are the oracle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from _fixtures_cli import make_project, make_scene, write_yaml
from _fixtures_masks import full, tiled
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from typer.testing import CliRunner

from geomask.cli import app
from geomask.config import load_pipeline
from geomask.config.build import build_mask_source
from geomask.errors import MaskError
from geomask.grid import Grid
from geomask.masks import AnySource, GrowSource, MaskContext, NotSource, RasterSource
from geomask.masks.bits import BitSelection

runner = CliRunner()


def _qa(
    path: Path, dtype: str = "uint16", seed: int = 0, nodata: float | None = None
) -> tuple[NDArray, Grid]:
    """A QA layer on the grid of ``scene.tif`` in the same folder (written first), random bit patterns."""
    scene = path.parent / "scene.tif"
    if not scene.exists():
        make_scene(scene)
    with rasterio.open(scene) as ds:
        profile = {**ds.profile, "count": 1, "dtype": dtype, "nodata": nodata}
        grid = Grid(ds.crs, ds.transform, ds.height, ds.width)
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed)
    qa = rng.integers(info.min, info.max, size=(grid.height, grid.width), dtype=dtype, endpoint=True)
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(qa, 1)
    return qa, grid


def _render(source: RasterSource, grid: Grid) -> NDArray[np.bool_]:
    return source.bind(MaskContext(grid)).render(full(grid))


def test_bits_any_listed_bit_set(tmp_path: Path) -> None:
    qa, grid = _qa(tmp_path / "qa.tif")
    expected = ((qa >> 3) & 1).astype(bool) | ((qa >> 4) & 1).astype(bool)
    assert np.array_equal(_render(RasterSource(tmp_path / "qa.tif", bits=[3, 4]), grid), expected)
    assert 0 < expected.mean() < 1


def test_bitfield_value(tmp_path: Path) -> None:
    qa, grid = _qa(tmp_path / "qa.tif")
    expected = np.isin((qa >> 8) & 0b11, [3])
    got = _render(RasterSource(tmp_path / "qa.tif", bitfield=(8, 2, [3])), grid)
    assert np.array_equal(got, expected)
    both = _render(RasterSource(tmp_path / "qa.tif", bitfield=(8, 2, [1, 2])), grid)
    assert np.array_equal(both, np.isin((qa >> 8) & 0b11, [1, 2]))


def test_signed_raster_bits_are_its_twos_complement(tmp_path: Path) -> None:
    qa, grid = _qa(tmp_path / "qa.tif", dtype="int16")
    assert (qa < 0).any()
    expected = (qa.view(np.uint16) >> 15).astype(bool)  # the sign bit
    assert np.array_equal(_render(RasterSource(tmp_path / "qa.tif", bits=[15]), grid), expected)
    assert np.array_equal(expected, qa < 0)


def test_nodata_of_the_qa_layer_is_never_selected(tmp_path: Path) -> None:
    qa, grid = _qa(tmp_path / "qa.tif", dtype="uint8", nodata=255)
    got = _render(RasterSource(tmp_path / "qa.tif", bits=[0]), grid)
    assert np.array_equal(got, (qa & 1).astype(bool) & (qa != 255))


def test_combined_with_the_mask_algebra(tmp_path: Path) -> None:
    qa, grid = _qa(tmp_path / "qa.tif", seed=3)
    cloud = RasterSource(tmp_path / "qa.tif", bits=[3])
    confident = RasterSource(tmp_path / "qa.tif", bitfield=(8, 2, [3]))
    got = _render(NotSource(AnySource([cloud, confident])), grid)
    assert np.array_equal(got, ~((((qa >> 3) & 1) == 1) | (((qa >> 8) & 3) == 3)))


@settings(max_examples=15, deadline=None)
@given(
    rows=st.integers(1, 60),
    cols=st.integers(1, 70),
    grow=st.integers(0, 3),
    bit=st.integers(0, 15),
)
def test_tiled_equals_whole(
    tmp_path_factory: pytest.TempPathFactory, rows: int, cols: int, grow: int, bit: int
) -> None:
    folder = tmp_path_factory.mktemp("bits")
    _qa(folder / "qa.tif", seed=bit)
    with rasterio.open(folder / "scene.tif") as ds:
        grid = Grid(ds.crs, ds.transform, ds.height, ds.width)
    source = (
        GrowSource(RasterSource(folder / "qa.tif", bits=[bit]), grow)
        if grow
        else RasterSource(folder / "qa.tif", bitfield=(bit, 2 if bit < 15 else 1, [1]))
    )
    mask = source.bind(MaskContext(grid))
    assert np.array_equal(tiled(mask, grid.shape, (rows, cols)), mask.render(full(grid)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bits": [64]}, "bit 64 does not exist"),
        ({"bits": []}, "bits is empty"),
        ({"bitfield": (63, 2, [1])}, "does not fit in bits 0..63"),
        ({"bitfield": (8, 2, [4])}, "value 4 does not fit in 2 bits (0..3)"),
        ({"bits": [1], "values": [1]}, "give exactly one of values"),
    ],
)
def test_bad_selections_refused_on_construction(kwargs: dict, message: str) -> None:
    with pytest.raises(MaskError, match=None) as info:
        RasterSource("qa.tif", **kwargs)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("dtype", "bits", "message"),
    [
        ("uint8", [8], "bit 8 is beyond a uint8 raster's 8 bits (0..7)"),
        ("float32", [0], "a float32 raster has no bit flags"),
    ],
)
def test_dtype_problems_refused_on_bind(tmp_path: Path, dtype: str, bits: list[int], message: str) -> None:
    scene = tmp_path / "scene.tif"
    make_scene(scene)
    with rasterio.open(scene) as ds:
        profile = {**ds.profile, "count": 1, "dtype": dtype}
        grid = Grid(ds.crs, ds.transform, ds.height, ds.width)
    with rasterio.open(tmp_path / "qa.tif", "w", **profile) as ds:
        ds.write(np.zeros((1, grid.height, grid.width), dtype=dtype))
    with pytest.raises(MaskError) as info:
        RasterSource(tmp_path / "qa.tif", bits=bits).bind(MaskContext(grid))
    assert message in str(info.value)
    assert BitSelection(bits=tuple(bits)).dtype_problem(dtype) is not None


def test_config_forms_and_validate(tmp_path: Path) -> None:
    make_project(tmp_path)
    _qa(tmp_path / "qa8.tif", dtype="uint8")
    ok = write_yaml(
        tmp_path / "ok.yaml",
        "input: scene.tif\nkernel: {name: box}\n"
        "mask: {any: [{raster: qa8.tif, bits: [3, 4]}, {raster: qa8.tif, bitfield: {start: 6, length: 2, "
        "values: [3]}}]}\noutput: {path: out/x.tif}\n",
    )
    pipeline = load_pipeline(ok)
    assert "bits=[3, 4]" in build_mask_source(pipeline).describe()
    result = runner.invoke(app, ["validate", str(ok)])
    assert result.exit_code == 0, result.output
    bad = write_yaml(
        tmp_path / "bad.yaml",
        "input: scene.tif\nkernel: {name: box}\nmask: {raster: qa8.tif, bits: [9]}\n"
        "output: {path: out/x.tif}\n",
    )
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    assert "mask.bits: " in result.stdout and "bit 9 is beyond a uint8 raster's 8 bits" in result.stdout
    assert len(result.stdout.strip().splitlines()) == 1
    result = runner.invoke(app, ["run", str(bad), "-q"])
    assert result.exit_code == 2 and "bit 9 is beyond" in result.stderr
    both = write_yaml(
        tmp_path / "both.yaml",
        "input: scene.tif\nkernel: {name: box}\nmask: {raster: qa8.tif, bits: [1], values: [1]}\n"
        "output: {path: out/x.tif}\n",
    )
    result = runner.invoke(app, ["validate", str(both)])
    assert result.exit_code == 2 and "give exactly one of values" in result.stdout
    field = write_yaml(
        tmp_path / "field.yaml",
        "input: scene.tif\nkernel: {name: box}\nmask: {raster: qa8.tif, bitfield: {start: 8, length: 2, "
        "values: [5]}}\noutput: {path: out/x.tif}\n",
    )
    result = runner.invoke(app, ["validate", str(field)])
    assert result.exit_code == 2 and "value 5 does not fit in 2 bits" in result.stdout


def test_validate_checks_bits_of_an_asset_mask_against_its_dtype(tmp_path: Path) -> None:
    """``raster: {asset: QA_PIXEL}, bits: [16]`` on the uint16 Landsat QA layer: a validate problem."""
    import shutil

    shutil.copytree(Path(__file__).parents[1] / "data" / "LC09", tmp_path / "LC09")
    bad = write_yaml(
        tmp_path / "bad.yaml",
        "input: {stac: LC09/item.json}\nkernel: {name: box}\n"
        "mask: {raster: {asset: QA_PIXEL}, bits: [3, 16]}\noutput: {path: 'out/{asset}.tif'}\n",
    )
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2, result.output
    assert "mask.bits: {asset: QA_PIXEL} is " in result.stdout
    assert "bit 16 is beyond a uint16 raster's 16 bits" in result.stdout
    assert len(result.stdout.strip().splitlines()) == 1
    ok = write_yaml(tmp_path / "ok.yaml", bad.read_text().replace("[3, 16]", "[3, 15]"))
    result = runner.invoke(app, ["validate", str(ok)])
    assert result.exit_code == 0, result.output
