"""Compiled inner loops (numba) of the masked filters.

Why hand-written: no library computes a filter *only at selected pixels* and
with a fixed per-pixel summation order. OpenCV and scipy compute every pixel;
subsetting afterwards wastes the work when the mask is sparse. These loops visit
only target pixels, and every pixel's value is summed in the same order whatever
window it is computed in, so a tiled run is bit-identical to a whole-image run.

The orders replicate scipy.ndimage on float64 exactly, so scipy is a bit-exact
oracle in the tests:

* 2-D correlation (``scipy.ndimage.correlate``): start at 0.0, add
  ``value * weight`` in C order over the weights with ``|w| > DBL_EPSILON``
  (scipy drops smaller weights from the footprint).
* 1-D correlation (``scipy.ndimage.correlate1d``): symmetric weights (within
  DBL_EPSILON) sum ``(left + right) * w`` pairs after the centre term;
  antisymmetric weights ``(left - right) * w``; other weights start with the
  last tap, then add taps from the first on. Zero weights are not skipped.

All inputs are float64 and padded by the kernel's halo; outputs are float64.
"""

from __future__ import annotations

import numba
import numpy as np

_EPS = np.finfo(np.float64).eps
_JIT = {"cache": True, "nogil": True, "boundscheck": False}


@numba.njit(**_JIT)
def row_has_target(target):  # pragma: no cover - compiled
    h, w = target.shape
    rows = np.zeros(h, dtype=np.bool_)
    for y in range(h):
        for x in range(w):
            if target[y, x]:
                rows[y] = True
                break
    return rows


@numba.njit(**_JIT)
def correlate2d(padded, weights, target, out):  # pragma: no cover - compiled
    """out[y, x] = sum of padded[y+i, x+j] * weights[i, j] (|w| > DBL_EPSILON, C order) at target pixels."""
    kh, kw = weights.shape
    h, w = target.shape
    nz = 0
    for i in range(kh):
        for j in range(kw):
            if abs(weights[i, j]) > _EPS:
                nz += 1
    di = np.empty(nz, dtype=np.int64)
    dj = np.empty(nz, dtype=np.int64)
    ww = np.empty(nz, dtype=np.float64)
    n = 0
    for i in range(kh):
        for j in range(kw):
            if abs(weights[i, j]) > _EPS:
                di[n] = i
                dj[n] = j
                ww[n] = weights[i, j]
                n += 1
    rows = row_has_target(target)
    for y in range(h):
        if not rows[y]:
            continue
        for x in range(w):
            if target[y, x]:
                t = 0.0
                for k in range(nz):
                    t += padded[y + di[k], x + dj[k]] * ww[k]
                out[y, x] = t


@numba.njit(**_JIT)
def symmetry(w):  # pragma: no cover - compiled
    """1 for symmetric, -1 for antisymmetric, 0 otherwise (scipy's test, DBL_EPSILON tolerance)."""
    n = w.shape[0]
    c = n // 2
    for ll in range(1, c + 1):
        if abs(w[c + ll] - w[c - ll]) > _EPS:
            break
    else:
        return 1
    for ll in range(1, c + 1):
        if abs(w[c + ll] + w[c - ll]) > _EPS:
            return 0
    return -1


@numba.njit(**_JIT)
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


@numba.njit(**_JIT)
def correlate_separable(padded, column, row, target, const_rows, out):  # pragma: no cover - compiled
    """Two 1-D passes: along rows (``row`` weights, axis -1) then columns (``column``, axis -2).

    ``const_rows[r]`` marks padded rows beyond the scene edge in constant mode: as in
    scipy's second pass, their intermediate value is the padded value itself (cval),
    not a row pass over it.

    Only the row-pass values that some target pixel needs are computed: a
    padded row ``r`` at column ``x`` is needed when a target pixel lies in
    column ``x`` within output rows ``r - kh + 1 .. r``.
    """
    kh = column.shape[0]
    kw = row.shape[0]
    h, w = target.shape
    ph = h + kh - 1
    sym_r = symmetry(row)
    sym_c = symmetry(column)
    # count[x] = number of target pixels in column x among output rows (r-kh+1 .. r)
    count = np.zeros(w, dtype=np.int64)
    hpass = np.empty((ph, w), dtype=np.float64)
    rows = row_has_target(target)
    line = np.empty(kh, dtype=np.float64)
    for r in range(ph):
        if r < h and rows[r]:
            for x in range(w):
                if target[r, x]:
                    count[x] += 1
        old = r - kh
        if old >= 0 and old < h and rows[old]:
            for x in range(w):
                if target[old, x]:
                    count[x] -= 1
        for x in range(w):
            if count[x] > 0:
                if const_rows[r]:
                    hpass[r, x] = padded[r, x + kw // 2]
                else:
                    hpass[r, x] = tap1d(padded[r], x, row, sym_r)
    for y in range(h):
        if not rows[y]:
            continue
        for x in range(w):
            if target[y, x]:
                for i in range(kh):
                    line[i] = hpass[y + i, x]
                out[y, x] = tap1d(line, 0, column, sym_c)


@numba.njit(**_JIT)
def rank_filter(padded, valid, footprint, target, kind, out):  # pragma: no cover - compiled
    """Median (kind 0), minimum (1) or maximum (2) over the valid cells of the footprint.

    Target pixels with no valid neighbour are skipped (left for the caller).
    The median of an even count is the mean of the two middle values.
    """
    kh, kw = footprint.shape
    h, w = target.shape
    buf = np.empty(kh * kw, dtype=np.float64)
    rows = row_has_target(target)
    for y in range(h):
        if not rows[y]:
            continue
        for x in range(w):
            if not target[y, x]:
                continue
            n = 0
            for i in range(kh):
                for j in range(kw):
                    if footprint[i, j] and valid[y + i, x + j]:
                        buf[n] = padded[y + i, x + j]
                        n += 1
            if n == 0:
                continue
            if kind == 1:
                m = buf[0]
                for k in range(1, n):
                    if buf[k] < m:
                        m = buf[k]
                out[y, x] = m
            elif kind == 2:
                m = buf[0]
                for k in range(1, n):
                    if buf[k] > m:
                        m = buf[k]
                out[y, x] = m
            else:
                s = np.sort(buf[:n])
                if n % 2 == 1:
                    out[y, x] = s[n // 2]
                else:
                    out[y, x] = (s[n // 2 - 1] + s[n // 2]) / 2.0
