"""Reading a vector layer with an SQL ``where:`` in a child process that can be stopped.

A ``where:`` is handed to the file's own SQL engine: on a GeoPackage that is SQLite, where
``id IN (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c)`` or a cross
join of large tables runs for ever inside one C call. Python's signal handlers only run between
bytecodes, so neither Ctrl-C nor SIGTERM nor a timer could stop it in-process, and OGR offers no
cancellation of an attribute filter. The read therefore runs in a child process: the parent waits in
short slices (so SIGINT/SIGTERM reach it at once), and kills the child on a signal or when the time
limit passes. Reads without ``where:`` stay in-process (they cannot loop).
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from geomask.errors import MaskError

__all__ = ["WHERE_TIME_LIMIT", "read_with_where"]

WHERE_TIME_LIMIT = 120.0
"""Seconds a vector read with a ``where:`` may take before it is stopped (default)."""

_POLL = 0.05  # seconds between checks for a signal in the parent


def read_with_where(
    path: str, kwargs: dict[str, Any], time_limit: float, what: str
) -> tuple[Any, str | None]:
    """``geopandas.read_file(path, **kwargs)`` run in a child process, stopped after ``time_limit`` s.

    Returns ``(frame, None)``, or ``(None, message)`` when the read raised (the child's error message,
    for the caller to word). Raises :class:`~geomask.errors.MaskError` when the read takes longer than
    ``time_limit`` or the child dies; ``KeyboardInterrupt`` (SIGINT, or SIGTERM where the CLI maps
    it) kills the child before it propagates.
    """
    # fork is fast and inherits the loaded GDAL; with other Python threads running (a parallel run)
    # forking could copy a held lock, so a fresh interpreter is started instead.
    method = "fork" if threading.active_count() == 1 else "spawn"
    context = multiprocessing.get_context(method)
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(sender, path, kwargs), daemon=True)
    child.start()
    sender.close()
    deadline = time.monotonic() + time_limit
    try:
        while not receiver.poll(_POLL):
            if not child.is_alive() and not receiver.poll(0):
                raise MaskError(
                    f"reading {what} with where: stopped unexpectedly (exit code {child.exitcode}); "
                    "check the where: expression and the file"
                )
            if time.monotonic() > deadline:
                raise MaskError(
                    f"reading {what} with where: {kwargs.get('where')} did not finish within "
                    f"{time_limit:g} s and was stopped (a recursive query or a join?); use a plain "
                    "condition on the layer's fields, or raise where_time_limit:"
                )
        try:
            status, payload = receiver.recv()
        except EOFError as e:
            raise MaskError(f"reading {what} with where: stopped before returning features") from e
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()
    return (None, str(payload)) if status == "error" else (payload, None)


def _child(sender: Connection, path: str, kwargs: dict[str, Any]) -> None:
    """Read the frame and send ("ok", frame) or ("error", message)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)  # the parent decides; a Ctrl-C just ends the child
    try:
        import geopandas

        result: tuple[str, Any] = ("ok", geopandas.read_file(path, **kwargs))
    except Exception as e:  # every failure goes back to the parent as one line
        result = ("error", str(e))
    sender.send(result)
    sender.close()
