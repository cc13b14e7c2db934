"""`rio geomask run` through the rasterio.rio_plugins entry point (a real `rio` process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import rasterio
from _fixtures_cli import make_project

RIO = Path(sys.executable).with_name("rio")


@pytest.mark.slow
@pytest.mark.skipif(not RIO.exists(), reason=f"needs the rio command beside the interpreter ({RIO})")
def test_rio_geomask_run(tmp_path):
    pipeline = make_project(tmp_path)
    done = subprocess.run(
        [str(RIO), "geomask", "run", str(pipeline), "--quiet"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "scene.denoised.tif" in done.stdout
    with rasterio.open(tmp_path / "out" / "scene.denoised.tif") as ds:
        assert ds.tags()["GEOMASK_PIPELINE"] == "pipeline"
    missing = subprocess.run(
        [str(RIO), "geomask", "run", str(tmp_path / "nope.yaml")], capture_output=True, text=True, timeout=120
    )
    assert missing.returncode == 2 and missing.stderr.startswith("error: ")
