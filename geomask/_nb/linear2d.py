"""2-D correlation at target pixels (``scipy.ndimage.correlate``'s order)."""

from __future__ import annotations

import numba
import numpy as np

from geomask._nb.cells import _bad, _cell, _touch
from geomask._nb.jit import EPS, INNER, JIT
from geomask._nb.refs import _borrowed, _held, _owned_view, _unowned
from geomask._nb.ring import _ring_flush
from geomask._nb.rows import _DENSE_MIN, _begin_row, _gather_line, _row_targets
from geomask._nb.stores import _finish_dense, _store


@numba.njit(**INNER)
def _careful2d(
    src, b, pr, pc, di, dj, ww, cval, cval_valid, nd, has_nd, sup, has_sup, normalize, full
):  # pragma: no cover
    """(ok, value) of one pixel with invalid cells among its taps: ``num * (full / den)``."""
    ry = pr.shape[0] // 2
    rx = pc.shape[0] // 2
    _, ok = _cell(src, b, pr[ry], pc[rx], cval, cval_valid, nd, has_nd, sup, has_sup)
    if not ok:
        return False, 0.0
    t = 0.0
    den = 0.0
    for k in range(ww.shape[0]):
        v, ok = _cell(src, b, pr[di[k]], pc[dj[k]], cval, cval_valid, nd, has_nd, sup, has_sup)
        if ok:
            t += v * ww[k]
            den += ww[k]
    if normalize:
        if den == 0:
            return False, 0.0
        t = t * (full / den)
    return True, t


@numba.njit(**JIT)
def linear2d(block, valid, cast, weights, pline, normalize, nrow, nbits):  # pragma: no cover - compiled
    """Correlate with ``weights`` (|w| > DBLEPSILON, C order) at target pixels. Returns changes.

    ``pline`` (w + kw - 1,) maps padded columns to ``src`` columns when the output columns
    are contiguous (``pcol[x, j] == pline[x + j]``), else it is empty. Segments of a row
    (:func:`_row_segments`) with many targets for their width then run tap-outer over
    that segment only (vectorised across pixels, each pixel's taps still summed in order)
    and, where at least 1 in 8 of the segment are targets and no cell is invalid, store in
    straight passes (:func:`_store_span`); the targets of sparse segments are visited one
    by one, all of a row's together. The switches weigh the taps against the cache misses
    of scattered pixels (about one per kernel row); they change the speed, never a value.

    ``block`` = (src, prow, pcol, tgt, tw, out, bits, c0, ring) and ``valid`` = (cval, nd,
    has_nd, sup, has_sup): see :func:`geomask._nb.refs._borrowed`; ``cast`` = (is_int, lo, hi):
    the output's dtype is an integer one, clipped to lo..hi. ``nrow``/``nbits``: a scratch row
    (w,) of ``out``'s dtype and its unsigned view.
    """
    # The arguments, held by the calling frame, as views without reference counts (_unowned).
    block, valid = _borrowed(block, valid)
    src, prow, pcol, tgt, tw, out, bits, c0, ring = block
    cval, nd, has_nd, sup, has_sup = valid
    is_int, lo, hi = cast
    pline, nrow, nbits = _unowned(pline), _unowned(nrow), _unowned(nbits)
    kh, kw = weights.shape
    nb, h, w = out.shape[0], prow.shape[0], out.shape[2]
    nz = 0
    for i in range(kh):
        for j in range(kw):
            if abs(weights[i, j]) > EPS:
                nz += 1
    di = np.empty(nz, dtype=np.int64)
    dj = np.empty(nz, dtype=np.int64)
    ww = np.empty(nz, dtype=np.float64)
    n = 0
    full = 0.0
    for i in range(kh):
        for j in range(kw):
            if abs(weights[i, j]) > EPS:
                di[n] = i
                dj[n] = j
                ww[n] = weights[i, j]
                full += weights[i, j]
                n += 1
    cval_valid = not _bad(cval, nd, has_nd)
    check = has_nd or has_sup or not cval_valid  # NaN is found through the sum itself
    careful = (di, dj, ww, cval, cval_valid, nd, has_nd, sup, has_sup, normalize, full)  # for _careful2d
    dense_ok = pline.shape[0] == w + kw - 1
    pw = pline.shape[0]
    sink = np.zeros(1)  # where _touch leaves its sum
    # Scratch: owners (kept to the end by _held) and the unowned views the loops use.
    xs_, xs = _owned_view(np.empty(w, dtype=np.int64))
    xsp_, xsp = _owned_view(np.empty(w, dtype=np.int64))
    segs_, segs = _owned_view(np.empty((w // 8 + 1, 3), dtype=np.int64))
    nzw_, nzw = _owned_view(np.zeros(-(-tw.shape[1] // 8) * 8, dtype=np.uint8))
    lines_, lines = _owned_view(np.empty((kh, max(pw, 1)), dtype=np.float64))
    lbad_, lbad = _owned_view(np.zeros((kh, max(pw, 1)), dtype=np.bool_))
    res_, res = _owned_view(np.empty(w, dtype=np.float64))
    bad_, bad = _owned_view(np.zeros(w, dtype=np.bool_))
    changed = 0
    for b in range(nb):
        filled = 0
        for i in range(h):
            filled, nseg, oi = _begin_row(
                src, b, prow, pcol, kh // 2, kw // 2, c0, tw, out, ring, i, filled, segs, nzw
            )
            if nseg == 0:
                continue
            pr = prow[i]
            nsp = 0  # targets of sparse segments, in xsp
            for g in range(nseg):
                n, x0, x1 = segs[g, 0], segs[g, 1], segs[g, 2]
                span = x1 - x0
                if dense_ok and n >= _DENSE_MIN and 4 * n * (nz + 32 * kh) >= span * nz:
                    # Tap-outer over the columns x0..x1 that hold the row's targets.
                    for a in range(kh):
                        _gather_line(
                            src,
                            b,
                            pr[a],
                            pline[x0 : x1 + kw - 1],
                            lines[a],
                            lbad[a],
                            cval,
                            cval_valid,
                            nd,
                            has_nd,
                            sup,
                            has_sup,
                            check,
                        )
                    rs = res[x0:x1]
                    rs[:] = 0.0
                    for k in range(nz):
                        la = lines[di[k], dj[k] : dj[k] + span]
                        wk = ww[k]
                        for x in range(span):
                            rs[x] += la[x] * wk
                    if check:
                        bs = bad[x0:x1]
                        bs[:] = False
                        for k in range(nz):
                            ba = lbad[di[k], dj[k] : dj[k] + span]
                            for x in range(span):
                                bs[x] |= ba[x]
                    sums = (res, bad, check)
                    ch, left = _finish_dense(
                        block, valid, cast, (b, i, oi), (n, x0, x1), sums, (nrow, nbits), xs
                    )
                    changed += ch
                    for m in range(left):  # targets with a NaN sum or an invalid cell
                        x = xs[m]
                        ok, t = _careful2d(src, b, pr, pcol[x], *careful)
                        if ok:
                            changed += _store(out, bits, b, oi, x, t, is_int, lo, hi)
                    continue
                nsp += _row_targets(tw, tgt, i, x0, x1, xsp[nsp:])  # sparse: all at once, below
            n = nsp
            sink[0] += _touch(src, b, pr, pcol, xsp, n, kw // 2)
            for m in range(n):
                x = xsp[m]
                # pcol[x, j], not a view pcol[x]: a view costs reference counting per pixel
                _, ok = _cell(
                    src, b, pr[kh // 2], pcol[x, kw // 2], cval, cval_valid, nd, has_nd, sup, has_sup
                )
                if not ok:  # nodata, NaN or unsupported: never changes
                    continue
                t = 0.0
                bd = False
                for k in range(nz):
                    p = pr[di[k]]
                    q = pcol[x, dj[k]]
                    if p < 0 or q < 0:
                        v = cval
                        bd |= not cval_valid
                    else:
                        v = np.float64(src[b, p, q])
                        if check:
                            bd |= (has_nd and v == nd) or (has_sup and not sup[p, q])
                    t += v * ww[k]
                if t != t or bd:
                    ok, t = _careful2d(src, b, pr, pcol[x], *careful)
                    if not ok:
                        continue
                changed += _store(out, bits, b, oi, x, t, is_int, lo, hi)
    if ring[0]:
        _ring_flush(ring, src, prow, kh // 2, c0, out, h)
    _held((xs_, xsp_, segs_, nzw_, lines_, lbad_, res_, bad_))
    return changed
