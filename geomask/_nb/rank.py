"""Rank filters at target pixels: median, minimum, maximum over the valid cells of a footprint."""

from __future__ import annotations

import numba
import numpy as np

from geomask._nb.cells import _bad, _cell
from geomask._nb.jit import INNER, JIT
from geomask._nb.refs import _borrowed, _held, _owned_view
from geomask._nb.ring import _ring_flush
from geomask._nb.rows import _begin_row, _row_targets
from geomask._nb.stores import _store


@numba.njit(**INNER)
def _kth(buf, n, k):  # pragma: no cover - compiled
    """The ``k``-th smallest (0-based) of ``buf[:n]``, which it reorders in place so that
    ``buf[:k] <= buf[k] <= buf[k + 1 : n]`` (Wirth's selection; no NaN in ``buf``).

    Why by hand: ``np.sort(buf[:n])`` allocated an array per pixel (a median was ~5 allocations
    per target); a selection in the scratch buffer allocates nothing. The value is the same
    order statistic whatever the algorithm.
    """
    lo = 0
    hi = n - 1
    while lo < hi:
        x = buf[k]
        i = lo
        j = hi
        while True:
            while buf[i] < x:
                i += 1
            while x < buf[j]:
                j -= 1
            if i <= j:
                buf[i], buf[j] = buf[j], buf[i]
                i += 1
                j -= 1
            if i > j:
                break
        if j < k:
            lo = i
        if k < i:
            hi = j
    return buf[k]


@numba.njit(**JIT)
def rank(block, valid, cast, footprint, kind):  # pragma: no cover - compiled
    """Median (kind 0), minimum (1) or maximum (2) over the valid cells of the footprint.

    Target pixels with no valid neighbour (or invalid themselves) are left unchanged.
    The median of an even count is the mean of the two middle values. ``block``, ``valid``,
    ``cast``: see :func:`geomask._nb.linear2d.linear2d`; ``footprint``: bool (kh, kw).
    """
    # The arguments, held by the calling frame, as views without reference counts (_unowned).
    block, valid = _borrowed(block, valid)
    src, prow, pcol, tgt, tw, out, bits, c0, ring = block
    cval, nd, has_nd, sup, has_sup = valid
    is_int, lo, hi = cast
    kh, kw = footprint.shape
    nb, h, w = out.shape[0], prow.shape[0], out.shape[2]
    ry, rx = kh // 2, kw // 2
    # Scratch: owners (kept to the end by _held) and the unowned views the loops use.
    buf_, buf = _owned_view(np.empty(kh * kw, dtype=np.float64))
    xs_, xs = _owned_view(np.empty(w, dtype=np.int64))
    segs_, segs = _owned_view(np.empty((w // 8 + 1, 3), dtype=np.int64))
    nzw_, nzw = _owned_view(np.zeros(-(-tw.shape[1] // 8) * 8, dtype=np.uint8))
    cval_valid = not _bad(cval, nd, has_nd)
    changed = 0
    for b in range(nb):
        filled = 0
        for i in range(h):
            filled, nseg, oi = _begin_row(src, b, prow, pcol, ry, rx, c0, tw, out, ring, i, filled, segs, nzw)
            if nseg == 0:
                continue
            nt = 0
            for g in range(nseg):
                nt += _row_targets(tw, tgt, i, segs[g, 1], segs[g, 2], xs[nt:])
            pr = prow[i]
            for mm in range(nt):
                x = xs[mm]
                pc = pcol[x]
                _, ok = _cell(src, b, pr[ry], pc[rx], cval, cval_valid, nd, has_nd, sup, has_sup)
                if not ok:
                    continue
                n = 0
                for a in range(kh):
                    for c in range(kw):
                        if not footprint[a, c]:
                            continue
                        v, ok = _cell(src, b, pr[a], pc[c], cval, cval_valid, nd, has_nd, sup, has_sup)
                        if ok:
                            buf[n] = v
                            n += 1
                if n == 0:
                    continue
                if kind == 1:
                    m = buf[0]
                    for k in range(1, n):
                        if buf[k] < m:
                            m = buf[k]
                elif kind == 2:
                    m = buf[0]
                    for k in range(1, n):
                        if buf[k] > m:
                            m = buf[k]
                else:
                    k = n // 2
                    m = _kth(buf, n, k)
                    if n % 2 == 0:  # the mean of the two middle values; buf[:k] are the k smallest
                        below = buf[0]
                        for q in range(1, k):
                            if buf[q] > below:
                                below = buf[q]
                        m = (below + m) / 2.0
                changed += _store(out, bits, b, oi, x, m, is_int, lo, hi)
    if ring[0]:
        _ring_flush(ring, src, prow, ry, c0, out, h)
    _held((buf_, xs_, segs_, nzw_))
    return changed
