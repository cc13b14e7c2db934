"""Decoded input tiles shared by the window tasks of a process, so a tile is decoded once.

Why: a window task reads its tiles plus a halo of a few rows and columns around its targets,
and GDAL decodes a whole tile to give even one row of it. The tile that holds a halo is often
one a neighbouring window owns (and decodes itself), in another task with its own handle, so
the same tile was decoded twice or more. :func:`read_tiled` reads through :data:`CACHE`
instead: each tile is decoded once, whole, and kept (least recently used first out, within a
byte budget) while the windows around it run; a task that needs a tile another thread is
decoding waits for it rather than decoding it again.

The key is the file's identity (path, device, inode, size, modification time) and the tile's
position, so a file changed between runs is never served from the cache. Tiles are read-only
arrays of the file's dtype, every band.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from rasterio.enums import Interleaving
from rasterio.windows import Window

from geomask.io import read_indexed
from geomask.windows import contiguous_runs

if TYPE_CHECKING:
    from rasterio.io import DatasetReader

__all__ = ["CACHE", "FirstTile", "TileCache", "read_tiled", "shareable"]


class TileCache:
    """A thread-safe least-recently-used store of decoded tiles, bounded in bytes.

    Parameters
    ----------
    capacity : int
        Bytes of tiles kept at most (a tile larger than that is decoded and not kept).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.decoded = 0  # tiles decoded through the cache (for tests and benchmarks)
        self._lock = threading.Lock()
        self._tiles: OrderedDict[Hashable, NDArray[Any]] = OrderedDict()
        self._pending: dict[Hashable, threading.Event] = {}
        self._bytes = 0

    def get(self, key: Hashable, decode: Callable[[], NDArray[Any]]) -> NDArray[Any]:
        """The tile ``key``: kept, being decoded by another thread (waited for), or ``decode()``-d now.

        Errors of ``decode`` propagate; a thread that waited for a failed decode decodes itself.
        """
        while True:
            with self._lock:
                tile = self._tiles.get(key)
                if tile is not None:
                    self._tiles.move_to_end(key)
                    return tile
                event = self._pending.get(key)
                mine = event is None
                if mine:
                    event = self._pending[key] = threading.Event()
            if mine:
                break
            event.wait()  # then kept (or failed, or already evicted: decoded here)
        tile = None
        try:
            tile = decode()
            tile.flags.writeable = False
            return tile
        finally:
            with self._lock:
                del self._pending[key]
                if tile is not None:
                    self.decoded += 1
                    self._keep(key, tile)
            event.set()

    def put(self, key: Hashable, tile: NDArray[Any]) -> None:
        """Keep ``tile``, decoded elsewhere, as tile ``key`` (counted in :attr:`decoded`); a tile
        already kept or being decoded stays as it is."""
        with self._lock:
            if key in self._tiles or key in self._pending:
                return
            tile.flags.writeable = False
            self.decoded += 1
            self._keep(key, tile)

    def _keep(self, key: Hashable, tile: NDArray[Any]) -> None:
        if tile.nbytes > self.capacity:
            return
        self._tiles[key] = tile
        self._bytes += tile.nbytes
        while self._bytes > self.capacity:
            _, old = self._tiles.popitem(last=False)
            self._bytes -= old.nbytes

    def clear(self) -> None:
        """Drop every kept tile."""
        with self._lock:
            self._tiles.clear()
            self._bytes = 0


#: The process's cache: 32 MiB, about 20 tiles of 512 x 512 x 3 uint16: the tiles decoded lately,
#: which the windows running next need (windows run in row order, a few at a time). On the
#: benchmark scene it removes the repeated decodes (150 -> 105) for about 80 MB more peak RSS.
CACHE = TileCache(32 << 20)


def shareable(path: str | os.PathLike[str], block: tuple[int, int]) -> bool:
    """Whether reads of the file ``path`` with blocks of ``block`` (rows, cols) pixels go through
    :data:`CACHE`: a local file whose blocks are tiles (or strips) of 16 to 4 Mi pixels."""
    text = str(path)
    local = "://" not in text and not text.startswith("/vsi")
    return local and min(block) >= 16 and block[0] * block[1] <= 1 << 22


def _ident(path: str, tile: tuple[int, int]) -> tuple[Any, ...]:
    """The identity of the file ``path`` read in blocks of ``tile``: the first part of a tile's key."""
    st = os.stat(path)
    return (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, tile[0], tile[1])


class FirstTile:
    """The check :func:`geomask.io.inspect_scene` makes (the first block decodes), keeping the pixels.

    Used as its ``read_first``: on a pixel-interleaved or one-band file, the first block is decoded
    whole, every band (GDAL decodes that much for any corner of it), and :meth:`keep` puts it into
    :data:`CACHE` once the planner knows the windows read through the cache: the window that needs
    the block then finds it decoded instead of decoding it a second time. On a band-interleaved file
    (one block per band), a corner of band 1, as the default check. Either way a block that does not
    decode raises the RasterioError the check reports.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.tile: NDArray[Any] | None = None
        self._ident: tuple[Any, ...] | None = None

    def __call__(self, ds: DatasetReader, window: Window) -> None:
        """Decode the first block, ``window`` (the whole block), of ``ds`` (the file :attr:`path`)."""
        th, tw = (int(v) for v in ds.block_shapes[0])
        if (ds.count > 1 and ds.interleaving != Interleaving.pixel) or not shareable(self.path, (th, tw)):
            ds.read(1, window=Window(0, 0, min(window.width, 64), min(window.height, 64)))
            return
        self._ident = _ident(self.path, (th, tw))  # before the read: a file changed since is not served
        out = np.empty((ds.count, int(window.height), int(window.width)), dtype=ds.dtypes[0])
        self.tile = ds.read(list(range(1, ds.count + 1)), window=window, out=out)

    def keep(self) -> None:
        """Put the decoded block into :data:`CACHE` (as tile (0, 0) of :func:`read_tiled`), if any."""
        if self.tile is not None and self._ident is not None:
            CACHE.put((self._ident, 0, 0), self.tile)
        self.tile = None


def read_tiled(
    ds: DatasetReader,
    path: str,
    tile: tuple[int, int],
    rows: NDArray[np.int64],
    cols: NDArray[np.int64],
) -> NDArray[Any]:
    """Every band of ``ds`` at the sorted unique ``rows`` x ``cols``, through :data:`CACHE`.

    ``ds`` is the local file ``path``, whose blocks are ``tile`` (rows, cols) pixels. Returns
    (bands, len(rows), len(cols)) of the file's dtype, as :func:`geomask.io.read_indexed`.
    Raises :class:`~geomask.errors.RunError` (from :func:`~geomask.io.read_indexed`) for a tile
    that does not decode.
    """
    th, tw = tile
    ident = _ident(path, tile)
    bands = list(range(1, ds.count + 1))
    out = np.empty((len(bands), rows.size, cols.size), dtype=ds.dtypes[0])

    def decoder(tr: int, tc: int) -> Callable[[], NDArray[Any]]:
        def decode() -> NDArray[Any]:
            t_rows = np.arange(tr * th, min((tr + 1) * th, ds.height), dtype=np.int64)
            t_cols = np.arange(tc * tw, min((tc + 1) * tw, ds.width), dtype=np.int64)
            return read_indexed(ds, bands, t_rows, t_cols)

        return decode

    r_pos = 0
    for r0, r1 in contiguous_runs(rows):
        c_pos = 0
        for c0, c1 in contiguous_runs(cols):
            for tr in range(r0 // th, (r1 - 1) // th + 1):
                a0, a1 = max(r0, tr * th), min(r1, (tr + 1) * th)
                for tc in range(c0 // tw, (c1 - 1) // tw + 1):
                    b0, b1 = max(c0, tc * tw), min(c1, (tc + 1) * tw)
                    block = CACHE.get((ident, tr, tc), decoder(tr, tc))
                    out[:, r_pos + a0 - r0 : r_pos + a1 - r0, c_pos + b0 - c0 : c_pos + b1 - c0] = block[
                        :, a0 - tr * th : a1 - tr * th, b0 - tc * tw : b1 - tc * tw
                    ]
            c_pos += c1 - c0
        r_pos += r1 - r0
    return out
