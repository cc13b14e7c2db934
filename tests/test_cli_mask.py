"""`geomask mask`: the pipeline's mask as a georeferenced uint8 GeoTIFF, windowed, equal to rasterize."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from _fixtures_cli import DATA, make_project, make_scene, roi_mask, write_yaml
from rasterio.features import rasterize
from typer.testing import CliRunner

from geomask.cli import app
from geomask.masks import BboxSource, MaskContext, VectorSource
from geomask.masks.write import write_mask

runner = CliRunner()


def _mask(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["mask", *args])
    return result.exit_code, result.stdout, result.stderr


def test_mask_equals_the_rasterize_oracle_on_the_sample_scene(tmp_path: Path) -> None:
    """roi_fields.geojson (EPSG:4326) on RGB.byte.tif (UTM 18N): a whole-grid rasterize is the oracle."""
    pipeline = write_yaml(
        tmp_path / "p.yaml",
        {
            "input": str(DATA / "RGB.byte.tif"),
            "mask": {"vector": str(DATA / "roi_fields.geojson")},
            "kernel": {"name": "box"},
            "output": {"path": str(tmp_path / "out.tif")},
        },
    )
    out = tmp_path / "masks" / "roi.tif"
    code, stdout, stderr = _mask(str(pipeline), "-o", str(out), "--window-size", "100")
    assert code == 0, stderr
    assert stdout == f"mask    {DATA / 'RGB.byte.tif'} -> {out}: 71,407 pixels selected\n"
    with rasterio.open(DATA / "RGB.byte.tif") as scene, rasterio.open(out) as ds:
        assert (ds.crs, ds.transform, ds.shape) == (scene.crs, scene.transform, scene.shape)
        assert (ds.count, ds.dtypes[0], ds.nodata) == (1, "uint8", None)
        written = ds.read(1)
        frame = gpd.read_file(DATA / "roi_fields.geojson").to_crs(scene.crs)
        oracle = rasterize(frame.geometry, out_shape=scene.shape, transform=scene.transform, dtype="uint8")
    assert set(np.unique(written)) == {0, 1}
    assert np.array_equal(written, oracle)
    assert not (tmp_path / "out.tif").exists()  # the kernel did not run
    assert sorted(p.name for p in out.parent.iterdir()) == ["roi.tif"]  # no temporary file left


def test_union_of_steps_by_default_and_one_step(tmp_path: Path) -> None:
    make_scene(tmp_path / "scene.tif")
    pipeline = make_project(
        tmp_path,
        mask=None,
        kernel=None,
        steps=[
            {"mask": {"vector": "roi.geojson"}, "kernel": {"name": "box"}},
            {"mask": {"expression": "b1 > 4000"}, "kernel": {"name": "median"}},
        ],
    )
    with rasterio.open(tmp_path / "scene.tif") as ds:
        data = ds.read()
    roi = roi_mask(data.shape[1:])
    bright = (data[0] > 4000) & (data != 0).all(axis=0)
    for extra, expected in (([], roi | bright), (["--step", "1"], roi), (["--step", "2"], bright)):
        out = tmp_path / "m.tif"
        code, stdout, stderr = _mask(
            str(pipeline), "-o", str(out), "--overwrite", "--window-size", "16", *extra
        )
        assert code == 0, stderr
        with rasterio.open(out) as ds:
            assert np.array_equal(ds.read(1).astype(bool), expected), extra
        assert f"{int(expected.sum()):,} pixels selected" in stdout
    code, _, stderr = _mask(str(pipeline), "-o", str(tmp_path / "x.tif"), "--step", "3")
    assert code == 2 and stderr == "error: step 3 does not exist: the pipeline has steps 1..2\n"


def test_refusals_exit_2(tmp_path: Path) -> None:
    pipeline = make_project(tmp_path)
    out = tmp_path / "m.tif"
    assert _mask(str(pipeline), "-o", str(out))[0] == 0
    before = out.read_bytes()
    code, _, stderr = _mask(str(pipeline), "-o", str(out))
    assert code == 2 and "exists; pass --overwrite" in stderr
    assert out.read_bytes() == before
    code, _, stderr = _mask(str(pipeline), "-o", str(tmp_path / "scene.tif"), "--overwrite")
    assert code == 2 and "is an input scene of the pipeline" in stderr
    several = make_project(tmp_path, input=["scene.tif", "copy.tif"], output={"path": "out/{stem}.tif"})
    make_scene(tmp_path / "copy.tif")
    code, _, stderr = _mask(str(several), "-o", str(tmp_path / "m2.tif"))
    assert code == 2 and "has 2 scenes; use {stem}" in stderr
    code, stdout, _ = _mask(str(several), "-o", str(tmp_path / "masks" / "{stem}.mask.tif"))
    assert code == 0 and stdout.count("660 pixels selected") == 2
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == ["copy.mask.tif", "scene.mask.tif"]


def test_write_mask_from_python(tmp_path: Path) -> None:
    """The library function: any window size gives the whole render's bytes."""
    scene = DATA / "RGB.byte.tif"
    with rasterio.open(scene) as ds:
        x0, y0 = ds.transform @ (100, 600)
        x1, y1 = ds.transform @ (500, 200)
        from geomask.grid import Grid

        grid = Grid(ds.crs, ds.transform, ds.height, ds.width)
    source = BboxSource((x0, y0, x1, y1))
    whole = source.bind(MaskContext(grid)).render(rasterio.windows.Window(0, 0, grid.width, grid.height))
    for size in (16, 300, 4096):
        out = tmp_path / f"m{size}.tif"
        assert write_mask(scene, source, out, window_size=size) == int(whole.sum()) == 400 * 400
        with rasterio.open(out) as ds:
            assert np.array_equal(ds.read(1), whole.astype(np.uint8))
            assert ds.tags()["GEOMASK_MASK"] == source.describe()


def test_help() -> None:
    result = runner.invoke(app, ["mask", "--help"])
    assert result.exit_code == 0
    for option in ("--output", "--step", "--overwrite", "--window-size"):
        assert option in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("all_touched", [False, True])
def test_vector_mask_file_written_like_the_bound_mask(tmp_path: Path, all_touched: bool) -> None:
    scene = DATA / "RGB.byte.tif"
    source = VectorSource(DATA / "roi_fields.gpkg", all_touched=all_touched, where="landcover = 'forest'")
    out = tmp_path / "m.tif"
    count = write_mask(scene, source, out, window_size=64)
    with rasterio.open(out) as ds:
        written = ds.read(1)
    assert count == int(written.sum()) > 0
    if not all_touched:
        assert count == 45_697  # data/README.md


@pytest.mark.parametrize(
    ("target", "role"),
    [
        ("scene.tif", "an input scene"),
        ("roi.geojson", "the vector file"),
        ("pipeline.yaml", "the pipeline file"),
        ("out/scene.denoised.tif", "an output of this run"),
        # not there yet, but GDAL would read a file there with the scene: a GeoTIFF at scene.tif.msk
        # becomes its mask band (pixels then invalid), one at scene.tif.aux.xml its metadata
        ("scene.tif.msk", "a name GDAL reads as a sidecar of an input scene"),
        ("scene.tif.aux.xml", "a name GDAL reads as a sidecar of an input scene"),
    ],
)
def test_mask_output_never_replaces_a_file_of_the_pipeline(tmp_path: Path, target: str, role: str) -> None:
    pipeline = make_project(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "scene.denoised.tif").write_bytes(b"output")
    files = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    code, _, stderr = _mask(str(pipeline), "-o", str(tmp_path / target), "--overwrite")
    assert code == 2 and stderr.count("\n") == 1 and role in stderr, stderr
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == files


def test_mask_templates_that_collide_or_escape_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    make_scene(tmp_path / "a" / "s.tif")
    make_scene(tmp_path / "b" / "s.tif")
    pipeline = make_project(
        tmp_path, input=["a/s.tif", "b/s.tif"], output={"path": "out/{parent}-{stem}.tif"}
    )
    code, _, stderr = _mask(str(pipeline), "-o", str(tmp_path / "m" / "{stem}.tif"))
    assert code == 2 and "is the mask of" in stderr and not (tmp_path / "m").exists()
    for bad in ("{stem:>2000000000}.tif", "{stem!r}.tif", "{0}.tif", "{stem.x}.tif", "{stem[0]}.tif"):
        code, _, stderr = _mask(str(pipeline), "-o", str(tmp_path / "m" / bad))
        assert code == 2 and stderr.count("\n") == 1 and "{stem}, {name} or {parent}" in stderr, (bad, stderr)
    code, _, stderr = _mask(str(pipeline), "-o", str(tmp_path / "m" / "{parent}" / "{stem}.tif"))
    assert code == 0, stderr
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["a", "b"]
