"""geomask.executors.scenes: two small scenes in flight, events and commits in input order."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import rasterio
from _fixtures_cli import make_project, make_scene

from geomask.errors import InputError
from geomask.executors.scenes import all_computed, run_in_order
from geomask.pipeline import run_pipeline
from geomask.progress import Observer
from geomask.spec import RunOptions, SceneReport


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def scene_started(self, scene: str, windows: int) -> None:
        self.events.append(("started", scene))

    def window_done(self, scene: str, count: int = 1) -> None:
        self.events.append(("window", scene))

    def scene_finished(self, report: SceneReport) -> None:
        self.events.append(("finished", report.input))


def _scene(name: str, observer: Observer, windows: int = 2) -> SceneReport:
    observer.scene_started(name, windows)
    for _ in range(windows):
        observer.window_done(name)
    report = SceneReport(name, name + ".out", "done")
    observer.scene_finished(report)
    return report


def test_second_scene_runs_ahead_and_events_stay_in_order() -> None:
    """Scene b starts while a is still running (a waits for it), yet the observer sees a, then b."""
    b_started = threading.Event()

    def run_one(name: str, observer: Observer) -> SceneReport:
        if name == "a":
            all_computed()  # as process_scene once a scene's last window is computed
            assert b_started.wait(10), "scene b did not start while a was running"
        else:
            b_started.set()
        return _scene(name, observer)

    recorder = Recorder()
    reports = run_in_order(["a", "b", "c"], run_one, recorder, small=lambda _: True)
    assert [r.input for r in reports] == ["a", "b", "c"]
    expected = [e for n in "abc" for e in [("started", n), ("window", n), ("window", n), ("finished", n)]]
    assert recorder.events == expected


def test_next_scene_starts_once_the_one_before_has_computed() -> None:
    """Two scenes in flight are offset: b starts when a has computed its windows (a then encodes
    while b computes), not beside a's own planning; a scene that ends without saying so (a failed
    report) still lets the next one start."""
    log: list[str] = []

    def run_one(name: str, observer: Observer) -> SceneReport:
        log.append(f"{name} started")
        if name == "a":
            time.sleep(0.2)  # planning and computing
            log.append("a computed")
            all_computed()
            time.sleep(0.2)  # encoding, beside b
        elif name == "b":
            return SceneReport(name, name + ".out", "failed")  # never says computed
        return _scene(name, observer)

    run_in_order(["a", "b", "c"], run_one, Recorder(), small=lambda _: True)
    assert log.index("b started") > log.index("a computed")
    assert log[-1] == "c started"


def test_large_scene_runs_alone() -> None:
    running: list[str] = []
    overlap: list[tuple[str, ...]] = []

    def run_one(name: str, observer: Observer) -> SceneReport:
        running.append(name)
        overlap.append(tuple(running))
        try:
            return _scene(name, observer)
        finally:
            running.remove(name)

    run_in_order(["a", "big", "c"], run_one, Recorder(), small=lambda n: n != "big")
    assert all(len(names) == 1 for names in overlap if "big" in names)


def test_failure_stops_the_scene_ahead_before_it_commits() -> None:
    """Scene a fails: b, which ran ahead to its last window, stops there and never commits."""
    at_last_window = threading.Event()
    committed: list[str] = []

    def run_one(name: str, observer: Observer) -> SceneReport:
        if name == "a":
            all_computed()
            assert at_last_window.wait(10)
            raise InputError("a is broken")
        observer.scene_started(name, 1)
        at_last_window.set()
        observer.window_done(name)  # waits here until first in line, or raises SceneStopped
        committed.append(name)
        return SceneReport(name, name + ".out", "done")

    recorder = Recorder()
    with pytest.raises(InputError, match="a is broken"):
        run_in_order(["a", "b"], run_one, recorder, small=lambda _: True)
    assert committed == []
    assert recorder.events == []  # b's events were held: a never started, b never became first


def test_batch_outputs_equal_one_scene_at_a_time(tmp_path: Path) -> None:
    """A batch run with scenes in flight together writes what a synchronous run writes."""
    (tmp_path / "in").mkdir()
    for i in range(4):
        make_scene(tmp_path / "in" / f"s{i}.tif", width=96 + 16 * i, height=64)
    path = make_project(tmp_path, input="in/*.tif", output={"path": "out/{stem}.tif"})
    reports = run_pipeline(path, options=RunOptions(scheduler="threads", workers=2))
    assert [Path(r.input).name for r in reports] == [f"s{i}.tif" for i in range(4)]
    ours = {r.output: _read(Path(r.output)) for r in reports}
    for r in run_pipeline(path, overwrite=True, options=RunOptions(scheduler="synchronous")):
        assert (ours[r.output] == _read(Path(r.output))).all()


def _read(path: Path):  # type: ignore[no-untyped-def]
    with rasterio.open(path) as ds:
        return ds.read()


def test_small_scenes_share_the_encoding_threads_and_a_large_one_does_not() -> None:
    """A small scene's output is written under shared_encoding(2) (NUM_THREADS capped to half the
    cores); a large scene, which runs alone, keeps the whole machine."""
    from geomask.output import writer

    seen: dict[str, int] = {}

    def run_one(name: str, observer: Observer) -> SceneReport:
        seen[name] = writer._SCENES_ENCODING.get()
        return _scene(name, observer)

    run_in_order(["small", "large"], run_one, Recorder(), small=lambda name: name == "small")
    assert seen == {"small": 2, "large": 1}
