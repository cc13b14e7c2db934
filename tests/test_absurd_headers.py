"""Inputs whose header promises absurd work: refused from the header, or read within window memory.

The files are tiny (sparse: ``SPARSE_OK=TRUE``, no block written) but declare 10^10 pixels, one
32768 x 32768 tile or strips of 50000 rows of 100000 pixels. A block larger than
``geomask.io.MAX_BLOCK_BYTES`` is refused before any pixel is read (GDAL would decode it whole for
every window); a huge scene of small blocks is read window by window like any other.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import rasterio
from _fixtures_cli import SCENE_CRS, SCENE_TRANSFORM, make_project
from typer.testing import CliRunner

from geomask.cli import app
from geomask.engine.plan import plan_scene
from geomask.engine.task import compute_window
from geomask.io import MAX_BLOCK_BYTES, block_problem, inspect_scene
from geomask.kernels import get as get_kernel
from geomask.spec import OutputSpec, RunOptions, Step

runner = CliRunner()


def _sparse(path: Path, side: int, **layout: Any) -> Path:
    """A ``side`` x ``side`` uint8 GeoTIFF with no block written (a few hundred bytes to a few MB)."""
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": side,
        "height": side,
        "count": 1,
        "dtype": "uint8",
        "crs": SCENE_CRS,
        "transform": SCENE_TRANSFORM,
        "compress": "deflate",
        "sparse_ok": True,
    }
    with rasterio.open(path, "w", **profile, **layout):
        pass
    return path


def _huge_tile(path: Path) -> Path:
    return _sparse(path, 32768, tiled=True, blockxsize=32768, blockysize=32768)


def _long_strips(path: Path) -> Path:
    return _sparse(path, 100_000, blockysize=50_000)


def _project_on(tmp_path: Path, scene: Path) -> Path:
    pipeline = make_project(tmp_path)
    pipeline.write_text(pipeline.read_text().replace("scene.tif", scene.name))
    return pipeline


def test_huge_tile_or_strips_are_refused_by_run_from_the_header(tmp_path: Path) -> None:
    for make, block in ((_huge_tile, "32768x32768"), (_long_strips, "100000x50000")):
        scene = make(tmp_path / f"{make.__name__}.tif")
        assert scene.stat().st_size < 10_000
        pipeline = _project_on(tmp_path, scene)
        result = runner.invoke(app, ["run", str(pipeline), "-q"])
        assert result.exit_code == 2, result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"error: {scene}: the internal blocks (tiles or strips) of this ")
        assert f"are {block} pixels" in result.stderr
        assert f"more than the {MAX_BLOCK_BYTES >> 20} MiB" in result.stderr
        assert f"gdal_translate -co TILED=YES -co COMPRESS=DEFLATE {scene} tiled.tif" in result.stderr
        assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_validate_reports_a_scene_of_huge_blocks(tmp_path: Path) -> None:
    scene = _huge_tile(tmp_path / "big.tif")
    pipeline = _project_on(tmp_path, scene)
    result = runner.invoke(app, ["validate", str(pipeline)])
    assert result.exit_code == 2
    assert f"input: {scene}: the internal blocks (tiles or strips)" in result.stdout
    assert "1,024 MiB each decoded" in result.stdout


def test_one_strip_is_read_row_by_row_so_it_is_not_refused(tmp_path: Path) -> None:
    """GDAL reads a file of a single strip a few rows at a time (its block is one row)."""
    scene = _sparse(tmp_path / "one_strip.tif", 100_000, blockysize=100_000)
    with rasterio.open(scene) as ds:
        assert ds.block_shapes[0] == (1, 100_000)
        assert block_problem(ds) is None


def test_huge_sparse_scene_of_small_tiles_is_read_window_by_window(tmp_path: Path) -> None:
    """10^10 declared pixels in 256 x 256 tiles: a window costs what its size says."""
    scene = _sparse(tmp_path / "giant.tif", 100_000, tiled=True, blockxsize=256, blockysize=256)
    assert scene.stat().st_size < 2_000_000
    info = inspect_scene(scene)
    assert info.grid.shape == (100_000, 100_000) and info.block_shape == (256, 256)
    options = RunOptions(window_size=512)
    plan = plan_scene(
        scene, OutputSpec(tmp_path / "o.tif"), [Step(get_kernel("box", size=3))], options=options
    )
    assert len(plan.windows) == 196 * 196
    result = compute_window(plan.job, plan.windows[len(plan.windows) // 2])
    assert result.data is not None and result.data.shape == (1, 512, 512)
    assert result.data.nbytes == 512 * 512


_PEAK = (
    "import resource, sys\n"
    "from geomask.cli import app\n"
    "try:\n"
    "    app()\n"
    "finally:\n"
    "    print('peak_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
)


def _validate_peak_kib(pipeline: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, "validate", str(pipeline)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "GDAL_CACHEMAX": "64"},
    )
    return int(done.stderr.rsplit("peak_kib", 1)[1])


@pytest.mark.slow
def test_validate_of_absurd_headers_stays_within_a_few_mb(tmp_path: Path) -> None:
    """validate reads headers only: its peak memory on 10^10-pixel or 1 GiB-block scenes is that of
    a 64 x 48 scene, within a few MB (measured: 2.5 to 5.4 MB more, of about 260 MB)."""
    small = tmp_path / "small"
    small.mkdir()
    baseline = _validate_peak_kib(make_project(small))
    for make in (_huge_tile, _long_strips):
        folder = tmp_path / make.__name__
        folder.mkdir()
        pipeline = _project_on(folder, make(folder / "scene.tif"))
        assert _validate_peak_kib(pipeline) - baseline < 16 * 1024
    folder = tmp_path / "giant"
    folder.mkdir()
    scene = _sparse(folder / "scene.tif", 100_000, tiled=True, blockxsize=256, blockysize=256)
    assert _validate_peak_kib(_project_on(folder, scene)) - baseline < 16 * 1024
