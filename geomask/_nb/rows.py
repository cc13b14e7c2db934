"""The row machinery: a row's targets and segments, filling and starting output rows, and
gathering a source row through the column map."""

from __future__ import annotations

import numba
import numpy as np

from geomask._nb.jit import INNER, JIT
from geomask._nb.ring import _ring_flush, _ring_take


@numba.njit(**JIT, inline="always")
def _row_targets(tw, tgt, i, x0, x1, xs):  # pragma: no cover - compiled
    """Columns of the targets of row ``i`` within x0..x1 (whole words) into ``xs``; returns their
    number.

    ``tw`` is ``tgt`` (padded to a multiple of 8 columns) viewed as uint64, so empty
    stretches are skipped 8 pixels at a time.
    """
    n = 0
    for wd in range(x0 // 8, (x1 + 7) // 8):
        if tw[i, wd] == 0:
            continue
        base = wd * 8
        for x in range(base, min(base + 8, x1)):
            if tgt[i, x]:
                xs[n] = x
                n += 1
    return n


_BYTE_SUM = np.uint64(0x0101010101010101)
_TOP = np.uint64(56)


# Empty 8-pixel words that split a row's targets into separate segments: a gap this wide costs
# more to compute densely (64 columns) than starting a segment (a few calls, the kernel's halo).
_GAP = 8
# Segments with fewer targets than this are computed pixel by pixel: the dense path's fixed cost
# per segment (calls, a row pass per kernel row over the segment and its margins) exceeds theirs.
_DENSE_MIN = 8


@numba.njit(**JIT)
def _row_segments(tw, i, x0, x1, segs, nz):  # pragma: no cover - compiled
    """Split the targets of row ``i`` (within whole words x0..x1) into segments: runs of words
    holding targets, cut where at least ``_GAP`` empty words lie between. ``segs[g]`` gets
    (count, start, stop) of segment ``g`` (whole words, stop clipped to ``x1``); returns how many.

    Rows of ROI masks hold a few separate stretches (a polygon's chords); computing each alone,
    not the span from the first target to the last, keeps the cost in the targets' area. Where
    the segments cover a quarter of the stretch from the first to the last or more, the row is one
    segment (the gaps cost less than a segment's calls). Depends on the mask only, so every
    caller splits a row the same way.

    ``nz``: scratch (uint8, a multiple of 8 long, zero past the row's words). It gets 1 where a
    word of the row holds a target (one vectorised pass over the row, which the caller's check
    for an empty row has just brought into cache); 8 flags are then read at a time (one uint64),
    so 64 empty columns cost one load instead of eight.
    """
    for wd in range(tw.shape[1]):
        nz[wd] = tw[i, wd] != 0
    g = 0
    n = 0
    first = -1
    last = -1
    wd = x0 // 8
    end = (x1 + 7) // 8
    blocks = nz.view(np.uint64)
    while wd < end:
        if (wd & 7) == 0 and blocks[wd >> 3] == 0:  # 64 empty columns at a time
            wd += 8
            continue
        if nz[wd] == 0:
            wd += 1
            continue
        v = tw[i, wd]
        wd += 1
        if first >= 0 and wd - 1 - last > _GAP:
            segs[g, 0] = n
            segs[g, 1] = first * 8
            segs[g, 2] = min(x1, (last + 1) * 8)
            g += 1
            n = 0
            first = wd - 1
        elif first < 0:
            first = wd - 1
        last = wd - 1
        n += np.int64((v * _BYTE_SUM) >> _TOP)
    if first >= 0:
        segs[g, 0] = n
        segs[g, 1] = first * 8
        segs[g, 2] = min(x1, (last + 1) * 8)
        g += 1
    if g > 1:  # segments over a quarter of the stretch or more: one segment (each costs some calls)
        covered = 0
        total = 0
        for k in range(g):
            covered += segs[k, 2] - segs[k, 1]
            total += segs[k, 0]
        if 4 * covered >= segs[g - 1, 2] - segs[0, 1]:
            segs[0, 0] = total
            segs[0, 2] = segs[g - 1, 2]
            g = 1
    return g


@numba.njit(**JIT, inline="always")
def _fill(src, b, prow, pcol, ry, rx, c0, out, start, stop):  # pragma: no cover - compiled
    """Rows start..stop-1 of ``out[b]`` <- the block's own pixels, in their dtype; returns ``stop``.

    ``c0 >= 0``: the own columns are ``src`` columns ``c0 .. c0 + w`` (a straight copy),
    else they are gathered through ``pcol[:, rx]``. The loops fill a row (and the ``ry`` rows
    after it) just before they compute it, so the stores hit rows still in cache and the
    source rows the kernel reads next have just been streamed in.
    """
    w = out.shape[2]
    for i in range(start, stop):
        p = prow[i, ry]
        o = out[b, i]
        if c0 >= 0:
            s = src[b, p, c0 : c0 + w]
            for x in range(w):
                o[x] = s[x]
        else:
            for x in range(w):
                o[x] = src[b, p, pcol[x, rx]]
    return stop


@numba.njit(**JIT, inline="always")
def _begin_row(
    src, b, prow, pcol, ry, rx, c0, tw, out, ring, i, filled, segs, nzw
):  # pragma: no cover - compiled
    """Start output row ``i``: returns (filled, nseg, oi).

    New output: rows are filled up to ``i + ry`` (:func:`_fill`), ``oi = i``. In place, for a
    row with targets: rows whose last reader is done are written back first (writing back only
    when a slot is needed keeps empty rows cheap; the ring never holds more rows meanwhile), and
    row ``i`` gets a ring slot ``oi``.
    ``segs[:nseg]``: the row's segments (:func:`_row_segments`; ``nseg == 0``: nothing to compute).
    ``nzw``: scratch for :func:`_row_segments` (its ``nz``).
    """
    if not ring[0]:
        filled = _fill(src, b, prow, pcol, ry, rx, c0, out, filled, min(prow.shape[0], i + ry + 1))
    any_ = np.uint64(0)
    for wd in range(tw.shape[1]):  # one OR over the row's words (vectorised): most rows are empty
        any_ |= tw[i, wd]
    if any_ == 0:
        return filled, 0, i
    if ring[0] and ring[6][0] > 0:  # rows held: a slot is needed now
        _ring_flush(ring, src, prow, ry, c0, out, i)
    nseg = _row_segments(tw, i, 0, out.shape[2], segs, nzw)
    oi = i
    if ring[0]:
        oi = _ring_take(ring, src, prow, ry, c0, out, i, segs, nseg)
    return filled, nseg, oi


@numba.njit(**JIT)
def first_last_readers(prow, n):  # pragma: no cover - compiled
    """(first, last) int64 arrays (n,): the first and last output row ``i`` with ``prow[i, k] == j``
    for each row ``j`` (none: int64 max and -1). One pass (numpy's ufunc.at took 0.2 ms for 4096
    rows, a visible part of a sparse in-place call)."""
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.full(n, -1, dtype=np.int64)
    for i in range(prow.shape[0]):
        for k in range(prow.shape[1]):
            j = prow[i, k]
            if j >= 0:
                first[j] = min(first[j], i)
                last[j] = max(last[j], i)
    return first, last


@numba.njit(**JIT)
def gather_center(src, prow, pcol, ry, rx, c0, out):  # pragma: no cover - compiled
    """out[b, i, x] = src[b, prow[i, ry], pcol[x, rx]]: the block's own pixels, in their dtype."""
    for b in range(out.shape[0]):
        _fill(src, b, prow, pcol, ry, rx, c0, out, 0, out.shape[1])


@numba.njit(**INNER)
def _gather_line(
    src, b, p, pline, line, lbad, cval, cval_valid, nd, has_nd, sup, has_sup, check
):  # pragma: no cover
    """Row ``p`` of band ``b`` at columns ``pline`` (as float64) into ``line``; invalid cells: ``lbad``."""
    n = pline.shape[0]
    if p < 0:
        for c in range(n):
            line[c] = cval
            lbad[c] = not cval_valid
        return
    q0 = pline[0]
    steps = 0  # columns that do not follow the one before: 0 means one straight run of src
    for c in range(n - 1):
        steps += pline[c + 1] - pline[c] != 1
    if q0 >= 0 and steps == 0:  # the common case away from the edges: straight, vectorised
        s = src[b, p, q0 : q0 + n]
        for c in range(n):
            line[c] = np.float64(s[c])
        if check:
            for c in range(n):
                v = line[c]
                lbad[c] = (has_nd and v == nd) or (has_sup and not sup[p, q0 + c])
        else:
            for c in range(n):
                lbad[c] = False
        return
    for c in range(n):
        q = pline[c]
        if q < 0:
            line[c] = cval
            lbad[c] = not cval_valid
        else:
            v = np.float64(src[b, p, q])
            line[c] = v
            if check:
                lbad[c] = (has_nd and v == nd) or (has_sup and not sup[p, q])
    if not check:
        for c in range(n):
            if pline[c] >= 0:
                lbad[c] = False
