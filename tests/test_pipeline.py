"""Tests of geomask.pipeline.run_pipeline (the library behind `geomask run`) and geomask.progress."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from _fixtures_cli import corrupt_tiles, make_project, make_roi, make_scene, roi_mask, write_yaml

import geomask.fingerprint
import geomask.pipeline
import geomask.provenance
from geomask import __version__
from geomask.config import load_pipeline
from geomask.convolve import masked_convolve
from geomask.errors import OutputExistsError
from geomask.fingerprint import file_fingerprint, sidecars, sources_digest
from geomask.kernels import get
from geomask.output.check import read_tags
from geomask.pipeline import run_pipeline
from geomask.progress import NullObserver, Observer
from geomask.provenance import profile_digest
from geomask.spec import RunOptions, SceneReport


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
    assert tags["GEOMASK_PROFILE_SHA256"] == profile_digest()


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


# --- resume ----------------------------------------------------------------------------------------


def _statuses(path: Path, **kwargs: object) -> list[str]:
    return [r.status for r in run_pipeline(path, **kwargs)]  # type: ignore[arg-type]


def test_rerun_skips_current_output(tmp_path: Path) -> None:
    path = make_project(tmp_path)
    output = tmp_path / "out" / "scene.denoised.tif"
    recorder = Recorder()
    assert _statuses(path) == ["done"]
    mtime = output.stat().st_mtime_ns
    [report] = run_pipeline(path, observer=recorder, options=RunOptions(window_size=16, workers=1))
    assert report.status == "skipped" and report.output == str(output)
    assert recorder.events == [("finished", "skipped")]
    assert output.stat().st_mtime_ns == mtime
    assert _statuses(path, overwrite=True) == ["done"]
    assert output.stat().st_mtime_ns != mtime


def test_changed_input_profile_or_version_redoes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_project(tmp_path)
    scene = tmp_path / "scene.tif"
    assert _statuses(path) == ["done"]
    stat = scene.stat()
    os.utime(scene, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert _statuses(path) == ["done"]
    assert _statuses(path, creation_options={"PREDICTOR": "2"}) == ["done"]
    assert _statuses(path, creation_options={"PREDICTOR": "2", "NUM_THREADS": "2"}) == ["skipped"]
    assert _statuses(
        path, creation_options={"PREDICTOR": "2"}, options=RunOptions(gdal_options={"X": "1"})
    ) == ["done"]
    assert _statuses(path) == ["done"]
    monkeypatch.setattr(geomask.provenance, "__version__", "0.0.0.test")
    assert _statuses(path) == ["done"]
    assert _statuses(path) == ["skipped"]


def test_foreign_or_unreadable_output_is_an_error_without_overwrite(tmp_path: Path) -> None:
    path = make_project(tmp_path)
    output = tmp_path / "out" / "scene.denoised.tif"
    output.parent.mkdir()
    make_scene(output)  # a GeoTIFF without geomask tags
    with pytest.raises(OutputExistsError, match="did not write"):
        run_pipeline(path)
    assert read_tags(output) is not None
    output.write_bytes(b"garbage")
    assert read_tags(output) is None
    with pytest.raises(OutputExistsError, match="--overwrite"):
        run_pipeline(path)
    assert output.read_bytes() == b"garbage"
    assert _statuses(path, overwrite=True) == ["done"]


def test_truncated_output_does_not_read(tmp_path: Path) -> None:
    path = make_project(tmp_path, output={"path": "out/scene.tif", "compress": "none"})
    [report] = run_pipeline(path)
    output = Path(report.output)
    assert read_tags(output) is not None
    output.write_bytes(output.read_bytes()[: output.stat().st_size // 2])
    assert read_tags(output) is None


def test_stale_partial_files_are_removed(tmp_path: Path) -> None:
    path = make_project(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = out / f"scene.denoised.tif.geomask-{int(dead.stdout)}-0123abcd.partial"
    live = out / f"scene.denoised.tif.geomask-{os.getpid()}-0123abcd.partial"
    other = out / "other.tif.geomask-1-0123abcd.partial"
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    assert _statuses(path) == ["done"]
    assert sorted(p.name for p in out.iterdir()) == sorted(["scene.denoised.tif", live.name, other.name])


# --- provenance covers every file that shapes an output ---------------------------------------------


def _keep_stat(path: Path, edit: Callable[[], object]) -> None:
    """Run ``edit`` on ``path``, then give it back its modification time (an edit within the second)."""
    stat = path.stat()
    edit()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_moved_mask_vertex_redoes_the_scene_and_pixels_follow(tmp_path: Path) -> None:
    path = make_project(tmp_path)
    roi = tmp_path / "roi.geojson"
    output = tmp_path / "out" / "scene.denoised.tif"
    assert _statuses(path) == ["done"]
    assert _statuses(path) == ["skipped"]
    moved = (10, 8, 20, 30)
    _keep_stat(roi, lambda: make_roi(roi, moved))
    [report] = run_pipeline(path)
    assert report.status == "done" and report.pixels_selected == int(roi_mask((48, 64), moved).sum())
    with rasterio.open(tmp_path / "scene.tif") as src, rasterio.open(output) as dst:
        before, after = src.read(), dst.read()
    outside = ~roi_mask(before.shape[1:], moved)
    assert np.array_equal(before[:, outside], after[:, outside])
    assert _statuses(path) == ["skipped"]


def _class_raster(path: Path, value: int) -> None:
    with rasterio.open(tmp_scene := path.with_name("scene.tif")) as src:
        profile = {**src.profile, "count": 1, "dtype": "uint8", "nodata": None}
        shape = src.shape
    del tmp_scene
    classes = np.zeros(shape, np.uint8)
    classes[5:20, 5:30] = value
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(classes[None])


@pytest.mark.parametrize("edited", ["class raster", "support vector", "shapefile .dbf"])
def test_nested_mask_and_support_files_are_fingerprinted(tmp_path: Path, edited: str) -> None:
    path = make_project(tmp_path)
    _class_raster(tmp_path / "classes.tif", 1)
    make_roi(tmp_path / "support.geojson", (0, 0, 50, 40))
    gpd.read_file(tmp_path / "roi.geojson").to_file(tmp_path / "roi.shp")
    mask = {
        "grow": 1,
        "mask": {"any": [{"not": {"raster": "classes.tif", "values": [1]}}, {"vector": "roi.shp"}]},
    }
    document = {
        "input": "scene.tif",
        "steps": [
            {"kernel": {"name": "box", "size": 3}, "mask": mask, "support": {"vector": "support.geojson"}}
        ],
        "output": {"path": "out/{stem}.tif"},
    }
    path = write_yaml(tmp_path / "nested.yaml", document)
    assert _statuses(path) == ["done"]
    assert _statuses(path) == ["skipped"]
    if edited == "class raster":
        _keep_stat(tmp_path / "classes.tif", lambda: _class_raster(tmp_path / "classes.tif", 2))
    elif edited == "support vector":
        _keep_stat(
            tmp_path / "support.geojson", lambda: make_roi(tmp_path / "support.geojson", (0, 0, 50, 41))
        )
    else:
        dbf = tmp_path / "roi.dbf"
        _keep_stat(dbf, lambda: dbf.write_bytes(dbf.read_bytes().replace(b"1", b"2")))
    assert _statuses(path) == ["done"]
    assert _statuses(path) == ["skipped"]


def test_remote_mask_file_has_no_fingerprint(tmp_path: Path) -> None:
    assert sources_digest(["https://example.com/roi.geojson"]) is None
    assert sources_digest([tmp_path / "missing.geojson"]) is None
    assert sources_digest([]) is not None


def test_fingerprint_content_below_the_limit_stat_above(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "roi.geojson"
    file.write_bytes(b"aaaa")
    first = file_fingerprint(file)
    _keep_stat(file, lambda: file.write_bytes(b"bbbb"))
    assert first is not None and first.startswith("sha256:") and file_fingerprint(file) != first
    monkeypatch.setattr(geomask.fingerprint, "HASH_LIMIT", 2)
    stat = file.stat()
    assert file_fingerprint(file) == f"stat:4:{stat.st_mtime_ns}"


def test_sidecars_of_shapefiles_and_rasters(tmp_path: Path) -> None:
    for name in ("a.shp", "a.DBF", "a.shx", "a.prj", "a.tif", "a.tif.aux.xml", "a.tfw", "ab.dbf", "a.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in sidecars(tmp_path / "a.shp")] == ["a.DBF", "a.prj", "a.shx", "a.tfw"]
    assert [p.name for p in sidecars(tmp_path / "a.tif")] == [
        "a.DBF",
        "a.prj",
        "a.shx",
        "a.tfw",
        "a.tif.aux.xml",
    ]
    before = sources_digest([tmp_path / "a.shp"])
    (tmp_path / "a.cpg").write_bytes(b"UTF-8")
    assert sources_digest([tmp_path / "a.shp"]) != before


@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_one_window_pool_per_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scheduler: str) -> None:
    """The scenes of a run share one pool (a process pool starts once, not per scene); results as ever."""
    (tmp_path / "in").mkdir()
    for name in ("a", "b", "c"):
        make_scene(tmp_path / "in" / f"{name}.tif")
    path = make_project(tmp_path, input="in/*.tif", output={"path": "out/{stem}.tif"})
    started = []
    module = sys.modules[run_pipeline.__module__]  # the module of the function called below
    real = module.window_pool
    monkeypatch.setattr(module, "window_pool", lambda o: started.append(o) or real(o))
    reports = run_pipeline(path, options=RunOptions(scheduler=scheduler, workers=2, window_size=32))
    assert [r.status for r in reports] == ["done"] * 3
    assert [o.scheduler for o in started] == [scheduler]
    pixels = [_pixels(Path(r.output)) for r in reports]
    expected = run_pipeline(path, overwrite=True, options=RunOptions(scheduler="synchronous"))
    assert all(np.array_equal(p, _pixels(Path(r.output))) for p, r in zip(pixels, expected, strict=True))
    assert [r.status for r in run_pipeline(path)] == ["skipped"] * 3  # outputs current: no pool started
    assert [o.scheduler for o in started] == [scheduler, "synchronous"]


def _pixels(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def test_geopackage_edits_still_in_its_wal_redo_the_scene(tmp_path: Path) -> None:
    """An editor (QGIS) holding a GeoPackage open keeps its edits in ``roi.gpkg-wal``: the .gpkg
    bytes stay the same, GDAL reads the edits. A rerun said "up to date" and kept the old pixels."""
    import sqlite3

    import shapely
    from _fixtures_cli import SCENE_CRS, SCENE_TRANSFORM

    make_scene(tmp_path / "scene.tif")
    (x0, y0), (x1, y1) = SCENE_TRANSFORM * (4, 4), SCENE_TRANSFORM * (20, 30)
    boxes = [shapely.box(x0, y1, x1, y0), shapely.box(x0 + 900, y1, x1 + 900, y0)]
    gpd.GeoDataFrame({"k": [1, 2]}, geometry=boxes, crs=SCENE_CRS).to_file(tmp_path / "roi.gpkg", layer="roi")
    with sqlite3.connect(tmp_path / "roi.gpkg") as db:
        db.execute("PRAGMA journal_mode=WAL")
    pipeline = make_project(tmp_path, mask={"vector": "roi.gpkg", "where": "k = 1"})
    [first] = run_pipeline(pipeline)
    db = sqlite3.connect(tmp_path / "roi.gpkg")
    try:
        for name in ("ST_IsEmpty", "ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY"):  # GeoPackage triggers
            db.create_function(name, 1, lambda _: 0)
        db.execute("UPDATE roi SET k = 1")
        db.commit()  # into roi.gpkg-wal, not roi.gpkg, while this connection stays open
        assert (tmp_path / "roi.gpkg-wal").stat().st_size > 0
        [second] = run_pipeline(pipeline)
    finally:
        db.close()
    assert second.status == "done" and second.pixels_selected == 2 * first.pixels_selected > 0, (
        first,
        second,
    )
