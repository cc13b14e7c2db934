"""What this machine can hold: CPU cores and memory, and worker counts fitted to them.

A profile or ``--workers`` may ask for any number up to :data:`MAX_WORKERS` (checked at validation);
at run time the number actually started is capped here, from the cores this process may use and the
memory the kernel reports as available (``/proc/meminfo``, else ``os.sysconf``), never more than:

- ``threads``: :data:`THREADS_PER_CORE` threads per core (window tasks are CPU-bound; more threads
  only hold more windows in memory);
- ``processes`` and ``local-cluster``: one worker process per core, and no more processes than the
  available memory holds at :data:`PROCESS_MEMORY` each (or the ``memory_limit`` asked for, when
  larger); a local-cluster worker's threads at :data:`THREADS_PER_CORE` per core in all.

Nothing here imports rasterio or dask.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MAX_WORKERS",
    "PROCESS_MEMORY",
    "THREADS_PER_CORE",
    "Capacity",
    "Fitted",
    "fit_workers",
    "machine",
]

MAX_WORKERS = 1024
"""The most workers (or threads per local-cluster worker) a profile or ``--workers`` may ask for."""

THREADS_PER_CORE = 4
"""Threads per core at most (``threads`` scheduler; a local cluster's threads in all)."""

PROCESS_MEMORY = 256 << 20
"""Bytes one worker process needs at least (Python, numpy, GDAL, numba and a few windows)."""


@dataclass(frozen=True)
class Capacity:
    """This machine as seen by this process: usable cores, available memory in bytes (None: unknown)."""

    cpus: int
    memory: int | None


def _cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))  # the cores this process may run on
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _available_memory() -> int | None:
    """``MemAvailable`` of /proc/meminfo (bytes), else free physical pages, else None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def machine() -> Capacity:
    """The cores and available memory of this machine now."""
    return Capacity(_cpus(), _available_memory())


@dataclass(frozen=True)
class Fitted:
    """Worker counts fitted to the machine; ``note`` says what was lowered (None: nothing)."""

    workers: int | None
    threads_per_worker: int | None
    note: str | None = None


def fit_workers(
    scheduler: str,
    workers: int | None,
    threads_per_worker: int | None = None,
    memory_limit: int | None = None,
    capacity: Capacity | None = None,
) -> Fitted:
    """Cap the worker counts asked for at what ``capacity`` (default: this machine) can hold.

    Parameters
    ----------
    scheduler : str
        ``threads``, ``processes``, ``local-cluster``; others (``synchronous``, an address of a
        running cluster, whose workers are sized by whoever started them) are returned unchanged.
    workers, threads_per_worker : int or None
        As asked for (None: the default, one per core; one thread per local-cluster worker).
    memory_limit : int or None
        Bytes per local-cluster worker when given explicitly (None: ``auto``).
    capacity : Capacity or None
        The machine (default: :func:`machine`).

    Returns
    -------
    Fitted
        The counts to start (a default stays None when it fits) and, when a count asked for was
        lowered, a one-line note naming the limit.
    """
    if scheduler not in ("threads", "processes", "local-cluster"):
        return Fitted(workers, threads_per_worker)
    cap = capacity or machine()
    if scheduler == "threads":
        limit = THREADS_PER_CORE * cap.cpus
        if workers is None or workers <= limit:
            return Fitted(workers, threads_per_worker)
        note = (
            f"workers: {workers} threads asked for, {limit} started ({THREADS_PER_CORE} per core, "
            f"{cap.cpus} cores)"
        )
        return Fitted(limit, threads_per_worker, note)
    per_process = max(PROCESS_MEMORY, memory_limit or 0)
    by_memory = max(1, cap.memory // per_process) if cap.memory is not None else math.inf
    limit = int(min(cap.cpus, by_memory))
    notes = []
    fitted_workers = workers
    if workers is not None and workers > limit:
        fitted_workers = limit
        memory = f", {cap.memory / 2**30:.1f} GiB available" if cap.memory is not None else ""
        notes.append(
            f"workers: {workers} processes asked for, {limit} started (at most one per core and "
            f"{per_process / 2**20:.0f} MiB each; {cap.cpus} cores{memory})"
        )
    elif workers is None and limit < cap.cpus:
        fitted_workers = limit  # the default, one per core, does not fit in memory: silently fewer
    fitted_threads = threads_per_worker
    if scheduler == "local-cluster" and threads_per_worker is not None:
        processes = fitted_workers or cap.cpus
        per_worker = max(1, THREADS_PER_CORE * cap.cpus // processes)
        if threads_per_worker > per_worker:
            fitted_threads = per_worker
            notes.append(
                f"threads_per_worker: {threads_per_worker} asked for, {per_worker} started "
                f"({THREADS_PER_CORE} threads per core in all, {cap.cpus} cores)"
            )
    note = "; ".join(notes) if notes else None
    return Fitted(fitted_workers, fitted_threads, note)
