"""Run scenes on a dask.distributed cluster: window tasks on the workers, one writer per output here.

Used for a single scene, or a batch of fewer scenes than worker threads; a larger batch runs scene
by scene, each output written by a worker (:mod:`geomask.executors.scene_tasks`, chosen by
:func:`geomask.executors.scene_tasks.scene_level`). This module also connects to the cluster
(:func:`connect`: ``local-cluster``, an address, or a cluster manager of a profile's ``cluster:``).

Strategy
--------
The client (this process) walks the scenes in input order. For each scene it plans the windows
(:func:`geomask.engine.plan.plan_scene`), opens the scene's writer (a temporary file beside the output)
and submits one task per window, :func:`_window_task`, a thin wrapper of the pure
:func:`geomask.engine.task.compute_window`. A task opens the scene on the worker that runs it (the
:class:`~geomask.engine.task.SceneJob` holds paths and bound masks, never a dataset handle) and sets the
job's GDAL options inside the task, since the client's environment does not reach the workers.

One graph for many scenes. Windows of all scenes go to one client, in scene order, with at most
``RunOptions.batch`` (default: 4 per worker thread) windows in flight *or* waiting to be written, over
all scenes together; so memory on the client is bounded by that many windows, whatever the number
or size of the scenes, and the workers stay busy across scene boundaries. Results come back with
``as_completed`` and are written in window order (a result that arrives early waits, and counts
against the bound), so an output's bytes are the same as a local run's. A scene is committed
(checked, converted to COG, renamed into place) as soon as its last window is written, so an
interrupted batch keeps every finished scene and a rerun skips them.

Why results stream to one writer. Several processes writing windows of one compressed GeoTIFF lose
tiles, and ``distributed.Lock`` does not guarantee mutual exclusion (a lease that times out gives
the lock to a second holder), so only this process writes. With one writer, the window's pixels
reach it either in the task's result (streaming, chosen) or as per-window part files that the tasks
write to shared storage and the writer reads back. ``python -m benchmarks.cluster --design`` times
both on one machine (2 workers, 2 cores, shared with other jobs, so noisy): streamed 3.3, 3.1, 21.5
and 20.4 s against 2.9, 2.3, 24.8 and 15.9 s with parts (two write-bound runs, two compute-bound).
On one machine parts were mostly faster (no pickling, the page cache instead of a socket); on a
cluster they cross the network twice (worker to shared storage, storage to the writer) instead of
once, need scratch space every worker can write, and a task re-run after a worker died leaves
orphan parts. Hence streaming; re-measure on a real cluster with its shared storage. The writer
compresses every tile; with ``NUM_THREADS`` in the creation options GDAL uses several threads.

Keys and retries. A scene's job is one task keyed by the dask token of its content; each window
task is keyed by that key and its window (``pure``), so the same window of the same job is one
task, and a task run twice (dask re-runs tasks whose worker died, even finished ones not yet
fetched) returns the same bytes. A worker killed mid-run is therefore invisible in the outputs.

Failures. An error in a window task (a corrupt tile, a path the worker cannot open) is raised
here with the worker's address; :class:`~geomask.errors.RunError` reports a lost scheduler or a
window that killed several workers in a row. Every writer not committed removes its temporary file,
so no output path ever holds a partial file.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import dask.config
from dask.base import tokenize
from distributed import Client, Future, LocalCluster, as_completed, get_worker
from distributed.scheduler import KilledWorker
from rasterio.windows import Window

from geomask import __version__
from geomask.engine.plan import ScenePlan
from geomask.engine.task import SceneJob, WindowResult, compute_window
from geomask.errors import GeomaskError, RunError, SchedulerLost
from geomask.executors.sizing import fit_options
from geomask.io import gdal_env
from geomask.progress import NullObserver, Observer
from geomask.spec import RunOptions, SceneReport, is_distributed

__all__ = [
    "CONNECT_TIMEOUT",
    "LOCAL_CLUSTER_CONFIG",
    "InOrder",
    "connect",
    "dashboard_link",
    "is_distributed",
    "result_of",
    "run_scenes",
    "worker_threads",
]

CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a scheduler at ``tcp://HOST:PORT`` before giving up."""

LOCAL_CLUSTER_CONFIG: dict[str, str] = {
    "distributed.admin.tick.interval": "500ms",  # event-loop health check (default 20ms)
    "distributed.admin.system-monitor.interval": "2s",  # CPU/memory/IO sampling (500ms)
    "distributed.worker.memory.monitor-interval": "500ms",  # pause/terminate check (100ms)
    "distributed.worker.profile.interval": "100ms",  # dashboard profile sampling (10ms)
}
"""dask settings of a ``local-cluster``: its periodic housekeeping run less often.

With distributed's defaults an idle local cluster of 2 workers used about 60 ms of CPU per second
(its scheduler and nannies in this process, the workers' event loops: ticks every 20 ms, a stack
sample every 10 ms, a memory check every 100 ms per worker), 3 % of 2 cores taken from the workers
(the client shares the machine's cores with them); with these, about 17 ms/s. A key set by the
user (dask config file, ``DASK_*`` variable, ``dask.config.set``) to another value than
distributed's default is kept. Set here before the cluster starts: its nannies pass the
configuration on to the worker processes."""


@contextlib.contextmanager
def connect(options: RunOptions) -> Iterator[Client]:
    """A dask.distributed client for ``options.scheduler``, closed (and its cluster stopped) on exit.

    Parameters
    ----------
    options : RunOptions
        ``scheduler`` is ``local-cluster`` (a ``LocalCluster`` of ``workers`` processes, default one
        per core, with ``threads_per_worker`` threads (default 1) and ``memory_limit`` each), a
        scheduler address ``tcp://HOST:PORT``, or ``cluster``: the cluster manager of
        ``options.cluster`` (:func:`geomask.executors.factory.start_cluster`).

    Raises
    ------
    RunError
        The scheduler does not answer within :data:`CONNECT_TIMEOUT` seconds, the local cluster does
        not start, or a worker runs another geomask version.
    ConfigError
        ``options.cluster`` names a class that does not import or refuses its options.
    """
    cluster: Any = None
    if options.scheduler == "cluster" and options.cluster is not None:
        from geomask.executors.factory import start_cluster

        with start_cluster(options.cluster) as client:
            _check_versions(client)
            yield client
        return
    try:
        if options.scheduler == "local-cluster":
            options = fit_options(options)  # no more processes than the machine holds
            with dask.config.set(_local_cluster_config()):
                cluster = LocalCluster(
                    n_workers=options.workers or os.cpu_count() or 1,
                    threads_per_worker=options.threads_per_worker or 1,
                    memory_limit=options.memory_limit or "auto",
                    processes=True,
                    dashboard_address=":0",
                    silence_logs=logging.CRITICAL,
                )
            client = Client(cluster, set_as_default=False)
        else:
            # set_as_default=False: other dask code in this process keeps its own scheduler
            client = Client(options.scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError, RuntimeError) as e:  # RuntimeError: a nanny failed
        if cluster is not None:
            cluster.close()
        if options.scheduler == "local-cluster":
            raise RunError(f"cannot start a local dask cluster ({type(e).__name__}: {e})") from e
        raise RunError(
            f"cannot reach the dask scheduler at {options.scheduler} within {CONNECT_TIMEOUT:g} s "
            f"({type(e).__name__}); start it (`dask scheduler`) or fix `scheduler:` in the profile "
            "or --scheduler"
        ) from e
    try:
        _check_versions(client)
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _local_cluster_config() -> dict[str, str]:
    """The :data:`LOCAL_CLUSTER_CONFIG` entries whose key is still at distributed's default value."""
    defaults = dask.config.merge(*dask.config.defaults)
    return {
        key: value
        for key, value in LOCAL_CLUSTER_CONFIG.items()
        if dask.config.get(key, None) == dask.config.get(key, None, config=defaults)
    }


def dashboard_link(client: Client) -> str | None:
    """The URL of the scheduler's dashboard, or None when it serves none (bokeh not installed)."""
    services = client.scheduler_info().get("services", {})
    return str(client.dashboard_link) if "dashboard" in services else None


def _geomask_version() -> str:
    return __version__


def _check_versions(client: Client) -> None:
    found = client.run(_geomask_version, on_error="return")
    for worker, version in sorted(found.items()):
        if version != __version__:
            shown = f"geomask {version}" if isinstance(version, str) else f"no geomask ({version!r})"
            raise RunError(
                f"dask worker {worker} runs {shown}, this process geomask {__version__}: install the "
                "same geomask version on every worker"
            )


def _window_task(job: SceneJob, window: tuple[int, int, int, int]) -> WindowResult:
    """Compute one window on a worker; errors name the worker."""
    col_off, row_off, width, height = window
    try:
        return compute_window(job, Window(col_off, row_off, width, height))
    except GeomaskError as e:
        error = type(e)(f"{e} (on dask worker {get_worker().address})")
    # Raised without its cause: dask pickles the cause chain, and a GDAL error in it may not
    # unpickle, which would turn this error into a bare Exception on the client.
    raise error


def _identity(value: Any) -> Any:
    return value


@dataclass
class _Scene:
    """A scene whose writer is open: its windows in flight and its results waiting to be written."""

    index: int
    plan: ScenePlan
    job: Future
    submitted: int = 0
    written: int = 0
    in_flight: dict[int, Future] = field(default_factory=dict)
    ready: dict[int, WindowResult] = field(default_factory=dict)


class InOrder:
    """Delivers observer events scene by scene, in input order.

    Scenes overlap on a cluster (the next one starts while the last windows of the previous one
    run); the observer contract is one scene at a time, so events of a later scene wait until
    every earlier scene has finished.
    """

    def __init__(self, observer: Observer) -> None:
        self.observer = observer
        self.next = 0
        self.pending: dict[int, list[Callable[[], None]]] = {}
        self.finished: set[int] = set()

    def started(self, index: int, scene: str, windows: int) -> None:
        self._add(index, lambda: self.observer.scene_started(scene, windows))

    def window_done(self, index: int, scene: str, count: int = 1) -> None:
        self._add(index, lambda: self.observer.window_done(scene, count))

    def scene_finished(self, index: int, report: SceneReport) -> None:
        self.finished.add(index)
        self._add(index, lambda: self.observer.scene_finished(report))

    def _add(self, index: int, event: Callable[[], None]) -> None:
        self.pending.setdefault(index, []).append(event)
        while True:
            for event in self.pending.pop(self.next, []):
                event()
            if self.next not in self.finished:
                return
            self.finished.discard(self.next)
            self.next += 1


def worker_threads(client: Client) -> int:
    """The worker threads of the cluster right now (all workers together)."""
    return sum(int(w.get("nthreads", 1)) for w in client.scheduler_info().get("workers", {}).values())


def run_scenes(
    client: Client,
    items: Iterable[ScenePlan | SceneReport],
    *,
    options: RunOptions,
    observer: Observer | None = None,
    continue_on_error: bool = False,
) -> list[SceneReport]:
    """Run planned scenes on a dask.distributed cluster; write and commit each output here.

    Parameters
    ----------
    client : distributed.Client
        Connected to the cluster (:func:`connect`).
    items : iterable of ScenePlan or SceneReport
        In input order; pulled lazily, one scene ahead of the windows in flight. A SceneReport
        (a skipped scene, or one that failed while planning) is passed on as it is.
    options : RunOptions
        ``batch`` bounds the windows in flight or waiting to be written (default: 4 per worker
        thread, at least 8); ``gdal_options`` apply to the writers here and to the tasks there.
    observer : Observer or None
        Receives events in input order, one scene at a time.
    continue_on_error : bool
        A scene whose window fails with a GeomaskError is reported ``failed`` (its temporary file
        removed, its other windows cancelled) and the run goes on.

    Returns
    -------
    list of SceneReport
        One per item, in input order.

    Raises
    ------
    GeomaskError
        The first failing window's error (with the worker's address) unless ``continue_on_error``.
    RunError
        The scheduler was lost, or a window killed several workers in a row.

    Notes
    -----
    Nothing is left at the output path of a scene that did not finish; scenes committed before an
    error keep their outputs.
    """
    observer = observer or NullObserver()
    events = InOrder(observer)
    reports: dict[int, SceneReport] = {}
    scenes: dict[int, _Scene] = {}
    owner: dict[int, tuple[_Scene, int]] = {}  # id(future) -> (scene, window index)
    pending = as_completed(loop=client.loop)
    source = iter(enumerate(items))
    submitting: _Scene | None = None
    exhausted = False
    limit = options.batch or max(8, 4 * worker_threads(client))

    def held() -> int:
        return sum(len(s.in_flight) + len(s.ready) for s in scenes.values())

    def drop(scene: _Scene) -> None:
        """Stop a scene: cancel its windows, remove its temporary file, submit nothing more."""
        scene.submitted = len(scene.plan.windows)
        for future in scene.in_flight.values():
            owner.pop(id(future), None)
        client.cancel([*scene.in_flight.values()], force=False)
        scene.in_flight.clear()
        scene.ready.clear()
        scene.plan.close()
        scenes.pop(scene.index, None)

    def fail(index: int, report: SceneReport, error: GeomaskError) -> None:
        """Record a failed scene (``continue_on_error``) and go on."""
        report.status, report.error = "failed", str(error)
        reports[index] = report
        events.scene_finished(index, report)

    try:
        with gdal_env(options.gdal_options):
            while True:
                while not exhausted and held() < limit:
                    if submitting is None or submitting.submitted == len(submitting.plan.windows):
                        item = next(source, None)
                        if item is None:
                            exhausted = True
                            break
                        index, thing = item
                        if isinstance(thing, SceneReport):
                            reports[index] = thing
                            events.scene_finished(index, thing)
                            continue
                        try:
                            submitting = _open(client, index, thing)
                        except GeomaskError as e:  # the output cannot be created
                            if not continue_on_error:
                                raise
                            fail(index, thing.report, e)
                            continue
                        scenes[index] = submitting
                        events.started(index, thing.report.input, len(thing.windows))
                        limit = options.batch or max(8, 4 * worker_threads(client))
                        continue
                    scene = submitting
                    w = scene.plan.windows[scene.submitted]
                    window = (int(w.col_off), int(w.row_off), int(w.width), int(w.height))
                    future = client.submit(
                        _window_task,
                        scene.job,
                        window,
                        key=f"geomask-window-{tokenize(scene.job.key, window)}",
                        pure=True,
                    )
                    scene.in_flight[scene.submitted] = future
                    owner[id(future)] = (scene, scene.submitted)
                    pending.add(future)
                    scene.submitted += 1
                if not scenes:
                    break
                future = next(pending)
                if id(future) not in owner:
                    continue  # a window of a scene that already failed
                scene, at = owner.pop(id(future))
                try:
                    result = result_of(future, scene.plan.report.input)
                    del scene.in_flight[at]
                    scene.ready[at] = result
                    while scene.written in scene.ready:  # write in window order
                        scene.plan.write(scene.ready.pop(scene.written))
                        scene.written += 1
                        events.window_done(scene.index, scene.plan.report.input)
                    if scene.written == len(scene.plan.windows):
                        reports[scene.index] = scene.plan.commit()
                        scene.plan.close()
                        del scenes[scene.index]
                        events.scene_finished(scene.index, reports[scene.index])
                except GeomaskError as e:
                    if not continue_on_error or isinstance(e, SchedulerLost):
                        raise
                    drop(scene)
                    fail(scene.index, scene.plan.report, e)
    finally:
        for scene in list(scenes.values()):
            with contextlib.suppress(Exception):
                drop(scene)
            scene.plan.close()
    return [reports[i] for i in sorted(reports)]


def _open(client: Client, index: int, plan: ScenePlan) -> _Scene:
    """Open the scene's writer and submit its job (one small task every window depends on)."""
    # A task, not scattered data: if the worker holding it dies, the scheduler recomputes it.
    try:
        plan.open()
    except BaseException:
        plan.close()
        raise
    job = client.submit(_identity, plan.job, key=f"geomask-job-{tokenize(plan.job)}", pure=True)
    return _Scene(index, plan, job)


def result_of(future: Future, scene: str, what: str = "one of its windows") -> Any:
    """The future's result; connection losses and killed workers become RunError.

    ``what`` names the task in the message about workers that died running it.
    """
    try:
        if future.status == "error":
            error = future.exception()
        else:
            return future.result()
    except (OSError, TimeoutError, concurrent.futures.CancelledError) as e:
        raise SchedulerLost(
            f"lost the connection to the dask scheduler while running {scene} ({type(e).__name__}); "
            "unfinished outputs were removed: rerun to resume (finished scenes are skipped)"
        ) from e
    if isinstance(error, KilledWorker):
        raise RunError(
            f"{scene}: the dask workers running {what} died {error.allowed_failures + 1} times "
            "in a row (out of memory? lower window_size or raise the workers' memory_limit)"
        ) from error
    raise error
