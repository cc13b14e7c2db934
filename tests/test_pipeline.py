"""Tests of geomask.pipeline.run_pipeline (the library behind `geomask run`) and geomask.progress."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from _fixtures_cli import corrupt_tiles, make_project, make_scene, roi_mask

from geomask import __version__
from geomask.config import load_pipeline
from geomask.convolve import masked_convolve
from geomask.engine import RunOptions, SceneReport
from geomask.kernels import get
from geomask.pipeline import run_pipeline
from geomask.progress import NullObserver, Observer


class Recorder:
    """An observer that records its events."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def scene_started(self, scene: str, windows: int) -> None:
        self.events.append(("started", windows))

    def window_done(self, scene: str, count: int = 1) -> None:
        self.events.append(("window", count))

    def scene_finished(self, report: SceneReport) -> None:
        self.events.append(("finished", report.status))


def test_observer_protocol() -> None:
    assert isinstance(NullObserver(), Observer)
    assert isinstance(Recorder(), Observer)


def test_run_pipeline_reports_and_tags(tmp_path: Path) -> None:
    path = make_project(tmp_path)
    recorder = Recorder()
    [report] = run_pipeline(path, observer=recorder)
    assert report.status == "done" and report.pixels_selected == 660
    assert recorder.events[0][0] == "started" and recorder.events[-1] == ("finished", "done")
    with rasterio.open(report.output) as dst:
        tags = dst.tags()
    assert tags["GEOMASK_VERSION"] == __version__
    assert tags["GEOMASK_PIPELINE_SHA256"] == load_pipeline(path).digest()
    assert tags["GEOMASK_INPUT_SIZE"] == str((tmp_path / "scene.tif").stat().st_size)


def test_multi_step_equals_sequential_masked_convolve(tmp_path: Path) -> None:
    """steps: [median inside the ROI, sharpen everywhere] == two whole-array masked_convolve calls."""
    path = make_project(
        tmp_path,
        kernel=None,
        mask=None,
        steps=[
            {"mask": {"vector": "roi.geojson"}, "kernel": {"name": "median", "size": 3}},
            {"kernel": {"name": "sharpen", "amount": 0.5}, "boundary": "nearest"},
        ],
    )
    [report] = run_pipeline(path, options=RunOptions(window_size=16))
    with rasterio.open(tmp_path / "scene.tif") as src, rasterio.open(report.output) as dst:
        data, result, nodata = src.read(), dst.read(), src.nodata
    expected = masked_convolve(data, get("median", size=3), roi_mask(data.shape[1:]), nodata=nodata)
    expected = masked_convolve(expected, get("sharpen", amount=0.5), None, mode="nearest", nodata=nodata)
    assert result.dtype == expected.dtype
    assert np.array_equal(result, expected)


def test_continue_on_error(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    make_scene(tmp_path / "in" / "a.tif")
    make_scene(tmp_path / "in" / "b.tif", width=256, height=256, tiled=True)
    corrupt_tiles(tmp_path / "in" / "b.tif")
    path = make_project(tmp_path, input="in/*.tif", output={"path": "out/{stem}.tif"})
    recorder = Recorder()
    reports = run_pipeline(path, continue_on_error=True, observer=recorder)
    assert [r.status for r in reports] == ["done", "failed"]
    assert reports[1].error is not None and "b.tif" in reports[1].error
    assert recorder.events[-1] == ("finished", "failed")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.tif"]
