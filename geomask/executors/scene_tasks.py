"""Run a batch on a dask.distributed cluster scene by scene: each output written by a worker.

Strategy
--------
Window-level distribution (:mod:`geomask.executors.distributed`) sends every window's pixels back to
this process, which compresses and writes every output: with many workers, this process's network
link and its DEFLATE are the ceiling of the whole cluster. One writer per *output* is what must
hold (several processes writing one compressed GeoTIFF lose tiles), not one writer per run. So when
a batch has enough scenes to keep every worker thread busy, each scene is one task,
:func:`_scene_task`, on a worker: the worker takes the output's lock, reads, filters and writes the
output beside its final path, commits it atomically and returns only its
:class:`~geomask.spec.SceneReport` (a few hundred bytes). This process plans what must be decided
once (the pipeline, the output guard, provenance tags, which outputs are current), submits, tracks
and reports.

When. :func:`scene_level` chooses scenes when ``RunOptions.distribute`` says ``scenes``, or on
``auto`` when the batch has at least two scenes and at least as many scenes as worker threads
(a worker runs one scene task per thread, each on one thread). With fewer scenes than worker
threads, scene tasks would leave threads idle while window tasks keep them all busy, so a single
large scene, or a few, keep window-level parallelism.

Keys and retries. A scene's task is keyed by the dask token of its content (``pure``), so it is one
task per output. Dask reruns the task of a worker that died (up to ``distributed.scheduler.
allowed-failures`` times): the rerun takes the lock (the dead writer's lock died with it), removes
every temporary file beside the output, whatever host or PID wrote it, and writes the same bytes
(the same code and settings as a threaded local run, on one thread).

Memory and flow. At most ``2 x worker threads`` (at least 4) scene tasks are submitted at a time,
pulled lazily from the planning generator, so this process holds a bounded number of futures for a
batch of any size, and the scheduler always has the next scene ready for a thread that frees up.
Events reach the observer in input order, one scene at a time (``scene_started``, one
``window_done`` for all its windows, ``scene_finished``) when its report arrives.

Failures. A scene that raises a GeomaskError on its worker is reported with the worker's address:
``failed`` with ``continue_on_error`` (the others go on), else the error is raised here and the
scenes not yet started are cancelled; scene tasks already running on the workers finish (dask
cannot stop a running task): their outputs are complete or absent, never partial, and a rerun skips
the finished ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dask.base import tokenize
from distributed import Client, Future, as_completed, get_worker

from geomask.errors import GeomaskError, SchedulerLost
from geomask.executors.distributed import InOrder, result_of, worker_threads
from geomask.progress import NullObserver, Observer
from geomask.scene_task import SceneTask, write_scene
from geomask.spec import RunOptions, SceneReport

__all__ = ["run_scene_tasks", "scene_level"]


def scene_level(client: Client, options: RunOptions, scenes: int) -> bool:
    """Whether a batch of ``scenes`` runs scene by scene on ``client``'s workers.

    ``options.distribute``: ``scenes`` or ``windows`` decide; ``auto``: scenes when there are at least
    two and at least as many as the cluster's worker threads right now (a cluster still starting,
    with no worker yet, counts as one thread).
    """
    if options.distribute != "auto":
        return options.distribute == "scenes"
    return scenes >= max(2, worker_threads(client))


def _scene_task(task: SceneTask) -> SceneReport:
    """Write one scene's output on a worker; return its report. Errors name the worker."""
    try:
        return write_scene(task)
    except GeomaskError as e:
        error = type(e)(f"{e} (on dask worker {get_worker().address})")
    # Raised without its cause: dask pickles the cause chain, and a GDAL error in it may not unpickle.
    raise error


def run_scene_tasks(
    client: Client,
    items: Iterable[SceneTask | SceneReport],
    *,
    options: RunOptions,
    observer: Observer | None = None,
    continue_on_error: bool = False,
) -> list[SceneReport]:
    """Run each scene task on a worker, which writes its output; collect the reports.

    Parameters
    ----------
    client : distributed.Client
        Connected to the cluster.
    items : iterable of SceneTask or SceneReport
        In input order, pulled lazily; a SceneReport (skipped, or failed while planning) is passed on.
    options : RunOptions
        ``batch``, when set, bounds the scene tasks submitted at a time (default: 2 per worker
        thread, at least 4).
    observer : Observer or None
        Receives events in input order, one scene at a time, as the reports arrive.
    continue_on_error : bool
        A scene failing with a GeomaskError is reported ``failed`` and the batch goes on.

    Returns
    -------
    list of SceneReport
        One per item, in input order.

    Raises
    ------
    GeomaskError
        The first failing scene's error (naming the worker) unless ``continue_on_error``.
    RunError
        The scheduler was lost, or a scene killed several workers in a row.
    """
    events = InOrder(observer or NullObserver())
    reports: dict[int, SceneReport] = {}
    running: dict[str, tuple[int, SceneTask]] = {}
    futures: dict[str, Future] = {}
    pending = as_completed(loop=client.loop)
    source = iter(enumerate(items))
    exhausted = False

    def finish(index: int, report: SceneReport) -> None:
        reports[index] = report
        if report.status == "done":
            events.started(index, report.input, report.windows_total)
            events.window_done(index, report.input, report.windows_total)
        events.scene_finished(index, report)

    try:
        while True:
            limit = options.batch or max(4, 2 * worker_threads(client))
            while not exhausted and len(running) < limit:
                item = next(source, None)
                if item is None:
                    exhausted = True
                    break
                index, thing = item
                if isinstance(thing, SceneReport):
                    finish(index, thing)
                    continue
                future = client.submit(_scene_task, thing, key=f"geomask-scene-{tokenize(thing)}", pure=True)
                running[future.key], futures[future.key] = (index, thing), future
                pending.add(future)
            if not running:
                break
            future = next(pending)
            index, task = running.pop(future.key)
            del futures[future.key]
            try:
                report: Any = result_of(future, task.display, "its task")
            except GeomaskError as e:
                if not continue_on_error or isinstance(e, SchedulerLost):
                    raise
                shown = task.display_output or str(task.output_path)
                report = SceneReport(task.display, shown, "failed", error=str(e))
                report.notes.extend(task.notes)
            finish(index, report)
    finally:
        if futures:
            client.cancel(list(futures.values()), force=False)
    return [reports[i] for i in sorted(reports)]
