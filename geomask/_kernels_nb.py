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

Data layout: no padded copy. ``src`` is the block as read, in its own dtype,
(bands, in_h, in_w); ``prow[i, k]`` is the row of ``src`` that kernel row ``k``
of output row ``i`` reads and ``pcol[x, j]`` the column for kernel column ``j``
of output column ``x`` (``-1``: a cell beyond the scene in ``constant`` mode,
whose value is ``cval``). Boundary modes, halos and multi-step index sets are
all folded into these two small maps by the caller. ``out`` (bands, h, w) holds
the original pixels (filled by the loops just ahead of each row, see :func:`_fill`) and receives the results,
cast to its dtype (integers: round half to even, clip); the functions return how
many values changed bit-wise.

Validity: a cell is invalid when it equals ``nodata`` (``has_nd``), is NaN, lies
outside ``sup`` (``has_sup``) or is a constant cell with an invalid ``cval``.
A band whose block holds no invalid cell (the common case) takes the plain path
with no per-tap tests; otherwise invalid cells contribute 0.0 and linear kernels
are renormalised as ``num * (full / den)`` (``normalize``), where the sums are
taken in the same order as ``num``. Skipping a zero term never changes a sum
that starts at +0.0, so both paths agree with scipy bit for bit.

Every function is ``nogil``: window tasks run them in parallel threads.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.core import types
from numba.extending import intrinsic
from numba.np.arrayobj import populate_array

_EPS = np.finfo(np.float64).eps
_JIT = {"cache": True, "nogil": True, "boundscheck": False}


@intrinsic
def _unowned(typingctx, arr):  # pragma: no cover - compiled
    """A view of ``arr`` (same type, data, shape, strides) that owns no reference: its meminfo is
    NULL, so neither it nor any slice of it or call it is passed to touches a reference count.

    Why by hand: numba counts references to an array with atomic increments on its meminfo for
    every view (``a[i]``, ``a[x0:x1]``) and every non-inlined call it is passed to. In the sparse
    loops that is most of the work (NRT_incref/NRT_decref were a third of a 1 % ROI call), and the
    row parts on several threads fight over the same counters' cache lines. numba has no option
    to switch it off per array. Only for arrays that outlive every use of the view by
    construction: the kernels' arguments, which the calling Python frame holds (see
    :func:`_borrowed`), and their scratch arrays, whose owners the kernel keeps to its end
    (:func:`_owned_view`, :func:`_held`). Never return such a view or keep it past the call.
    """
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, signature, args):
        ty = signature.args[0]
        src = context.make_array(ty)(context, builder, value=args[0])
        dst = context.make_array(ty)(context, builder)
        populate_array(
            dst, data=src.data, shape=src.shape, strides=src.strides, itemsize=src.itemsize, meminfo=None
        )
        return dst._getvalue()

    return arr(arr), codegen


@intrinsic
def _held(typingctx, owners):  # pragma: no cover - compiled
    """Nothing, but a use of ``owners`` (a tuple of arrays). A kernel's scratch arrays are
    allocated as owners and used through :func:`_unowned` views; numba frees a variable after its
    last use, so the kernel ends with ``_held((owner, ...))`` to keep their memory until then."""

    def codegen(context, builder, signature, args):
        return context.get_dummy_value()

    return types.none(owners), codegen


@numba.njit(**_JIT, inline="always")
def _owned_view(a):  # pragma: no cover - compiled
    """(``a``, an :func:`_unowned` view of it): a scratch array's owner, for :func:`_held` at the
    kernel's end, and the view its loops use."""
    return a, _unowned(a)


@numba.njit(**_JIT, inline="always")
def _borrowed(src, prow, pcol, tgt, tw, out, bits, sup, ring):  # pragma: no cover - compiled
    """The arguments every kernel shares, :func:`_unowned`; ``ring`` (see :func:`_ring_flush`)
    with its arrays unowned."""
    ring = (
        ring[0],
        _unowned(ring[1]),
        _unowned(ring[2]),
        _unowned(ring[3]),
        _unowned(ring[4]),
        _unowned(ring[5]),
        _unowned(ring[6]),
    )
    return (
        _unowned(src),
        _unowned(prow),
        _unowned(pcol),
        _unowned(tgt),
        _unowned(tw),
        _unowned(out),
        _unowned(bits),
        _unowned(sup),
        ring,
    )


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


# Inlined: the sparse loops call it once per kernel row and pixel; as a call it cost a quarter of
# a call on scattered pixels (1 %, 3x3), for ~5 % more compile time.
@numba.njit(**_JIT, inline="always")
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


@numba.njit(**_JIT, inline="always")
def _bad(v, nd, has_nd):  # pragma: no cover - compiled
    """An invalid value: NaN, or equal to nodata."""
    return v != v or (has_nd and v == nd)


@numba.njit(**_JIT, inline="always")
def _cell(src, b, p, q, cval, cval_valid, nd, has_nd, sup, has_sup):  # pragma: no cover - compiled
    """(value, valid) of one cell; ``p`` or ``q`` < 0 is a constant cell."""
    if p < 0 or q < 0:
        return cval, cval_valid
    v = np.float64(src[b, p, q])
    return v, not (v != v or (has_nd and v == nd) or (has_sup and not sup[p, q]))


@numba.njit(**_JIT)
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


@numba.njit(**_JIT, inline="always")
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
# Columns computed beyond a dense segment's row passes (separable kernels), see separable.
_MARGIN = 16
# Runs of cached row-pass columns kept per source row (separable kernels): one per segment.
_RUNS = 8


@numba.njit(**_JIT)
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


@numba.njit(**_JIT)
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


@numba.njit(**_JIT)
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


@numba.njit(**_JIT, inline="always")
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


@numba.njit(**_JIT, inline="always")
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


@numba.njit(**_JIT, inline="always")
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


@numba.njit(**_JIT)
def _copy_held(a, z, segs, nseg, whole):  # pragma: no cover - compiled
    """z[x] = a[x] over segments ``segs[:nseg]`` of a row (:func:`_row_segments`), every column
    of each (straight, vectorised copies), or with ``whole`` over all columns from the first
    segment's start to the last one's stop (one copy, for segments that leave small gaps)."""
    if whole:
        av, zv = a[segs[0, 1] : segs[nseg - 1, 2]], z[segs[0, 1] : segs[nseg - 1, 2]]
        for x in range(zv.shape[0]):
            zv[x] = av[x]
        return
    for g in range(nseg):
        av, zv = a[segs[g, 1] : segs[g, 2]], z[segs[g, 1] : segs[g, 2]]
        for x in range(zv.shape[0]):
            zv[x] = av[x]


@numba.njit(**_JIT)
def _ring_flush(ring, src, prow, ry, c0, buf, before):  # pragma: no cover - compiled
    """In place: write back the segments of the held rows whose last reader has been computed.

    ``ring`` = (in_place, last, held, nseg, whole, segs, count): ``last[j]`` is the last output
    row that reads row ``j``'s own pixels (-1: a reader outside these rows, so the caller writes
    it back after every part is done); ``held[s]`` the output row in slot ``s`` of ``buf`` (-1:
    free), holding its own pixels over its segments ``segs[s, :nseg[s]]`` (see :func:`_copy_held`).
    Rows with ``last < before`` are written to ``src`` (band 0, own columns from ``c0``) over the
    same cells (the pixels other than targets hold their own values), and their slot is freed;
    ``before < 0``: every held row. ``count[0]``: the rows held.
    """
    last, held, nseg, whole, segs = ring[1], ring[2], ring[3], ring[4], ring[5]
    for s in range(held.shape[0]):
        j = held[s]
        if j < 0:
            continue
        if before >= 0 and (last[j] < 0 or last[j] >= before):
            continue
        _copy_held(buf[0, s], src[0, prow[j, ry], c0:], segs[s], nseg[s], whole[s])
        held[s] = -1
        ring[6][0] -= 1


@numba.njit(**_JIT)
def _ring_take(ring, src, prow, ry, c0, buf, i, segs, nseg):  # pragma: no cover - compiled
    """In place: a free slot of ``buf`` for output row ``i``, holding its own pixels over its
    segments ``segs[:nseg]`` (the straight stores write whole segments, their non-targets with
    the values held here; the per-pixel stores read and compare only the targets)."""
    held = ring[2]
    for s in range(held.shape[0]):
        if held[s] < 0:
            held[s] = i
            ring[3][s] = nseg
            kept = ring[5][s]
            covered = 0
            for g in range(nseg):
                kept[g, 0] = segs[g, 0]
                kept[g, 1] = segs[g, 1]
                kept[g, 2] = segs[g, 2]
                covered += segs[g, 2] - segs[g, 1]
            # One copy of the whole stretch unless the gaps outweigh a copy per segment (about
            # 128 columns' worth each: pixel masks at 1 % hold ~40 one-word segments a row).
            ring[4][s] = segs[nseg - 1, 2] - segs[0, 1] <= covered + 128 * nseg
            ring[6][0] += 1
            _copy_held(src[0, prow[i, ry], c0:], buf[0, s], kept, nseg, ring[4][s])
            return s
    raise RuntimeError("geomask: in-place ring full (a bug: please report)")


@numba.njit(**_JIT, inline="always")
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


@numba.njit(**_JIT)
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


@numba.njit(**_JIT)
def gather_center(src, prow, pcol, ry, rx, c0, out):  # pragma: no cover - compiled
    """out[b, i, x] = src[b, prow[i, ry], pcol[x, rx]]: the block's own pixels, in their dtype."""
    for b in range(out.shape[0]):
        _fill(src, b, prow, pcol, ry, rx, c0, out, 0, out.shape[1])


@numba.njit(**_JIT)
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


@numba.njit(**_JIT)
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


@numba.njit(**_JIT)
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


@numba.njit(**_JIT)
def linear2d(
    src,
    prow,
    pcol,
    pline,
    weights,
    tgt,
    tw,
    out,
    bits,
    cval,
    nd,
    has_nd,
    sup,
    has_sup,
    normalize,
    is_int,
    lo,
    hi,
    c0,
    nrow,
    nbits,
    ring,
):  # pragma: no cover - compiled
    """Correlate with ``weights`` (|w| > DBL_EPSILON, C order) at target pixels. Returns changes.

    ``pline`` (w + kw - 1,) maps padded columns to ``src`` columns when the output columns
    are contiguous (``pcol[x, j] == pline[x + j]``), else it is empty. Segments of a row
    (:func:`_row_segments`) with many targets for their width then run tap-outer over
    that segment only (vectorised across pixels, each pixel's taps still summed in order)
    and, where at least 1 in 8 of the segment are targets and no cell is invalid, store in
    straight passes (:func:`_store_span`); the targets of sparse segments are visited one
    by one, all of a row's together. The switches weigh the taps against the cache misses
    of scattered pixels (about one per kernel row); they change the speed, never a value.

    ``nrow``/``nbits``: a scratch row (w,) of ``out``'s dtype and its unsigned view.
    """
    # The arguments, held by the calling frame, as views without reference counts (_unowned).
    src, prow, pcol, tgt, tw, out, bits, sup, ring = _borrowed(src, prow, pcol, tgt, tw, out, bits, sup, ring)
    pline, nrow, nbits = _unowned(pline), _unowned(nrow), _unowned(nbits)
    kh, kw = weights.shape
    nb, h, w = out.shape[0], prow.shape[0], out.shape[2]
    nz = 0
    for i in range(kh):
        for j in range(kw):
            if abs(weights[i, j]) > _EPS:
                nz += 1
    di = np.empty(nz, dtype=np.int64)
    dj = np.empty(nz, dtype=np.int64)
    ww = np.empty(nz, dtype=np.float64)
    n = 0
    full = 0.0
    for i in range(kh):
        for j in range(kw):
            if abs(weights[i, j]) > _EPS:
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
                    elif 8 * n >= span:  # dense enough for the straight stores
                        ch = _store_span(
                            tgt[i], res, out[b, oi], bits[b, oi], nrow, nbits, x0, x1, is_int, lo, hi
                        )
                        if ch >= 0:
                            changed += ch
                            continue
                    n = _row_targets(tw, tgt, i, x0, x1, xs)
                    for m in range(n):
                        x = xs[m]
                        _, ok = _cell(
                            src, b, pr[kh // 2], pcol[x, kw // 2], cval, cval_valid, nd, has_nd, sup, has_sup
                        )
                        if not ok:  # nodata, NaN or unsupported: never changes
                            continue
                        t = res[x]
                        if t != t or (check and bad[x]):
                            ok, t = _careful2d(src, b, pr, pcol[x], *careful)
                            if not ok:
                                continue
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


@numba.njit(**_JIT)
def _row_pass(line, row, sym, hrow, w):  # pragma: no cover - compiled
    """hrow[x] = tap1d(line, x, row, sym) for x < w, tap-outer (same per-pixel order).

    Shifted views keep every index non-negative, so LLVM vectorises the loops.
    """
    n = row.shape[0]
    c = n // 2
    if sym != 0:
        wc = row[c]
        lc = line[c : c + w]
        for x in range(w):
            hrow[x] = lc[x] * wc
        for jj in range(-c, 0):
            wj = row[c + jj]
            la = line[c + jj : c + jj + w]
            lz = line[c - jj : c - jj + w]
            if sym > 0:
                for x in range(w):
                    hrow[x] += (la[x] + lz[x]) * wj
            else:
                for x in range(w):
                    hrow[x] += (la[x] - lz[x]) * wj
    else:
        wl = row[n - 1]
        ll = line[n - 1 : n - 1 + w]
        for x in range(w):
            hrow[x] = ll[x] * wl
        for k in range(n - 1):
            wk = row[k]
            lk = line[k : k + w]
            for x in range(w):
                hrow[x] += lk[x] * wk


@numba.njit(**_JIT)
def _slot_pass(
    src,
    b,
    p,
    pline,
    x0,
    x1,
    row,
    sym_r,
    hn,
    hb,
    pline_buf,
    lbad,
    cval,
    cval_valid,
    nd,
    has_nd,
    sup,
    has_sup,
    check,
):  # pragma: no cover - compiled
    """Row pass of source row ``p`` (band ``b``) for output columns x0..x1, into ``hn`` (sums)
    and ``hb`` (an invalid cell in the footprint); ``pline``: see :func:`separable`."""
    kw = row.shape[0]
    span = x1 - x0
    if p < 0:
        hn[x0:x1] = cval
        hb[x0:x1] = not cval_valid
        return
    _gather_line(
        src, b, p, pline[x0 : x1 + kw - 1], pline_buf, lbad, cval, cval_valid, nd, has_nd, sup, has_sup, check
    )
    _row_pass(pline_buf, row, sym_r, hn[x0:x1], span)
    hbs = hb[x0:x1]
    hbs[:] = False
    if check:
        for j in range(kw):
            lb = lbad[j : j + span]
            for x in range(span):
                hbs[x] |= lb[x]


@numba.njit(**_JIT)
def _uncached_pass(
    src,
    b,
    p,
    pline,
    x0,
    x1,
    s,
    gen,
    row,
    sym_r,
    hnum,
    hbad,
    pline_buf,
    lbad,
    cval,
    cval_valid,
    nd,
    has_nd,
    sup,
    has_sup,
    check,
    lo_s,
    hi_s,
    nrun,
    stamp,
):  # pragma: no cover - compiled
    """:func:`_slot_pass` of slot ``s`` over the columns x0..x1 that none of its cached runs
    (``lo_s[s, r]..hi_s[s, r]``, r < ``nrun[s]``) holds, stamping them with ``gen``."""
    x = x0
    while x < x1:
        e = x1
        inside = False
        for r in range(nrun[s]):
            if lo_s[s, r] <= x < hi_s[s, r]:
                x = hi_s[s, r]
                inside = True
                break
            if x < lo_s[s, r] < e:
                e = lo_s[s, r]
        if inside:
            continue
        _slot_pass(
            src,
            b,
            p,
            pline,
            x,
            e,
            row,
            sym_r,
            hnum[s],
            hbad[s],
            pline_buf,
            lbad,
            cval,
            cval_valid,
            nd,
            has_nd,
            sup,
            has_sup,
            check,
        )
        stamp[s, x:e] = gen
        x = e


@numba.njit(**_JIT)
def _column_pass(hnum, slot, column, sym_c, res, x0, x1):  # pragma: no cover - compiled
    """res[x] = tap1d over the row-pass sums ``hnum[slot[k], x]`` with ``column``, for x in
    x0..x1, tap-outer (each pixel's terms in tap1d's order).

    The loops run over views that start at 0: with a loop start only known at run time,
    LLVM compiled them about 1.2 ns per pixel slower (measured on a 4096^2 full mask).
    """
    kh = column.shape[0]
    c = kh // 2
    n = x1 - x0
    rs = res[x0:x1]
    if sym_c != 0:
        hc = hnum[slot[c], x0:x1]
        wc = column[c]
        for x in range(n):
            rs[x] = hc[x] * wc
        for jj in range(-c, 0):
            ha = hnum[slot[c + jj], x0:x1]
            hz = hnum[slot[c - jj], x0:x1]
            wj = column[c + jj]
            if sym_c > 0:
                for x in range(n):
                    rs[x] += (ha[x] + hz[x]) * wj
            else:
                for x in range(n):
                    rs[x] += (ha[x] - hz[x]) * wj
    else:
        hl = hnum[slot[kh - 1], x0:x1]
        wl = column[kh - 1]
        for x in range(n):
            rs[x] = hl[x] * wl
        for k in range(kh - 1):
            hk = hnum[slot[k], x0:x1]
            wk = column[k]
            for x in range(n):
                rs[x] += hk[x] * wk


@numba.njit(**_JIT)
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


@numba.njit(**_JIT)
def separable(
    src,
    prow,
    pcol,
    pline,
    column,
    row,
    tgt,
    tw,
    out,
    bits,
    cval,
    nd,
    has_nd,
    sup,
    has_sup,
    normalize,
    is_int,
    lo,
    hi,
    c0,
    nrow,
    nbits,
    ring,
):  # pragma: no cover - compiled
    """Two 1-D passes: along rows (``row`` weights) then columns (``column``), scipy's order.

    A cell row beyond the scene in constant mode (``prow == -1``) keeps its value
    (cval) in the second pass, as in scipy. Row-pass values are cached per source
    row and column in ``kh + 1`` slots (a sliding window over the output rows), so
    each is computed once whichever pixel needs it: a dense row costs about kh + kw
    multiplications per pixel (computed tap-outer over the row's target span when
    ``pline`` is given, see :func:`linear2d`; a slot's cached run of columns is extended
    as the spans of the next rows move), a sparse pixel at most kh * kw + kh.
    """
    # The arguments, held by the calling frame, as views without reference counts (_unowned).
    src, prow, pcol, tgt, tw, out, bits, sup, ring = _borrowed(src, prow, pcol, tgt, tw, out, bits, sup, ring)
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
                    elif 8 * n >= span:  # dense enough for the straight stores
                        ch = _store_span(
                            tgt[i], res, out[b, oi], bits[b, oi], nrow, nbits, x0, x1, is_int, lo, hi
                        )
                        if ch >= 0:
                            changed += ch
                            continue
                    n = _row_targets(tw, tgt, i, x0, x1, xs)
                    for m in range(n):
                        x = xs[m]
                        _, ok = _cell(
                            src, b, pr[kh // 2], pcol[x, kw // 2], cval, cval_valid, nd, has_nd, sup, has_sup
                        )
                        if not ok:  # nodata, NaN or unsupported: never changes
                            continue
                        t = res[x]
                        if t != t or (check and bad[x]):
                            ok, t = _careful_sep(src, b, pr, pcol[x], *careful)
                            if not ok:
                                continue
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


@numba.njit(**_JIT)
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


@numba.njit(**_JIT)
def rank(
    src,
    prow,
    pcol,
    footprint,
    tgt,
    tw,
    out,
    bits,
    kind,
    cval,
    nd,
    has_nd,
    sup,
    has_sup,
    is_int,
    lo,
    hi,
    c0,
    ring,
):  # pragma: no cover - compiled
    """Median (kind 0), minimum (1) or maximum (2) over the valid cells of the footprint.

    Target pixels with no valid neighbour (or invalid themselves) are left unchanged.
    The median of an even count is the mean of the two middle values.
    """
    # The arguments, held by the calling frame, as views without reference counts (_unowned).
    src, prow, pcol, tgt, tw, out, bits, sup, ring = _borrowed(src, prow, pcol, tgt, tw, out, bits, sup, ring)
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
