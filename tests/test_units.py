"""Tests of geomask.units: kernel sizes in map units, converted to pixels per scene."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from _fixtures_cli import make_project
from affine import Affine
from rasterio.crs import CRS
from typer.testing import CliRunner

from geomask.cli import app
from geomask.config import load_pipeline
from geomask.config.build import build_steps, unit_notes
from geomask.errors import ConfigError, GridError, KernelError
from geomask.grid import Grid
from geomask.pipeline import run_pipeline
from geomask.units import Length, parse_length, resolve_length

UTM = CRS.from_epsg(32618)


def grid(res_x: float = 30.0, res_y: float = 30.0, crs: CRS | None = UTM) -> Grid:
    return Grid(crs, Affine(res_x, 0.0, 500_000.0, 0.0, -res_y, 4_100_000.0), 100, 100)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30 m", Length(30.0, "m")),
        ("0.5km", Length(0.5, "km")),
        (" 0.01 deg ", Length(0.01, "deg")),
        ("3 PX", Length(3.0, "px")),
        ("1e2 m", Length(100.0, "m")),
        (".5 km", Length(0.5, "km")),
    ],
)
def test_parse_length(text: str, expected: Length) -> None:
    assert parse_length(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("30 meters", "unknown unit 'meters'"),
        ("0 m", "finite number > 0"),
        ("-3 m", "finite number > 0"),
        ("m", "expected a number of pixels or a length"),
    ],
)
def test_parse_length_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_length(text)


@pytest.mark.parametrize(
    ("param", "text", "pixels"),
    [
        ("sigma", "30 m", 1.0),
        ("sigma", "45 m", 1.5),
        ("radius", "0.5 km", 17),  # 16.7 px
        ("radius", "45 m", 2),  # 1.5 px: halves round up
        ("size", "90 m", 3),
        ("size", "100 m", 3),  # 3.3 px
        ("size", "120 m", 5),  # 4 px: ties go to the larger odd size
        ("size", "10 m", 1),
        ("size", "5 px", 5),
    ],
)
def test_projected_metres(param: str, text: str, pixels: float) -> None:
    value, note = resolve_length("k", param, parse_length(text), grid())
    assert value == pixels and type(value) is type(pixels)
    assert note.startswith(f"k {param} {parse_length(text)}")


def test_crs_in_feet() -> None:
    """EPSG:2263 is in US survey feet: 100 ft pixels are 30.48 m."""
    value, _ = resolve_length("gaussian", "sigma", Length(30.48, "m"), grid(100, 100, CRS.from_epsg(2263)))
    assert value == pytest.approx(1.0, rel=1e-5)


def test_geographic_scene_needs_degrees() -> None:
    wgs84 = grid(0.001, 0.001, CRS.from_epsg(4326))
    assert resolve_length("box", "size", Length(0.005, "deg"), wgs84)[0] == 5
    with pytest.raises(KernelError, match=r"is geographic \(degrees\): give it in deg"):
        resolve_length("box", "size", Length(90, "m"), wgs84)
    with pytest.raises(KernelError, match="is projected: give it in m or km"):
        resolve_length("box", "size", Length(0.01, "deg"), grid())
    with pytest.raises(GridError, match="no CRS"):
        resolve_length("box", "size", Length(90, "m"), grid(crs=None))
    with pytest.raises(KernelError, match="needs a scene"):
        resolve_length("box", "size", Length(90, "m"), None)


def test_non_square_pixels() -> None:
    # both axes give the same odd size: accepted
    assert resolve_length("box", "size", Length(90, "m"), grid(30, 31))[0] == 3
    # sigma within 1 %: the mean, and the note says so
    value, note = resolve_length("gaussian", "sigma", Length(30, "m"), grid(30, 30.1))
    assert value == pytest.approx((1 + 30 / 30.1) / 2) and note.endswith("(mean of x and y)")
    with pytest.raises(KernelError, match=r"1 px along x but 0.5 px along y \(pixels 30 x 60 are not square"):
        resolve_length("gaussian", "sigma", Length(30, "m"), grid(30, 60))
    with pytest.raises(KernelError, match="5 px along x but 3 px along y"):
        resolve_length("median", "size", Length(150, "m"), grid(30, 60))


def test_pipeline_model_with_units(tmp_path: Path) -> None:
    path = make_project(tmp_path, kernel={"name": "gaussian", "sigma": "30 m", "radius": "0.1 km"})
    model = load_pipeline(path)
    assert model.uses_map_units()
    assert model.model_dump(mode="json")["kernel"] == {
        "name": "gaussian",
        "sigma": "30 m",
        "radius": "0.1 km",
    }
    with pytest.raises(ConfigError, match="in map units and needs a scene"):
        build_steps(model)
    [step] = build_steps(model, grid())
    assert step.kernel.describe() == "gaussian(sigma=1.0, radius=3) 7x7"
    assert unit_notes(model, grid()) == ["gaussian sigma 30 m = 1 px", "gaussian radius 0.1 km = 3 px"]


def test_run_with_units_equals_pixels(tmp_path: Path) -> None:
    """sigma: 30 m on 30 m pixels gives the same bytes as sigma: 1; the conversion is printed."""
    (tmp_path / "px").mkdir()
    (tmp_path / "m").mkdir()
    pixels = make_project(tmp_path / "px", output={"path": "out.tif"})
    metres = make_project(
        tmp_path / "m", kernel={"name": "gaussian", "sigma": "30 m"}, output={"path": "out.tif"}
    )
    [report_px] = run_pipeline(pixels)
    result = CliRunner().invoke(app, ["run", str(metres), "-q", "--report", str(tmp_path / "run.json")])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith(" s); gaussian sigma 30 m = 1 px\n")
    assert '"gaussian sigma 30 m = 1 px"' in (tmp_path / "run.json").read_text()
    with rasterio.open(report_px.output) as a, rasterio.open(tmp_path / "m" / "out.tif") as b:
        assert np.array_equal(a.read(), b.read())
        assert b.tags()["GEOMASK_KERNEL"] == "convolve gaussian(sigma=1.0, radius=3) 7x7"


def test_run_geographic_scene_with_metres_exit_2(tmp_path: Path) -> None:
    scene = tmp_path / "wgs84.tif"
    profile = {"driver": "GTiff", "width": 32, "height": 32, "count": 1, "dtype": "uint8"}
    transform = Affine(0.001, 0.0, -74.0, 0.0, -0.001, 40.0)
    with rasterio.open(scene, "w", crs="EPSG:4326", transform=transform, **profile) as dst:
        dst.write(np.arange(32 * 32, dtype=np.uint8).reshape(1, 32, 32))
    path = make_project(tmp_path, input="wgs84.tif", mask=None, kernel={"name": "box", "size": "90 m"})
    result = CliRunner().invoke(app, ["run", str(path), "-q"])
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: kernel 'box': size 90 m is in metres but the scene's CRS (EPSG:4326)"
    )
    path = make_project(tmp_path, input="wgs84.tif", mask=None, kernel={"name": "box", "size": "0.003 deg"})
    result = CliRunner().invoke(app, ["run", str(path), "-q"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.rstrip().endswith("; box size 0.003 deg = 3 px")
