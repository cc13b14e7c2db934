"""Local executor: the window tasks of scenes on a pool of threads or processes of this machine.

``threads`` (default), ``processes`` (spawned processes) or ``synchronous`` (in the calling thread,
one window at a time). A :class:`WindowPool` (:func:`window_pool`) is started once per run and serves
every scene of it: a process pool's workers start while the first scene is planned, and import
geomask and its compiled kernels once, not once per scene. :func:`run_windows` yields the results of
one scene in window order, with a bounded number of windows in flight (two batches) so the caller
writes while the next windows compute.

The pools are :mod:`concurrent.futures` executors, not a dask graph: a window task has no
dependencies, and dask's per-batch scheduling cost (graph, tokens, scheduler start, the import of
``distributed`` it checks for) was a measurable part of a small scene.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor

from rasterio.windows import Window

from geomask.engine.task import SceneJob, WindowResult, compute_window
from geomask.spec import RunOptions

__all__ = ["WindowPool", "run_windows", "window_pool"]


class WindowPool:
    """Where the window tasks of a run's scenes run: a thread or process pool, or none (synchronous).

    Made by :func:`window_pool`, which shuts it down. ``workers`` tasks run at a time; ``batch``
    windows of a scene are in flight ahead of the one the caller is writing, times two.
    """

    def __init__(self, executor: Executor | None, workers: int, batch: int) -> None:
        self.executor = executor
        self.workers = workers
        self.batch = batch


@contextlib.contextmanager
def window_pool(options: RunOptions) -> Iterator[WindowPool]:
    """A :class:`WindowPool` for ``options.scheduler`` (threads, processes, synchronous), shut down at exit.

    Processes are spawned at once, with SIGINT blocked (see :func:`_process_pool`), and each imports
    the engine and its compiled kernels as it starts, so they warm up while the caller plans.
    """
    workers = options.workers or os.cpu_count() or 1
    batch = options.batch or max(2, 4 * workers)
    if options.scheduler == "processes":
        with _process_pool(workers) as pool:
            yield WindowPool(pool, workers, batch)
    elif options.scheduler == "threads":
        executor = ThreadPoolExecutor(workers, thread_name_prefix="geomask-window")
        try:
            yield WindowPool(executor, workers, batch)
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        executor.shutdown(wait=True)
    else:
        yield WindowPool(None, workers, batch)


def run_windows(
    job: SceneJob, windows: Sequence[Window], options: RunOptions, pool: WindowPool | None = None
) -> Iterator[WindowResult]:
    """Yield the WindowResults of ``windows`` in window order, computed on ``pool``.

    ``pool``: the run's :class:`WindowPool` (default: one started for this scene and shut down at its
    end). At most ``2 * pool.batch`` windows are submitted ahead of the one yielded, so at most that
    many results are in memory. Leaving early (an error in the caller, Ctrl-C) cancels the windows not
    yet started; those running finish and are dropped (the tasks are pure).
    """
    if pool is None:
        with window_pool(options) as own:
            yield from run_windows(job, windows, options, own)
        return
    if pool.executor is None:
        for window in windows:
            yield compute_window(job, window)
        return
    ahead = 2 * pool.batch
    pending: deque[Future[WindowResult]] = deque()
    task = compute_window if isinstance(pool.executor, ThreadPoolExecutor) else _compute_window
    try:
        for window in windows:
            pending.append(pool.executor.submit(task, job, window))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def _compute_window(job: SceneJob, window: Window) -> WindowResult:
    """:func:`compute_window` as a process pool sends it: by reference to this module, whose worker copy
    calls the engine's task."""
    return compute_window(job, window)


def _warm() -> None:
    """A process worker's start: import the window task and the compiled kernels (numba cache) once."""
    import geomask.engine.task  # noqa: F401  (imports geomask.convolve and its compiled loops)


@contextlib.contextmanager
def _process_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` spawned processes immune to SIGINT, shut down without queued work on error.

    Ctrl-C reaches every process of the terminal's group: workers would die mid-import printing
    tracebacks and break the pool. They are started at once with SIGINT blocked (the mask is
    inherited through ``exec``; CPython's own ``resource_tracker`` starts its process the same way),
    so only the driving process handles it and raises ``KeyboardInterrupt``; a Ctrl-C that comes
    while they start stays pending in the driver and is raised as soon as they have. On that (or any
    error) the workers are terminated and the windows not yet started dropped.
    """
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_warm)
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            for _ in range(workers):  # each submit starts one more worker now
                pool.submit(os.getpid)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        yield pool
    except BaseException:
        _terminate_pool(pool)
        raise
    pool.shutdown(wait=True)


def _terminate_pool(pool: ProcessPoolExecutor) -> None:
    """Stop ``pool``'s workers now and shut it down, dropping queued and running tasks.

    Window tasks are pure (they only read), so stopping the workers mid-task loses nothing; waiting
    could take long (a worker may be compiling kernels). Python < 3.14 has no public
    ``ProcessPoolExecutor.terminate_workers``, hence the private attributes (each looked up with a
    default). A worker killed while it sends a result leaves a partial message in the result pipe,
    and the pool's manager thread then waits in ``recv`` for the rest forever (seen 1 run in 10 of
    tests/test_faults.py's process-group Ctrl-C): the pool itself holds the pipe's write end open.
    Once the workers are gone that end is closed, so the read ends (EOF), the pool marks itself
    broken and its shutdown returns.
    """
    # Futures the caller cancelled stay among the pool's pending work items until its manager thread
    # moves them on; when the pool then breaks, CPython 3.11's terminate_broken calls set_exception on
    # them, which raises InvalidStateError in that thread and prints a traceback under the one-line
    # error (seen 1 run in 3 of the process-group Ctrl-C test). Drop them first: nothing waits on them.
    items = getattr(pool, "_pending_work_items", None)
    if isinstance(items, dict):
        for work_id, item in list(items.items()):
            if getattr(getattr(item, "future", None), "cancelled", lambda: False)():
                items.pop(work_id, None)
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    deadline = time.monotonic() + 10
    for process in processes:  # exited: their copies of the pipe's write end are closed
        with contextlib.suppress(Exception):
            multiprocessing.connection.wait([process.sentinel], max(0.0, deadline - time.monotonic()))
    writer = getattr(getattr(pool, "_result_queue", None), "_writer", None)
    if writer is not None:
        with contextlib.suppress(OSError):
            writer.close()
    pool.shutdown(wait=True, cancel_futures=True)
