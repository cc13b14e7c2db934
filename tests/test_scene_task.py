"""write_scene (one scene's output under its lock) and the path check the workers run."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from _fixtures_cli import make_scene

from geomask.executors.reach import unreachable
from geomask.kernels import get
from geomask.scene_task import SceneTask, absolute_paths, write_scene
from geomask.spec import OutputSpec, RunOptions, Step


def _task(tmp_path: Path, **changes: object) -> SceneTask:
    make_scene(tmp_path / "scene.tif", width=64, height=64)
    out = tmp_path / "out" / "o.tif"
    task = SceneTask(
        tmp_path / "scene.tif",
        out,
        OutputSpec(path=out, tags={"GEOMASK_VERSION": "test"}),
        [Step(get("box", size=3))],
        options=RunOptions(scheduler="threads", workers=1),
    )
    return dataclasses.replace(task, **changes)


def test_write_scene_on_a_worker_sweeps_partials_of_any_pid(tmp_path: Path) -> None:
    """Under the lock, a worker removes every temporary file beside the output, even a live PID's
    (another host's writer, killed); the local run keeps a live PID's file."""
    (tmp_path / "out").mkdir()
    live = tmp_path / "out" / f"o.tif.geomask-{os.getpid()}-0123abcd.partial"
    live.write_bytes(b"partial")
    report = write_scene(_task(tmp_path))
    assert report.status == "done" and live.exists()
    report = write_scene(_task(tmp_path, any_pid=True, redo=True))
    assert report.status == "done" and not live.exists()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["o.tif"]


def test_write_scene_skips_a_current_output(tmp_path: Path) -> None:
    task = _task(tmp_path)
    assert write_scene(task).status == "done"
    assert write_scene(task).status == "done"  # no provenance keys to match: redone
    tags = {k: "x" for k in ("VERSION", "PIPELINE_SHA256", "PROFILE_SHA256", "SOURCES_SHA256")}
    tags |= {"INPUT_SIZE": "1", "INPUT_MTIME": "1"}
    current = _task(
        tmp_path, output=OutputSpec(path=task.output.path, tags={f"GEOMASK_{k}": v for k, v in tags.items()})
    )
    assert write_scene(current).status == "done"
    assert write_scene(current).status == "skipped"


def test_unreachable_reports_inputs_masks_and_folders(tmp_path: Path) -> None:
    """What each worker runs: missing files and folders it cannot write, the first few and a count."""
    (tmp_path / "file").write_bytes(b"")
    found, total = unreachable(
        [tmp_path / "a.tif", tmp_path / "b.tif", "s3://bucket/c.tif"],
        [tmp_path / "roi.gpkg"],
        [tmp_path / "file" / "sub" / "o.tif", tmp_path / "ok" / "o.tif"],
    )
    assert total == 4
    assert found == [
        ("input", f"{tmp_path / 'a.tif'}: no such file"),
        ("input", f"{tmp_path / 'b.tif'}: no such file"),
        ("mask", f"{tmp_path / 'roi.gpkg'}: no such file"),
    ]
    assert unreachable([], [], [tmp_path / "file" / "o.tif"]) == (
        [("output", f"{tmp_path / 'file'}: not a folder")],
        1,
    )
    assert not list(tmp_path.glob(".geomask-probe-*"))


def test_absolute_paths_reach_nested_mask_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A step's relative mask path (a pipeline given by a relative path) becomes absolute for a worker."""
    from geomask.masks import VectorSource
    from geomask.masks.algebra import NotSource

    monkeypatch.chdir(tmp_path)
    steps = [Step(get("box", size=3), mask=NotSource(VectorSource("roi.geojson"))), Step(get("box", size=3))]
    there = absolute_paths(steps)
    assert there[0].mask.source.path == str(tmp_path / "roi.geojson")
    assert there[1] is steps[1]  # nothing to change: the same object
    assert absolute_paths([Step(get("box", size=3), mask=VectorSource("/vsis3/b/roi.gpkg"))])[
        0
    ].mask.path == ("/vsis3/b/roi.gpkg")
