"""Storing results into the output: cast to its dtype, count the bit-wise changes, and the
finish of a dense segment that both linear kernels share."""

from __future__ import annotations

import numba
import numpy as np

from geomask._nb.cells import _bad, _cell
from geomask._nb.jit import INNER, JIT
from geomask._nb.rows import _row_targets


@numba.njit(**INNER)
def _store_span(
    tg_row, res_row, o_row, ob_row, nrow_row, nbits_row, x0, x1, is_int, lo, hi
):  # pragma: no cover
    """:func:`_store_stretch` over columns x0..x1 of whole rows (the views it needs start at 0)."""
    return _store_stretch(
        tg_row[x0:x1],
        res_row[x0:x1],
        o_row[x0:x1],
        ob_row[x0:x1],
        nrow_row[x0:x1],
        nbits_row[x0:x1],
        is_int,
        lo,
        hi,
    )


@numba.njit(**INNER)
def _store_stretch(tg, res, o, ob, nrow, nbits, is_int, lo, hi):  # pragma: no cover - compiled
    """Store ``res`` at the targets ``tg`` of one stretch of an output row in three straight
    (vectorised) passes; returns the number of values that changed bit-wise.

    All arguments are views of the same stretch, starting at 0 (see :func:`_column_pass`):
    ``o``/``ob`` the output (holding the original pixels) and its unsigned view, ``nrow``/``nbits``
    a scratch row of the output's dtype and its unsigned view. Returns -1, storing nothing, when
    a target's result or own value is NaN: the caller then takes the per-pixel path (which
    handles invalid cells). Only for blocks without nodata or support.
    """
    n = res.shape[0]
    if not is_int:
        bad = False
        for x in range(n):
            t = res[x]
            c = o[x]
            bad |= tg[x] & ((t != t) | (c != c))
        if bad:
            return -1
    for x in range(n):
        t = res[x]
        if is_int:
            t = min(max(np.rint(t), lo), hi)
        nrow[x] = t
    changed = 0
    for x in range(n):
        new = nbits[x]
        old = ob[x]
        sel = tg[x]
        changed += np.int64(sel & (new != old))
        ob[x] = new if sel else old
    return changed


@numba.njit(**JIT, inline="always")
def _store(out, bits, b, i, x, res, is_int, lo, hi):  # pragma: no cover - compiled
    """Cast ``res`` to ``out``'s dtype (integers: rint, clip), store it; 1 if the bits changed."""
    old = bits[b, i, x]
    if is_int:
        r = np.rint(res)
        if r < lo:
            r = lo
        elif r > hi:
            r = hi
        out[b, i, x] = r
    else:
        out[b, i, x] = res
    return 1 if bits[b, i, x] != old else 0


@numba.njit(**INNER)
def _finish_dense(block, valid, cast, at, seg, sums, straight, xs):  # pragma: no cover - compiled
    """Store a dense segment's sums at its targets; returns (changed, n): the first ``n`` of
    ``xs`` are the targets left to the caller's careful path (a NaN sum, or an invalid cell in the
    footprint), in column order.

    ``block``, ``valid``, ``cast``: the kernel's argument groups (see
    :func:`geomask._nb.refs._borrowed`; ``cast`` = (is_int, lo, hi)). ``at`` = (b, i, oi): the
    band, the output row and its row in ``out``; ``seg`` = (n, x0, x1): the segment (n targets,
    :func:`geomask._nb.rows._row_segments`); ``sums`` = (res, bad, check): ``res[x0:x1]`` the
    sums, ``bad[x0:x1]`` (read only with ``check``) an invalid cell in each footprint;
    ``straight`` = (nrow, nbits): the scratch row of :func:`_store_span`.

    Without ``check`` (no invalid cell in the block), a segment with 1 in 8 targets or more is
    stored in straight passes; otherwise target by target, skipping targets invalid themselves
    (nodata, NaN or unsupported: they never change). The order of the stores changes no value.
    """
    src, prow, pcol, tgt, tw, out, bits, _, _ = block
    cval, nd, has_nd, sup, has_sup = valid
    is_int, lo, hi = cast
    b, i, oi = at
    n, x0, x1 = seg
    res, bad, check = sums
    if not check and 8 * n >= x1 - x0:  # dense enough for the straight stores
        ch = _store_span(
            tgt[i], res, out[b, oi], bits[b, oi], straight[0], straight[1], x0, x1, is_int, lo, hi
        )
        if ch >= 0:
            return ch, 0
    cval_valid = not _bad(cval, nd, has_nd)
    p = prow[i, prow.shape[1] // 2]
    rx = pcol.shape[1] // 2
    n = _row_targets(tw, tgt, i, x0, x1, xs)
    changed = 0
    left = 0
    for m in range(n):
        x = xs[m]
        _, ok = _cell(src, b, p, pcol[x, rx], cval, cval_valid, nd, has_nd, sup, has_sup)
        if not ok:  # nodata, NaN or unsupported: never changes
            continue
        t = res[x]
        if t != t or (check and bad[x]):
            xs[left] = x
            left += 1
            continue
        changed += _store(out, bits, b, oi, x, t, is_int, lo, hi)
    return changed, left
