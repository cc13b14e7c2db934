"""Separable kernels at target pixels: two ``scipy.ndimage.correlate1d`` passes, rows first,
row-pass values cached per source row."""

from __future__ import annotations

import numba
import numpy as np

from geomask._nb.cells import _bad, _cell, _touch, symmetry, tap1d
from geomask._nb.jit import INNER, JIT
from geomask._nb.passes import _column_pass, _uncached_pass
from geomask._nb.refs import _borrowed, _held, _owned_view, _unowned
from geomask._nb.ring import _ring_flush
from geomask._nb.rows import _DENSE_MIN, _begin_row, _row_targets
from geomask._nb.stores import _finish_dense, _store

# Columns computed beyond a dense segment's row passes (separable kernels), see :func:`separable`.
_MARGIN = 16
# Runs of cached row-pass columns kept per source row (separable kernels): one per segment.
_RUNS = 8


@numba.njit(**INNER)
def _careful_sep(
    src,
    b,
    pr,
    pc,
    column,
    row,
    sym_c,
    sym_r,
    full_row,
    line,
    dline,
    cnum,
    cden,
    cfull,
    cval,
    cval_valid,
    nd,
    has_nd,
    sup,
    has_sup,
    normalize,
):  # pragma: no cover - compiled
    """(ok, value) of one pixel with invalid cells in its footprint: zeroed sums, renormalised."""
    kh = column.shape[0]
    kw = row.shape[0]
    _, ok = _cell(src, b, pr[kh // 2], pc[kw // 2], cval, cval_valid, nd, has_nd, sup, has_sup)
    if not ok:
        return False, 0.0
    for k in range(kh):
        p = pr[k]
        if p < 0:
            cnum[k] = cval if cval_valid else 0.0
            cden[k] = 1.0 if cval_valid else 0.0
            cfull[k] = 1.0
            continue
        for j in range(kw):
            v, ok = _cell(src, b, p, pc[j], cval, cval_valid, nd, has_nd, sup, has_sup)
            line[j] = v if ok else 0.0
            dline[j] = 1.0 if ok else 0.0
        cnum[k] = tap1d(line, 0, row, sym_r)
        cden[k] = tap1d(dline, 0, row, sym_r)
        cfull[k] = full_row
    t = tap1d(cnum, 0, column, sym_c)
    if normalize:
        den = tap1d(cden, 0, column, sym_c)
        if den == 0:
            return False, 0.0
        t = t * (tap1d(cfull, 0, column, sym_c) / den)
    return True, t


@numba.njit(**JIT)
def separable(block, valid, cast, column, row, pline, normalize, nrow, nbits):  # pragma: no cover - compiled
    """Two 1-D passes: along rows (``row`` weights) then columns (``column``), scipy's order.

    A cell row beyond the scene in constant mode (``prow == -1``) keeps its value
    (cval) in the second pass, as in scipy. Row-pass values are cached per source
    row and column in ``kh + 1`` slots (a sliding window over the output rows), so
    each is computed once whichever pixel needs it: a dense row costs about kh + kw
    multiplications per pixel (computed tap-outer over the row's target span when
    ``pline`` is given, see :func:`linear2d`; a slot's cached run of columns is extended
    as the spans of the next rows move), a sparse pixel at most kh * kw + kh.

    The arguments are those of :func:`geomask._nb.linear2d.linear2d`, with the weights as
    ``column`` (kh,) and ``row`` (kw,).
    """
    # The arguments, held by the calling frame, as views without reference counts (_unowned).
    block, valid = _borrowed(block, valid)
    src, prow, pcol, tgt, tw, out, bits, c0, ring = block
    cval, nd, has_nd, sup, has_sup = valid
    is_int, lo, hi = cast
    pline, nrow, nbits = _unowned(pline), _unowned(nrow), _unowned(nbits)
    kh = column.shape[0]
    kw = row.shape[0]
    nb, h, w = out.shape[0], prow.shape[0], out.shape[2]
    sym_r = symmetry(row)
    sym_c = symmetry(column)
    ones = np.ones(kw, dtype=np.float64)
    full_row = tap1d(ones, 0, row, sym_r)
    cval_valid = not _bad(cval, nd, has_nd)
    check = has_nd or has_sup or not cval_valid
    dense_ok = pline.shape[0] == w + kw - 1
    pw = max(pline.shape[0], 1)
    nslot = kh + 1
    # Scratch: owners (kept to the end by _held) and the unowned views the loops use.
    tags_, tags = _owned_view(np.full(nslot, -9, dtype=np.int64))
    gens_, gens = _owned_view(np.zeros(nslot, dtype=np.int64))
    # hnum[s, lo_s[s, r]:hi_s[s, r]] computed for the slot's row, r < nrun[s]
    lo_s_, lo_s = _owned_view(np.zeros((nslot, _RUNS), dtype=np.int64))
    hi_s_, hi_s = _owned_view(np.zeros((nslot, _RUNS), dtype=np.int64))
    nrun_, nrun = _owned_view(np.zeros(nslot, dtype=np.int64))
    # the run replaced next when all are in use
    runs_next_, runs_next = _owned_view(np.zeros(nslot, dtype=np.int64))
    stamp_, stamp = _owned_view(np.zeros((nslot, w), dtype=np.int64))
    hnum_, hnum = _owned_view(np.empty((nslot, w), dtype=np.float64))
    hbad_, hbad = _owned_view(np.zeros((nslot, w), dtype=np.bool_))
    used_, used = _owned_view(np.zeros(nslot, dtype=np.bool_))
    slot_, slot = _owned_view(np.empty(kh, dtype=np.int64))
    sink = np.zeros(1)  # where _touch leaves its sum
    xs_, xs = _owned_view(np.empty(w, dtype=np.int64))
    xsp_, xsp = _owned_view(np.empty(w, dtype=np.int64))
    segs_, segs = _owned_view(np.empty((w // 8 + 1, 3), dtype=np.int64))
    nzw_, nzw = _owned_view(np.zeros(-(-tw.shape[1] // 8) * 8, dtype=np.uint8))
    pline_buf_, pline_buf = _owned_view(np.empty(pw, dtype=np.float64))
    lbad_, lbad = _owned_view(np.zeros(pw, dtype=np.bool_))
    line_, line = _owned_view(np.empty(kw, dtype=np.float64))
    dline_, dline = _owned_view(np.empty(kw, dtype=np.float64))
    cnum_, cnum = _owned_view(np.empty(kh, dtype=np.float64))
    cden_, cden = _owned_view(np.empty(kh, dtype=np.float64))
    cfull_, cfull = _owned_view(np.empty(kh, dtype=np.float64))
    res_, res = _owned_view(np.empty(w, dtype=np.float64))
    careful = (  # the arguments of _careful_sep after the pixel's own
        column,
        row,
        sym_c,
        sym_r,
        full_row,
        line,
        dline,
        cnum,
        cden,
        cfull,
        cval,
        cval_valid,
        nd,
        has_nd,
        sup,
        has_sup,
        normalize,
    )
    bad_, bad = _owned_view(np.zeros(w, dtype=np.bool_))
    args = (pline_buf, lbad, cval, cval_valid, nd, has_nd, sup, has_sup, check)
    passes = (row, sym_r, hnum, hbad, *args, lo_s, hi_s, nrun, stamp)  # _uncached_pass's, after gen
    gen = 0
    changed = 0
    for b in range(nb):
        tags[:] = -9
        filled = 0
        for i in range(h):
            filled, nseg, oi = _begin_row(
                src, b, prow, pcol, kh // 2, kw // 2, c0, tw, out, ring, i, filled, segs, nzw
            )
            if nseg == 0:
                continue
            pr = prow[i]
            # Assign a slot to every source row this output row reads, keeping cached rows.
            used[:] = False
            for k in range(kh):
                slot[k] = -1
                for s in range(nslot):
                    if tags[s] == pr[k]:
                        slot[k] = s
                        used[s] = True
                        break
            for k in range(kh):
                if slot[k] >= 0:
                    continue
                for k2 in range(k):  # a row repeated by the boundary mode
                    if pr[k2] == pr[k]:
                        slot[k] = slot[k2]
                        break
                if slot[k] >= 0:
                    continue
                for s in range(nslot):
                    if not used[s]:
                        used[s] = True
                        tags[s] = pr[k]
                        gen += 1
                        gens[s] = gen
                        nrun[s] = 0
                        runs_next[s] = 0
                        slot[k] = s
                        break
            nsp = 0  # targets of sparse segments, in xsp
            for g in range(nseg):
                n, x0, x1 = segs[g, 0], segs[g, 1], segs[g, 2]
                span = x1 - x0
                taps = n * kh * kw
                if dense_ok and n >= _DENSE_MIN and (n * 32 >= span or 4 * taps >= span * (kh + kw)):
                    # Row passes over the columns x0..x1 that hold the row's targets, unless cached.
                    # Each pass reaches _MARGIN columns beyond the segment (within the row), so
                    # the next rows' segments, which grow a little row by row in a polygon, mostly
                    # find their columns cached rather than calling for a few columns each.
                    m0 = max(0, x0 - _MARGIN)
                    m1 = min(w, x1 + _MARGIN)
                    for k in range(kh):
                        s = slot[k]
                        r = -1  # a cached run of this slot's row passes that the segment touches
                        for q in range(nrun[s]):
                            if lo_s[s, q] <= x1 and x0 <= hi_s[s, q]:
                                r = q
                                break
                        if r >= 0:  # extend it
                            a_, z_ = lo_s[s, r], hi_s[s, r]
                            if x0 < a_:
                                _uncached_pass(src, b, pr[k], pline, m0, a_, s, gens[s], *passes)
                                lo_s[s, r] = m0
                            if z_ < x1:
                                _uncached_pass(src, b, pr[k], pline, z_, m1, s, gens[s], *passes)
                                hi_s[s, r] = m1
                            continue
                        # A new run (the oldest one replaced when all _RUNS are in use).
                        _uncached_pass(src, b, pr[k], pline, m0, m1, s, gens[s], *passes)
                        r = nrun[s] if nrun[s] < _RUNS else runs_next[s]
                        if nrun[s] < _RUNS:
                            nrun[s] += 1
                        else:
                            runs_next[s] = (runs_next[s] + 1) % _RUNS
                        lo_s[s, r] = m0
                        hi_s[s, r] = m1
                    # Column pass over x0..x1, tap-outer (tap1d's order per pixel).
                    _column_pass(hnum, slot, column, sym_c, res, x0, x1)
                    if check:
                        bs = bad[x0:x1]
                        bs[:] = False
                        for k in range(kh):
                            hb = hbad[slot[k], x0:x1]
                            for x in range(span):
                                bs[x] |= hb[x]
                    sums = (res, bad, check)
                    ch, left = _finish_dense(
                        block, valid, cast, (b, i, oi), (n, x0, x1), sums, (nrow, nbits), xs
                    )
                    changed += ch
                    for m in range(left):  # targets with a NaN sum or an invalid cell
                        x = xs[m]
                        ok, t = _careful_sep(src, b, pr, pcol[x], *careful)
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
                bd = False
                for k in range(kh):
                    s = slot[k]
                    if stamp[s, x] != gens[s]:
                        stamp[s, x] = gens[s]
                        p = pr[k]
                        if p < 0:
                            hnum[s, x] = cval
                            hbad[s, x] = not cval_valid
                        else:
                            hb_ = False
                            for j in range(kw):
                                q = pcol[x, j]
                                if q < 0:
                                    line[j] = cval
                                    hb_ |= not cval_valid
                                else:
                                    v = np.float64(src[b, p, q])
                                    line[j] = v
                                    if check:
                                        hb_ |= (has_nd and v == nd) or (has_sup and not sup[p, q])
                            hnum[s, x] = tap1d(line, 0, row, sym_r)
                            hbad[s, x] = hb_
                    cnum[k] = hnum[s, x]
                    bd |= hbad[s, x]
                t = tap1d(cnum, 0, column, sym_c)
                if t != t or bd:
                    ok, t = _careful_sep(src, b, pr, pcol[x], *careful)
                    if not ok:
                        continue
                changed += _store(out, bits, b, oi, x, t, is_int, lo, hi)
    if ring[0]:
        _ring_flush(ring, src, prow, kh // 2, c0, out, h)
    _held(
        (
            tags_,
            gens_,
            lo_s_,
            hi_s_,
            nrun_,
            runs_next_,
            stamp_,
            hnum_,
            hbad_,
            used_,
            slot_,
            xs_,
            xsp_,
            segs_,
            nzw_,
            pline_buf_,
            lbad_,
            line_,
            dline_,
            cnum_,
            cden_,
            cfull_,
            res_,
            bad_,
        )
    )
    return changed
