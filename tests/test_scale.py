"""Scale out: scene-level writers on real dask workers, cluster managers by import path, path checks.

The cluster is the one of tests/test_cluster.py: a `dask scheduler` and two single-threaded
`dask worker` processes on 127.0.0.1 (module-scoped here). Outputs are compared byte for byte with a
threaded run in this process.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from _fixtures_cli import corrupt_tiles, make_project
from test_cluster import Cluster, _batch, _geomask, _outputs, _reference, _start

from geomask.errors import InputError, OutputError
from geomask.executors.reach import check_reachable
from geomask.executors.scene_tasks import scene_level
from geomask.pipeline import run_pipeline
from geomask.spec import RunOptions, SceneReport

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = Cluster(tmp_path_factory.mktemp("scale"))
    try:
        yield running.start(workers=2)
    finally:
        running.stop()


class Events:
    """Records observer events: (kind, scene name, count)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, int]] = []

    def scene_started(self, scene: str, windows: int) -> None:
        self.events.append(("started", Path(scene).name, windows))

    def window_done(self, scene: str, count: int = 1) -> None:
        self.events.append(("window", Path(scene).name, count))

    def scene_finished(self, report: SceneReport) -> None:
        self.events.append((report.status, Path(report.input).name, report.windows_total))


def test_scene_level_threshold(cluster: Cluster) -> None:
    """auto: scenes when at least two and at least as many as worker threads (2 here)."""
    with distributed.Client(cluster.address, timeout=10) as client:
        assert not scene_level(client, RunOptions(), 1)
        assert scene_level(client, RunOptions(), 2)
        assert not scene_level(client, RunOptions(distribute="windows"), 8)
        assert scene_level(client, RunOptions(distribute="scenes"), 1)


def test_scenes_written_by_workers_equal_threads_and_resume(cluster: Cluster, tmp_path: Path) -> None:
    """4 scenes on 2 workers, by scene: the threaded run's bytes; one report per scene; rerun skips."""
    pipeline = _batch(tmp_path, 4)
    reference = _reference(pipeline, window_size=16)
    events = Events()
    options = RunOptions(scheduler=cluster.address, window_size=16)
    reports = run_pipeline(pipeline, options=options, observer=events)
    assert [r.status for r in reports] == ["done"] * 4
    assert _outputs(tmp_path / "out") == reference
    # by scene: all windows of a scene in one event, from its report (window tasks send one each)
    windows = [e for e in events.events if e[0] == "window"]
    assert [(name, count) for _, name, count in windows] == [
        (f"s{i}.tif", r.windows_total) for i, r in enumerate(reports)
    ]
    assert all(r.windows_total > 1 for r in reports)
    again = run_pipeline(pipeline, options=options)
    assert [r.status for r in again] == ["skipped"] * 4
    with distributed.Client(cluster.address, timeout=10) as client:  # nothing of the run stays
        assert not any(str(k).startswith("geomask-") for k in client.who_has())


def test_worker_killed_mid_scene(cluster: Cluster, tmp_path: Path) -> None:
    """SIGKILL the worker writing a scene: the scene is redone on the other one, same bytes, no partial."""
    pipeline = _batch(tmp_path, 4, size=768, mask=None, kernel={"name": "median", "size": 5})
    reference = _reference(pipeline)
    victim = cluster.workers[-1]
    run = _start(pipeline, cluster.address)
    try:
        killed_while_running = False
        with distributed.Client(cluster.address, timeout=10) as client:
            pids = client.run(os.getpid)
            address = next(a for a, pid in pids.items() if os.getpgid(pid) == victim.pid)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and run.poll() is None:
                busy = client.processing().get(address, ())
                if any(str(k).startswith("geomask-scene-") for k in busy):
                    time.sleep(0.3)  # into the scene: its partial file is being written
                    os.killpg(victim.pid, signal.SIGKILL)
                    killed_while_running = run.poll() is None
                    break
                time.sleep(0.02)
        out, err = run.communicate(timeout=180)
    finally:
        if run.poll() is None:
            run.kill()
    assert killed_while_running, "the run ended before a worker could be killed"
    assert run.returncode == 0, err
    assert out.count("done    ") == 4
    assert _outputs(tmp_path / "out") == reference  # only the outputs: no partial, no lock file
    victim.wait(10)
    cluster.workers.remove(victim)
    cluster.add_worker()
    cluster.wait_for_workers(2)


def test_continue_on_error_per_scene(cluster: Cluster, tmp_path: Path) -> None:
    """A corrupt scene fails alone (naming its worker); a rerun skips the finished ones."""
    pipeline = _batch(tmp_path, 3, size=300)
    corrupt_tiles(tmp_path / "in" / "s1.tif")
    options = RunOptions(scheduler=cluster.address, window_size=64, distribute="scenes")
    reports = run_pipeline(pipeline, options=options, continue_on_error=True)
    assert [r.status for r in reports] == ["done", "failed", "done"]
    assert "s1.tif" in (reports[1].error or "") and "on dask worker tcp://127.0.0.1:" in (
        reports[1].error or ""
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["s0.tif", "s2.tif"]
    again = run_pipeline(pipeline, options=options, continue_on_error=True)
    assert [r.status for r in again] == ["skipped", "failed", "skipped"]


def _profile(tmp_path: Path, cluster: dict[str, object]) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({"cluster": cluster, "window_size": 64}))
    return path


LOCAL = {
    "factory": "distributed.LocalCluster",
    "options": {"n_workers": 0, "threads_per_worker": 1, "processes": True, "dashboard_address": ":0"},
    "scale": {"workers": 2},
}


def test_cluster_factory_local_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`cluster: {factory: distributed.LocalCluster, ...}` through the command line: threaded bytes."""
    _batch(tmp_path, 3, size=300)
    monkeypatch.chdir(tmp_path)
    reference = _reference(Path("pipeline.yaml"), window_size=64)
    done = _geomask(
        "pipeline.yaml", "--profile", str(_profile(tmp_path, LOCAL)), "-q", cwd=tmp_path, timeout=180
    )
    assert done.returncode == 0, done.stderr
    assert _outputs(tmp_path / "out") == reference


@pytest.mark.parametrize(
    ("cluster", "message"),
    [
        ({"factory": "no_such_package.Cluster"}, "cannot import no_such_package"),
        ({"factory": "distributed.NoSuchCluster"}, "distributed has no NoSuchCluster"),
        ({**LOCAL, "options": {"n_workers": "many"}}, "refused its options ['n_workers']"),
    ],
)
def test_cluster_factory_errors_are_one_line(
    tmp_path: Path, cluster: dict[str, object], message: str
) -> None:
    pipeline = make_project(tmp_path)
    done = _geomask(str(pipeline), "--profile", str(_profile(tmp_path, cluster)), timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: cluster.factory ") and message in done.stderr
    assert done.stderr.count("\n") == 1


def test_paths_only_this_process_sees_name_the_worker(cluster: Cluster, tmp_path: Path) -> None:
    """/proc/self/fd/N is a file (or folder) here and nothing on a worker: one line names the worker."""
    (tmp_path / "scene.tif").write_bytes(b"x")
    (tmp_path / "out").mkdir()
    fd_file, fd_dir = 901, 902  # high numbers: no such descriptor in a worker process
    os.dup2(opened := os.open(tmp_path / "scene.tif", os.O_RDONLY), fd_file)
    os.close(opened)
    os.dup2(opened := os.open(tmp_path / "out", os.O_RDONLY), fd_dir)
    os.close(opened)
    try:
        here = f"/proc/self/fd/{fd_file}"
        with distributed.Client(cluster.address, timeout=10) as client:
            with pytest.raises(
                InputError, match=rf"^{here}: no such file on dask worker tcp://127\.0\.0\.1:\d+: "
            ):
                check_reachable(client, inputs=[here], files=[], outputs=[])
            with pytest.raises(InputError, match=r"no such file on dask worker .* the mask files"):
                check_reachable(client, inputs=[tmp_path / "scene.tif"], files=[here], outputs=[])
            with pytest.raises(
                OutputError, match=r"/proc/self/fd: not writable \(.*\) on dask worker tcp://"
            ):
                check_reachable(client, inputs=[], files=[], outputs=[f"/proc/self/fd/{fd_dir}/o.tif"])
            check_reachable(
                client, inputs=[tmp_path / "scene.tif"], files=[], outputs=[tmp_path / "out" / "o.tif"]
            )
    finally:
        os.close(fd_file)
        os.close(fd_dir)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("distribute", ["scenes", "windows"])
def test_product_bands_on_workers_equal_threads(cluster: Cluster, tmp_path: Path, distribute: str) -> None:
    """A product's band files (masks from its other bands and assets) on the workers, by scene (each
    band written by a worker) and by window: the threaded run's bytes; a rerun skips every band."""
    from test_product_bands import make_product, write_pipeline

    pipeline = write_pipeline(tmp_path, make_product(tmp_path / "scene"))
    threaded = run_pipeline(pipeline, options=RunOptions(scheduler="threads", window_size=16))
    assert [r.status for r in threaded] == ["done"] * 3
    reference = _tree(tmp_path / "out")
    for path in (tmp_path / "out").rglob("*.tif"):
        path.unlink()
    options = RunOptions(scheduler=cluster.address, window_size=16, distribute=distribute)  # type: ignore[arg-type]
    reports = run_pipeline(pipeline, options=options)
    assert [(r.input, r.output, r.status) for r in reports] == [(r.input, r.output, "done") for r in threaded]
    assert _tree(tmp_path / "out") == reference
    assert [r.status for r in run_pipeline(pipeline, options=options)] == ["skipped"] * 3
