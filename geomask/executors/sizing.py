"""Fitting the worker counts a run asks for to what this machine can hold (see :mod:`geomask.capacity`)."""

from __future__ import annotations

import contextlib
import dataclasses
import warnings

from geomask.capacity import fit_workers
from geomask.errors import WorkersCappedWarning
from geomask.spec import RunOptions

__all__ = ["fit_options"]


def fit_options(options: RunOptions) -> RunOptions:
    """``options`` with its worker counts capped at what this machine can hold.

    See :mod:`geomask.capacity` for the limits (threads: 4 per core; processes and local-cluster
    workers: one per core and as many as the available memory holds). A count asked for and lowered
    is said in a :class:`~geomask.errors.WorkersCappedWarning`; capping fitted options again is a
    no-op, without a warning.
    """
    limit = None
    if options.memory_limit is not None and options.memory_limit != "auto":
        import dask.utils  # here: sizing a run without a memory limit needs no dask

        with contextlib.suppress(ValueError):
            limit = int(dask.utils.parse_bytes(options.memory_limit))
    fitted = fit_workers(options.scheduler, options.workers, options.threads_per_worker, limit)
    if fitted.note is not None:
        warnings.warn(
            f"{fitted.note}: more would not fit on this machine", WorkersCappedWarning, stacklevel=2
        )
    if (fitted.workers, fitted.threads_per_worker) == (options.workers, options.threads_per_worker):
        return options
    return dataclasses.replace(options, workers=fitted.workers, threads_per_worker=fitted.threads_per_worker)
