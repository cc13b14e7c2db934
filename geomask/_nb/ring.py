"""The in-place ring: output rows held in a few slots until no later row reads their own pixels."""

from __future__ import annotations

import numba

from geomask._nb.jit import INNER, JIT


@numba.njit(**INNER)
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


@numba.njit(**JIT)
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


@numba.njit(**INNER)
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
