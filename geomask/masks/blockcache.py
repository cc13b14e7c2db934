"""Rasterized vector blocks shared by the scenes of a process: a block burned once per geometry set.

:class:`~geomask.masks.vector.BoundVectorMask` burns its geometries in fixed blocks, in pixel space
(see :mod:`geomask.masks.vector`). The scenes of a batch on one grid (a time series of one footprint,
copies of a scene) bind the same mask file to the same pixel-space geometries, so each scene burned
the same blocks again: ``rasterize`` holds Python's GIL throughout (about 0.6 ms per 512 x 512 block
of the benchmark's 60 ROIs), stopping the other scene's Python meanwhile.

:data:`BLOCKS` keeps the blocks burned lately, keyed by everything a block's pixels depend on: its
position and size in the grid, ``all_touched``, and the exact geometries burned (a BLAKE2b digest of
their WKB, which is the coordinates bit for bit: :func:`geometry_digest`). A block is therefore served
only where burning it again would give the same bytes. The keys hold digests, not the geometries, so
the memory kept is the blocks' (serializing a block's geometries costs a fraction of what
``rasterize`` spends converting them). Blocks are read-only boolean arrays; the cache is bounded in
bytes, least recently used first out, and thread-safe (two threads missing the same block both burn
it, with the same result).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable

import numpy as np
import shapely
from numpy.typing import NDArray

__all__ = ["BLOCKS", "BlockCache", "geometry_digest"]


def geometry_digest(geometries: NDArray[np.object_]) -> bytes:
    """A 32-byte BLAKE2b digest of ``geometries``' WKB, in order (WKB is self-delimiting): equal
    digests mean the same geometries, coordinates bit for bit."""
    digest = hashlib.blake2b(digest_size=32)
    for wkb in shapely.to_wkb(geometries):
        digest.update(wkb)
    return digest.digest()


class BlockCache:
    """A thread-safe least-recently-used store of burned blocks, bounded in bytes.

    Parameters
    ----------
    capacity : int
        Bytes of blocks kept at most.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.hits = 0  # blocks served (for tests and benchmarks)
        self._lock = threading.Lock()
        self._blocks: OrderedDict[Hashable, NDArray[np.bool_]] = OrderedDict()
        self._bytes = 0

    def get(self, key: Hashable) -> NDArray[np.bool_] | None:
        """The block kept as ``key``, or None."""
        with self._lock:
            block = self._blocks.get(key)
            if block is not None:
                self._blocks.move_to_end(key)
                self.hits += 1
            return block

    def put(self, key: Hashable, block: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """Keep ``block`` (made read-only) as ``key``; returns it."""
        block.flags.writeable = False
        with self._lock:
            if key in self._blocks or block.nbytes > self.capacity:
                return block
            self._blocks[key] = block
            self._bytes += block.nbytes
            while self._bytes > self.capacity:
                _, old = self._blocks.popitem(last=False)
                self._bytes -= old.nbytes
        return block

    def clear(self) -> None:
        """Drop every kept block."""
        with self._lock:
            self._blocks.clear()
            self._bytes = 0


BLOCKS = BlockCache(16 << 20)
"""The process's blocks: 16 MiB, 64 blocks of 512 x 512."""
