"""Compiled inner loops (numba) of the masked filters.

Modules: :mod:`~geomask._nb.linear2d`, :mod:`~geomask._nb.separable` (with its 1-D
:mod:`~geomask._nb.passes`) and :mod:`~geomask._nb.rank` are the kernels;
:mod:`~geomask._nb.rows` (targets, segments, row start, gathering) and :mod:`~geomask._nb.ring`
(the in-place ring) the row machinery they share; :mod:`~geomask._nb.cells` single cells and
1-D taps, :mod:`~geomask._nb.stores` the stores; :mod:`~geomask._nb.refs` the reference-count
intrinsics; :mod:`~geomask._nb.jit` the compile options and the cache keyed by all modules.

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

from geomask._nb.cells import any_invalid, count_changed
from geomask._nb.linear2d import linear2d
from geomask._nb.rank import rank
from geomask._nb.ring import _ring_flush
from geomask._nb.rows import first_last_readers, gather_center
from geomask._nb.separable import separable

__all__ = [
    "_ring_flush",
    "any_invalid",
    "count_changed",
    "first_last_readers",
    "gather_center",
    "linear2d",
    "rank",
    "separable",
]
