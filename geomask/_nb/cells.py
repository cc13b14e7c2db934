"""Single cells and 1-D taps: scipy's correlate1d order, validity of a cell, bit-wise change counts."""

from __future__ import annotations

import numba
import numpy as np

from geomask._nb.jit import EPS, INNER, JIT


@numba.njit(**INNER)
def symmetry(w):  # pragma: no cover - compiled
    """1 for symmetric, -1 for antisymmetric, 0 otherwise (scipy's test, DBLEPSILON tolerance)."""
    n = w.shape[0]
    c = n // 2
    for ll in range(1, c + 1):
        if abs(w[c + ll] - w[c - ll]) > EPS:
            break
    else:
        return 1
    for ll in range(1, c + 1):
        if abs(w[c + ll] + w[c - ll]) > EPS:
            return 0
    return -1


# Inlined: the sparse loops call it once per kernel row and pixel; as a call it cost a quarter of
# a call on scattered pixels (1 %, 3x3), for ~5 % more compile time.
@numba.njit(**JIT, inline="always")
def tap1d(line, start, w, sym):  # pragma: no cover - compiled
    """Correlate ``w`` with ``line[start : start + len(w)]`` in scipy's correlate1d order."""
    n = w.shape[0]
    c = n // 2
    ctr = start + c
    if sym > 0:
        t = line[ctr] * w[c]
        for jj in range(-c, 0):
            t += (line[ctr + jj] + line[ctr - jj]) * w[c + jj]
        return t
    if sym < 0:
        t = line[ctr] * w[c]
        for jj in range(-c, 0):
            t += (line[ctr + jj] - line[ctr - jj]) * w[c + jj]
        return t
    t = line[start + n - 1] * w[n - 1]
    for k in range(n - 1):
        t += line[start + k] * w[k]
    return t


@numba.njit(**JIT, inline="always")
def _bad(v, nd, has_nd):  # pragma: no cover - compiled
    """An invalid value: NaN, or equal to nodata."""
    return v != v or (has_nd and v == nd)


@numba.njit(**JIT, inline="always")
def _cell(src, b, p, q, cval, cval_valid, nd, has_nd, sup, has_sup):  # pragma: no cover - compiled
    """(value, valid) of one cell; ``p`` or ``q`` < 0 is a constant cell."""
    if p < 0 or q < 0:
        return cval, cval_valid
    v = np.float64(src[b, p, q])
    return v, not (v != v or (has_nd and v == nd) or (has_sup and not sup[p, q]))


@numba.njit(**JIT)
def any_invalid(src, b, prow, pcol, nd, has_nd, has_sup, cval_valid):  # pragma: no cover - compiled
    """Whether band ``b`` of the block holds an invalid cell, or the maps use an invalid cval."""
    if has_sup:
        return True
    if not cval_valid:
        for i in range(prow.shape[0]):
            for k in range(prow.shape[1]):
                if prow[i, k] < 0:
                    return True
        for x in range(pcol.shape[0]):
            for j in range(pcol.shape[1]):
                if pcol[x, j] < 0:
                    return True
    plane = src[b]
    h, w = plane.shape
    for r in range(h):
        bad = False
        for c in range(w):
            v = np.float64(plane[r, c])
            bad |= (v != v) | (has_nd & (v == nd))
        if bad:
            return True
    return False


@numba.njit(**JIT, inline="always")
def _touch(src, b, pr, pcol, xs, n, rx):  # pragma: no cover - compiled
    """Load each target's own column in each source row of its footprint, in one tight loop of
    independent loads, and return their sum (to be stored, so the loads stay).

    Scattered targets otherwise miss the cache one dependent tap at a time; loaded here first,
    many misses are in flight at once. Changes the speed only.
    """
    acc = 0.0
    for k in range(pr.shape[0]):
        p = pr[k]
        if p < 0:
            continue
        for m in range(n):
            acc += np.float64(src[b, p, pcol[xs[m], rx]])
    return acc


@numba.njit(**JIT)
def count_changed(before, rows, cols, after, th, tw):  # pragma: no cover - compiled
    """Per tile of ``th`` x ``tw`` output pixels: the pixels where any band of ``after[:, i, x]``
    differs from ``before[:, rows[i], cols[x]]``. Returns int64 counts (tiles down, across).

    Pass unsigned views, so the comparison is bit-wise.
    """
    nb, h, w = after.shape
    counts = np.zeros(((h + th - 1) // th, (w + tw - 1) // tw), dtype=np.int64)
    for i in range(h):
        r = rows[i]
        ct = counts[i // th]
        for x in range(w):
            c = cols[x]
            for b in range(nb):
                if before[b, r, c] != after[b, i, x]:
                    ct[x // tw] += 1
                    break
    return counts
