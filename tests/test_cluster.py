"""geomask on dask.distributed: real `dask scheduler` / `dask worker` processes on 127.0.0.1.

The module's fixture starts one scheduler and two single-threaded workers (each `dask worker` in its
own process group, so a test can kill one with everything it started) and always stops them. The
runs go through the command line in a subprocess, as a user would start them, and their outputs
are compared byte for byte with the threaded run's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _fixtures_cli import CONFIGS, corrupt_tiles, make_project, make_roi, make_scene
from conftest import raw_tiles
from typer.testing import CliRunner

from geomask.cli import app
from geomask.config import load_profile
from geomask.config.build import build_run_options
from geomask.errors import RunError
from geomask.executors.distributed import connect, dashboard_link
from geomask.pipeline import run_pipeline
from geomask.spec import RunOptions, SceneReport

pytestmark = [pytest.mark.cluster, pytest.mark.slow]  # real scheduler/worker processes

distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")

BIN = Path(sys.executable).parent
DASK = BIN / "dask"
GEOMASK = BIN / "geomask"
if not DASK.exists() or not GEOMASK.exists():  # pragma: no cover - a broken environment
    pytest.skip(f"no dask/geomask executables next to {sys.executable}", allow_module_level=True)

ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop ``proc`` and everything in its process group: SIGTERM, then SIGKILL for what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)
    with contextlib.suppress(ProcessLookupError):  # the group may outlive its leader
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


@dataclasses.dataclass
class Cluster:
    """A scheduler and its workers, started as separate processes."""

    folder: Path
    address: str = ""
    scheduler: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = dataclasses.field(default_factory=list)

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.folder / f"{name}.log", "ab")  # noqa: SIM115 - the process owns it
        return subprocess.Popen(
            [str(DASK), *args], stdout=log, stderr=log, env=ENV, start_new_session=True, cwd=self.folder
        )

    def start(self, workers: int) -> Cluster:
        port = _free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        self.scheduler = self._spawn(
            "scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"
        )
        for _ in range(workers):
            self.add_worker()
        self.wait_for_workers(workers)
        return self

    def add_worker(self) -> subprocess.Popen[bytes]:
        worker = self._spawn(
            f"worker{len(self.workers)}",
            "worker",
            self.address,
            "--nworkers",
            "1",
            "--nthreads",
            "1",
            "--host",
            "127.0.0.1",
            "--no-dashboard",
            "--death-timeout",
            "60",
        )
        self.workers.append(worker)
        return worker

    def wait_for_workers(self, n: int, timeout: float = 60) -> None:
        with distributed.Client(self.address, timeout=timeout) as client:
            client.wait_for_workers(n, timeout=timeout)

    def info(self) -> dict[str, Any]:
        with distributed.Client(self.address, timeout=10) as client:
            return client.scheduler_info(n_workers=-1)  # type: ignore[no-any-return]

    def stop(self) -> None:
        for proc in [*self.workers, *([self.scheduler] if self.scheduler else [])]:
            _stop(proc)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One `dask scheduler` and two `dask worker --nworkers 1 --nthreads 1` on free ports."""
    running = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield running.start(workers=2)
    finally:
        running.stop()


def _geomask(*args: str, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GEOMASK), "run", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )


def _start(pipeline: Path, address: str, *extra: str) -> subprocess.Popen[str]:
    """``geomask run PIPELINE -q --scheduler ADDRESS [EXTRA]`` in the background (output captured)."""
    command = [str(GEOMASK), "run", str(pipeline), "-q", "--scheduler", address, *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def _batch(folder: Path, scenes: int, *, size: int = 600, **pipeline: Any) -> Path:
    """``scenes`` tiled scenes in folder/in and a pipeline writing folder/out/{stem}.tif."""
    (folder / "in").mkdir(parents=True)
    for i in range(scenes):
        make_scene(folder / "in" / f"s{i}.tif", width=size, height=size, tiled=True, seed=i)
    pipeline.setdefault("output", {"path": "out/{stem}.tif"})
    return make_project(folder, input="in/*.tif", **pipeline)


def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _reference(pipeline: Path, window_size: int = 1024) -> dict[str, bytes]:
    """The threaded run's outputs (in this process; then removed from out/)."""
    reports = run_pipeline(pipeline, options=RunOptions(scheduler="threads", window_size=window_size))
    assert [r.status for r in reports] == ["done"] * len(reports)
    out = pipeline.parent / "out"
    reference = _outputs(out)
    shutil.rmtree(out)
    return reference


def test_existing_cluster_equals_threads(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four scenes through tcp://HOST:PORT, the shipped cluster profile: the threaded run's bytes.

    The pipeline is given relative to a working directory that is not the workers' one.
    """
    _batch(tmp_path, 4)
    monkeypatch.chdir(tmp_path)  # the same relative paths, so the same pipeline digest in the tags
    reference = _reference(Path("pipeline.yaml"), window_size=16)
    report = tmp_path / "run.json"
    done = _geomask(
        "pipeline.yaml",
        "--profile",
        str(CONFIGS / "cluster.yaml"),
        "--scheduler",
        cluster.address,
        "--window-size",
        "16",
        "--report",
        str(report),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith(f"cluster {cluster.address}: ")
    assert _outputs(tmp_path / "out") == reference
    scenes = json.loads(report.read_text())["scenes"]
    assert [s["status"] for s in scenes] == ["done"] * 4
    assert all(s["windows_total"] == 4 and s["pixels_selected"] == 660 for s in scenes)
    # keys are released when the run ends: nothing of the run stays on the cluster
    with distributed.Client(cluster.address, timeout=10) as client:
        assert not any(str(k).startswith("geomask-") for k in client.who_has())


def test_tile_copy_on_a_cluster(cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inputs tiled 128: the client copies the unchanged tiles compressed, the workers send the rest.

    Same bytes as the threaded run; tiles away from the ROI are the input's compressed bytes.
    """
    (tmp_path / "in").mkdir()
    for i in range(2):
        make_scene(tmp_path / "in" / f"s{i}.tif", width=600, height=520, tiled=True, block=128, seed=i)
    make_project(tmp_path, input="in/*.tif", output={"path": "out/{stem}.tif"})
    monkeypatch.chdir(tmp_path)
    reference = _reference(Path("pipeline.yaml"), window_size=256)
    done = _geomask("pipeline.yaml", "--scheduler", cluster.address, "--window-size", "256", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert _outputs(tmp_path / "out") == reference
    for i in range(2):
        src, out = raw_tiles(tmp_path / "in" / f"s{i}.tif"), raw_tiles(tmp_path / "out" / f"s{i}.tif")
        assert len(src) == len(out) == 25 and out[-1] == src[-1]  # 5 x 5 tiles; the far corner: copied
        assert sum(a == b for a, b in zip(src, out, strict=True)) >= 23


def test_worker_killed_mid_run(cluster: Cluster, tmp_path: Path) -> None:
    """SIGKILL one worker (and its nanny) while windows run: same bytes, the other worker finishes."""
    pipeline = _batch(tmp_path, 6, size=768, mask=None, kernel={"name": "median", "size": 3})
    reference = _reference(pipeline)
    victim = cluster.workers[-1]
    run = _start(pipeline, cluster.address)
    try:
        killed_while_running = False
        with distributed.Client(cluster.address, timeout=10) as client:
            pids = client.run(os.getpid)
            # the worker process is a child of the `dask worker` nanny, in the victim's group
            address = next(a for a, pid in pids.items() if os.getpgid(pid) == victim.pid)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and run.poll() is None:
                if client.processing().get(address):
                    os.killpg(victim.pid, signal.SIGKILL)
                    killed_while_running = run.poll() is None
                    break
                time.sleep(0.02)
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert killed_while_running, "the run ended before a worker could be killed"
    assert run.returncode == 0, err
    assert out.count("done    ") == 6
    assert _outputs(tmp_path / "out") == reference
    victim.wait(10)
    assert address not in cluster.info()["workers"]
    cluster.workers.remove(victim)
    cluster.add_worker()
    cluster.wait_for_workers(2)


class Recorder:
    """An observer that records its events, checking one scene at a time."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def scene_started(self, scene: str, windows: int) -> None:
        self.events.append(("started", Path(scene).name))

    def window_done(self, scene: str, count: int = 1) -> None:
        assert self.events[-1][1] == Path(scene).name, "window of another scene than the current one"
        self.events.append(("window", Path(scene).name))

    def scene_finished(self, report: SceneReport) -> None:
        self.events.append((report.status, Path(report.input).name))


def test_batch_with_a_corrupt_scene_continue_on_error(cluster: Cluster, tmp_path: Path) -> None:
    """In-process run_pipeline on the cluster, by window: the corrupt scene fails alone, events come in
    order (by scene: tests/test_scale.py)."""
    pipeline = _batch(tmp_path, 3)
    corrupt_tiles(tmp_path / "in" / "s1.tif")
    recorder = Recorder()
    options = RunOptions(scheduler=cluster.address, window_size=16, batch=3, distribute="windows")
    reports = run_pipeline(pipeline, options=options, observer=recorder, continue_on_error=True)
    assert [r.status for r in reports] == ["done", "failed", "done"]
    assert "s1.tif" in (reports[1].error or "") and "on dask worker tcp://127.0.0.1:" in (
        reports[1].error or ""
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["s0.tif", "s2.tif"]
    names = [name for kind, name in recorder.events if kind != "window"]
    assert names == ["s0.tif", "s0.tif", "s1.tif", "s1.tif", "s2.tif", "s2.tif"]
    assert [kind for kind, _ in recorder.events].count("window") == 8
    # the rerun, still on the cluster: the finished scenes are skipped
    assert [r.status for r in run_pipeline(pipeline, options=options, continue_on_error=True)] == [
        "skipped",
        "failed",
        "skipped",
    ]
    with pytest.raises(RunError, match=r"s1\.tif: cannot read window"):
        run_pipeline(pipeline, options=options, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["s0.tif", "s2.tif"]


def test_unreachable_scheduler_fails_fast(tmp_path: Path) -> None:
    pipeline = make_project(tmp_path)
    started = time.monotonic()
    done = _geomask(str(pipeline), "--scheduler", "tcp://127.0.0.1:1")
    assert time.monotonic() - started < 20
    assert done.returncode == 1
    assert done.stderr.startswith("error: cannot reach the dask scheduler at tcp://127.0.0.1:1 within 5 s")
    assert done.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_bad_scheduler_option_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["run", str(make_project(tmp_path)), "--scheduler", "tcp://nohost"])
    assert result.exit_code == 2
    assert "or a scheduler address: local-cluster (started for the run) or tcp://HOST:PORT" in result.stderr


def test_scene_a_worker_cannot_open_names_the_worker(cluster: Cluster, tmp_path: Path) -> None:
    """The window task, on a real worker, with a scene path that is not there: the worker is named."""
    from geomask.engine.plan import plan_scene
    from geomask.errors import InputError
    from geomask.executors.distributed import _window_task
    from geomask.kernels import get
    from geomask.spec import OutputSpec, Step

    make_scene(tmp_path / "scene.tif")
    plan = plan_scene(tmp_path / "scene.tif", OutputSpec(path=tmp_path / "o.tif"), [Step(get("box", size=3))])
    gone = dataclasses.replace(plan.job.scene, path=str(tmp_path / "only-on-the-client.tif"))
    job = dataclasses.replace(plan.job, scene=gone)
    with distributed.Client(cluster.address, timeout=10) as client:
        future = client.submit(_window_task, job, (0, 0, 16, 16), pure=False)
        with pytest.raises(
            InputError, match=r"only-on-the-client.tif: no such file.*on dask worker tcp://127"
        ):
            future.result(timeout=30)


def test_scheduler_lost_then_rerun_resumes(tmp_path: Path) -> None:
    """Kill the scheduler mid-batch (by window: this process writes): exit 1 with one line, no
    partial file; a rerun skips finished. (By scene, the workers writing when the cluster is stopped
    leave their temporary files, which the next run removes.)"""
    pipeline = _batch(tmp_path, 8, size=768, mask=None, kernel={"name": "median", "size": 3})
    reference = _reference(pipeline)
    own = Cluster(tmp_path)
    out = tmp_path / "out"
    (tmp_path / "windows.yaml").write_text("distribute: windows\n")
    try:
        own.start(workers=1)
        run = _start(pipeline, own.address, "--profile", str(tmp_path / "windows.yaml"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and run.poll() is None:
            if out.exists() and any(p.suffix == ".tif" for p in out.iterdir()):
                break
            time.sleep(0.02)
        assert own.scheduler is not None
        os.killpg(own.scheduler.pid, signal.SIGKILL)
        stdout, err = run.communicate(timeout=60)
    finally:
        own.stop()
    assert run.returncode == 1, err
    assert err.startswith(f"cluster {own.address}: ")
    error = err.splitlines()[-1]
    assert error.startswith("error: lost the connection to the dask scheduler") and "rerun" in error
    assert err.count("\n") == 2, err
    finished = sorted(p.name for p in out.iterdir())
    assert 1 <= stdout.count("done    ") == len(finished) < 8
    assert all(name.endswith(".tif") for name in finished)  # no temporary file left
    assert _outputs(out) == {n: reference[n] for n in finished}
    statuses = [r.status for r in run_pipeline(pipeline)]  # threads, in this process
    assert statuses.count("skipped") == len(finished) and statuses.count("done") == 8 - len(finished)
    assert _outputs(out) == reference


def test_local_cluster_two_workers(tmp_path: Path) -> None:
    """The shipped local-cluster profile, 2 workers of 1 GiB: sized as asked, the threaded run's bytes."""
    pipeline = _batch(tmp_path, 3, kernel={"name": "median", "size": 3})
    reference = _reference(pipeline)
    profile = load_profile(CONFIGS / "local-cluster.yaml")
    options = build_run_options(profile, workers=2, memory_limit="1 GiB", threads_per_worker=1)
    with connect(options) as client:
        workers = client.scheduler_info(n_workers=-1)["workers"].values()
        assert [(w["nthreads"], w["memory_limit"]) for w in workers] == [(1, 2**30)] * 2
        assert dashboard_link(client) is not None
        reports = run_pipeline(pipeline, options=options, client=client)
    assert [r.status for r in reports] == ["done"] * 3
    assert _outputs(tmp_path / "out") == reference


def _intervals_ms(dask_worker: Any = None, dask_scheduler: Any = None) -> dict[str, float]:
    server = dask_worker if dask_worker is not None else dask_scheduler
    return {name: float(pc.callback_time) for name, pc in server.periodic_callbacks.items()}


def test_local_cluster_housekeeping_runs_less_often() -> None:
    """A local cluster's ticks, stack samples and memory checks run at LOCAL_CLUSTER_CONFIG's
    intervals, in its scheduler and in the worker processes; a key the user set keeps its value."""
    import dask.config

    options = RunOptions(scheduler="local-cluster", workers=1, threads_per_worker=1)
    with dask.config.set({"distributed.worker.profile.interval": "50ms"}), connect(options) as client:
        [worker] = client.run(_intervals_ms).values()
        scheduler = client.run_on_scheduler(_intervals_ms)
    assert (worker["tick"], worker["memory_monitor"], worker["monitor"]) == (500, 500, 2000)
    assert worker["profile"] == 50  # set by the user: kept
    assert (scheduler["tick"], scheduler["monitor"]) == (500, 2000)


def test_process_scene_on_the_cluster(cluster: Cluster, tmp_path: Path) -> None:
    """The one-scene API with a scheduler address: the same bytes as with threads."""
    from geomask.kernels import get
    from geomask.masks import VectorSource
    from geomask.process import process_scene
    from geomask.spec import OutputSpec, Step

    make_scene(tmp_path / "scene.tif", width=300, height=200, tiled=True)
    make_roi(tmp_path / "roi.geojson")
    steps = [Step(kernel=get("sharpen", amount=0.5), mask=VectorSource(tmp_path / "roi.geojson"))]
    outputs = {}
    for scheduler in ("threads", cluster.address):
        out = tmp_path / f"{len(outputs)}.tif"
        report = process_scene(
            tmp_path / "scene.tif",
            OutputSpec(path=out, tags={"RUN": "same"}),
            steps,
            options=RunOptions(scheduler=scheduler, window_size=16, align_windows=False),
        )
        assert report.status == "done" and report.windows_total == 19 * 13
        outputs[scheduler] = out.read_bytes()
    assert outputs["threads"] == outputs[cluster.address]


def test_stac_items_on_the_cluster(cluster: Cluster, tmp_path: Path) -> None:
    """output.stac: true on the cluster: an Item beside each output, as a threaded run writes."""
    pipeline = _batch(tmp_path, 2, size=64, output={"path": "out/{stem}.tif", "stac": True})
    listings = []
    for scheduler in ("threads", cluster.address):
        reports = run_pipeline(pipeline, options=RunOptions(scheduler=scheduler), overwrite=True)
        assert [r.status for r in reports] == ["done", "done"]
        listings.append(sorted(p.name for p in (tmp_path / "out").iterdir()))
    assert listings[0] == listings[1] == ["s0.json", "s0.tif", "s1.json", "s1.tif"]
