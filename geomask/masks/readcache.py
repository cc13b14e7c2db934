"""Vector files read once per process: the scenes of a batch share one read of their mask file.

Reading a GeoPackage or GeoJSON (pyogrio, the ``where`` filter, geometry repair) costs tens of
milliseconds, as much as filtering a small scene; a batch of scenes with the same mask read it once per
scene. :func:`cached_read` keeps the last :data:`SIZE` reads, keyed by what was read (path, layer,
filter) and by the identity on disk (device, inode, size, modification time in ns) of the file and its
sidecars, so a file that changed (its ``-wal`` included) is read again. Remote files (URLs, ``/vsi``
paths) have no such identity and are never kept.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

from geomask.fingerprint import sidecars

__all__ = ["SIZE", "cached_read", "clear"]

SIZE = 8
"""How many reads are kept (least recently used dropped first)."""

T = TypeVar("T")

_reads: OrderedDict[Hashable, object] = OrderedDict()
_lock = threading.Lock()


def file_identity(path: str) -> tuple[tuple[str, int, int, int, int], ...] | None:
    """(name, device, inode, size, mtime ns) of a local file and of each sidecar GDAL/OGR reads with it
    (a GeoPackage's ``-wal`` holds edits not yet in the file), or None (remote, missing, unreadable)."""
    if "://" in path or path.startswith("/vsi"):
        return None
    found = []
    for name in (path, *map(str, sidecars(path))):
        try:
            st = os.stat(name)
        except OSError:
            if name == path:
                return None
            continue  # a sidecar that went away between the listing and here: its absence counts
        found.append((name, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(found)


def cached_read(path: str, how: Hashable, read: Callable[[], T]) -> T:
    """``read()``'s result for the local file ``path`` read as ``how``, from the cache when the file is
    unchanged since it was kept. Errors are not kept: a failing read raises every time.

    The result is shared between callers: it must not be modified.
    """
    identity = file_identity(path)
    if identity is None:
        return read()
    key = (os.path.abspath(path), identity, how)
    with _lock:
        if key in _reads:
            _reads.move_to_end(key)
            return _reads[key]  # type: ignore[return-value]
    value = read()
    with _lock:
        _reads[key] = value
        while len(_reads) > SIZE:
            _reads.popitem(last=False)
    return value


def clear() -> None:
    """Forget every kept read."""
    with _lock:
        _reads.clear()
