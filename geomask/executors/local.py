"""Local executor: the window tasks of one scene on dask's local schedulers, in bounded batches.

``threads`` (default), ``processes`` (one pool of spawned processes for the whole scene) or
``synchronous``. :func:`run_windows` yields the results in window order, one batch computing ahead
while the caller writes the previous one, so at most two batches of windows are in memory.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import dask
from rasterio.windows import Window

from geomask.engine.task import SceneJob, WindowResult, compute_window
from geomask.spec import RunOptions

__all__ = ["run_windows"]


def run_windows(job: SceneJob, windows: Sequence[Window], options: RunOptions) -> Iterator[WindowResult]:
    """Yield WindowResults in window order, computing bounded batches with dask (one batch ahead)."""
    workers = options.workers or os.cpu_count() or 1
    batch = options.batch or max(2, 4 * workers)
    task: Callable[..., WindowResult] = dask.delayed(compute_window, pure=True)
    job_d = dask.delayed(job, name=f"scenejob-{dask.base.tokenize(job.scene, job.bands, job.nodata)}")
    compute_kwargs: dict[str, Any] = {"scheduler": options.scheduler}
    with contextlib.ExitStack() as stack:
        if options.scheduler == "processes":
            # One pool for the whole scene: dask would otherwise start processes per batch.
            # "spawn": forking a process that already runs GDAL and numba threads is unsafe.
            compute_kwargs["pool"] = stack.enter_context(_process_pool(workers))
        elif options.scheduler == "threads":
            compute_kwargs["num_workers"] = workers
        if options.scheduler == "synchronous" or len(windows) <= batch:
            for start in range(0, len(windows), batch):
                chunk = windows[start : start + batch]
                yield from dask.compute(*[task(job_d, w) for w in chunk], **compute_kwargs)
            return

        def compute(start: int) -> tuple[WindowResult, ...]:
            chunk = windows[start : start + batch]
            return dask.compute(*[task(job_d, w) for w in chunk], **compute_kwargs)

        # Overlap writing with computing: while the caller writes batch k (GDAL compresses in the
        # driving thread), batch k + 1 computes in the background. Measured on the 8192^2 bench
        # scene (2 cores) the driver otherwise left a core idle during every write. At most two
        # batches are in memory.
        prefetch = ThreadPoolExecutor(1, thread_name_prefix="geomask-batch")
        pending = prefetch.submit(compute, 0)
        try:
            for start in range(0, len(windows), batch):
                results = pending.result()
                if start + batch < len(windows):
                    pending = prefetch.submit(compute, start + batch)
                yield from results
        except BaseException:
            # Ctrl-C or a failed write: do not wait for the batch ahead (its results are dropped;
            # the tasks are pure). The process pool, if any, is terminated on the way out.
            prefetch.shutdown(wait=False, cancel_futures=True)
            raise
        prefetch.shutdown(wait=True)


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
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
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
