"""Window arithmetic: the window plan, and halos with boundary modes as index maps.

Everything here is plain integer arithmetic on numpy index arrays; no I/O.

A *boundary mode* says which scene pixel stands in for a position outside the
scene (scipy.ndimage's definitions). :func:`source_index` turns a range of
positions, possibly beyond the scene's edges, into the indices of the scene
pixels that hold their values (``-1`` for ``constant``, whose padded cells take
``cval``). Reading a window with its halo then means reading the scene at
those indices, whatever the mode: the halo of an inner window is plain
neighbouring pixels, and at the scene edge the mode decides. This is what
makes a tiled result equal the whole-image result.
"""

from __future__ import annotations

import math
from typing import get_args

import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window

from geomask.errors import ConfigError
from geomask.spec import Mode

__all__ = [
    "MODES",
    "Mode",
    "contiguous_runs",
    "covers_whole_tiles",
    "expand",
    "plan_windows",
    "source_index",
]

MODES: tuple[str, ...] = get_args(Mode)


def check_mode(mode: str) -> Mode:
    """Return ``mode`` if it is a known boundary mode, else raise :class:`ConfigError`."""
    if mode not in MODES:
        raise ConfigError(f"unknown boundary mode {mode!r}: use one of {', '.join(MODES)}")
    return mode  # type: ignore[return-value]


def source_index(positions: NDArray[np.int64], size: int, mode: str) -> NDArray[np.int64]:
    """Map positions along one axis (any integers) to scene indices in ``[0, size)``.

    Parameters
    ----------
    positions : int array
        Positions along the axis; those in ``[0, size)`` map to themselves.
    size : int
        Length of the scene along the axis (pixels).
    mode : str
        ``reflect`` (d c b a | a b c d | d c b a), ``mirror`` (d c b | a b c d | c b a),
        ``nearest`` (a a a | a b c d | d d d), ``wrap`` (a b c d | a b c d | a b c d),
        ``constant`` (-1 outside: the caller fills ``cval``), ``leave`` (as nearest: the
        values are never used, since pixels whose footprint leaves the scene are not computed).

    Returns
    -------
    int64 array of the same shape, in ``[0, size)`` (or ``-1`` for ``constant``).
    """
    p = np.asarray(positions, dtype=np.int64)
    outside = (p < 0) | (p >= size)
    if not outside.all():  # every mode maps [0, size) to itself: map only the others (np.mod is slow)
        q = p.copy()
        if outside.any():
            q[outside] = source_index(p[outside], size, mode)
        return q
    if mode == "reflect":
        period = 2 * size
        q = np.mod(p, period)
        return np.where(q >= size, period - 1 - q, q)
    if mode == "mirror":
        if size == 1:
            return np.zeros_like(p)
        period = 2 * size - 2
        q = np.mod(p, period)
        return np.where(q >= size, period - q, q)
    if mode in ("nearest", "leave"):
        return np.clip(p, 0, size - 1)
    if mode == "wrap":
        return np.mod(p, size)
    if mode == "constant":
        return np.where((p < 0) | (p >= size), -1, p)
    check_mode(mode)
    raise AssertionError("unreachable")


def expand(indices: NDArray[np.int64], radius: int, size: int, mode: str) -> NDArray[np.int64]:
    """The sorted, unique scene indices needed to compute ``indices`` with a halo of ``radius``.

    ``-1`` (a constant-mode cell) is never included: it is not read from the scene.
    """
    idx = np.asarray(indices, dtype=np.int64)
    if radius == 0:
        return np.unique(idx)
    offsets = np.arange(-radius, radius + 1, dtype=np.int64)
    src = source_index((idx[:, None] + offsets[None, :]).ravel(), size, mode)
    src = np.unique(src)
    return src[src >= 0]


def contiguous_runs(indices: NDArray[np.int64]) -> list[tuple[int, int]]:
    """Split sorted unique indices into ``(start, stop)`` runs of consecutive values."""
    idx = np.asarray(indices, dtype=np.int64)
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) != 1) + 1
    starts = np.concatenate(([0], breaks))
    stops = np.concatenate((breaks, [idx.size]))
    return [(int(idx[a]), int(idx[b - 1]) + 1) for a, b in zip(starts, stops, strict=True)]


def plan_windows(height: int, width: int, block_shape: tuple[int, int], window_size: int) -> list[Window]:
    """Cover a ``height`` x ``width`` scene with windows aligned to its blocks.

    Each window is a whole number of blocks (``block_shape`` = (rows, cols) of the
    input's internal tiles or strips) and about ``window_size`` pixels on a side:
    the side is rounded up to a multiple of the block side. The last window in a
    row or column is clipped at the scene edge (it may be 1 pixel wide).
    Windows are returned row-major.
    """
    if window_size < 1:
        raise ConfigError(f"window_size must be >= 1 pixel, got {window_size}")
    bh, bw = (max(1, int(block_shape[0])), max(1, int(block_shape[1])))
    wh = min(height, bh * max(1, math.ceil(window_size / bh)))
    ww = min(width, bw * max(1, math.ceil(window_size / bw)))
    return [
        Window(col, row, min(ww, width - col), min(wh, height - row))
        for row in range(0, height, wh)
        for col in range(0, width, ww)
    ]


def covers_whole_tiles(window: Window, tile: tuple[int, int], shape: tuple[int, int]) -> bool:
    """Whether ``window`` is a union of whole tiles of ``tile`` (rows, cols) pixels, cut only by
    the edges of a scene of ``shape`` (rows, cols) pixels."""
    r0, c0, h, w = int(window.row_off), int(window.col_off), int(window.height), int(window.width)
    th, tw = tile
    return (
        r0 % th == 0
        and c0 % tw == 0
        and (h % th == 0 or r0 + h == shape[0])
        and (w % tw == 0 or c0 + w == shape[1])
    )
