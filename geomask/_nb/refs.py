"""Reference-count intrinsics: array views that own no reference, and keeping owners alive.

numba counts references to an array with atomic increments on its meminfo for every view and
every non-inlined call it is passed to; in the sparse loops that was most of the work. The
kernels use their arguments and scratch arrays through views without a reference
(:func:`_unowned`) while something else keeps the memory: the calling Python frame for the
arguments (:func:`_borrowed`), the kernel's own owner variables for its scratch
(:func:`_owned_view` at the start, :func:`_held` at the end).
"""

from __future__ import annotations

import numba
from numba.core import types
from numba.extending import intrinsic
from numba.np.arrayobj import populate_array

from geomask._nb.jit import JIT


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


@numba.njit(**JIT, inline="always")
def _owned_view(a):  # pragma: no cover - compiled
    """(``a``, an :func:`_unowned` view of it): a scratch array's owner, for :func:`_held` at the
    kernel's end, and the view its loops use."""
    return a, _unowned(a)


@numba.njit(**JIT, inline="always")
def _borrowed(block, valid):  # pragma: no cover - compiled
    """The argument groups every kernel shares, with their arrays :func:`_unowned`.

    ``block`` = (src, prow, pcol, tgt, tw, out, bits, c0, ring): the source block and its maps,
    the targets (bool and as uint64 words), the output and its unsigned view, the first own
    column of ``src`` and the in-place ring (see :func:`geomask._nb.ring._ring_flush`).
    ``valid`` = (cval, nd, has_nd, sup, has_sup): what makes a cell invalid.
    """
    src, prow, pcol, tgt, tw, out, bits, c0, ring = block
    cval, nd, has_nd, sup, has_sup = valid
    ring = (
        ring[0],
        _unowned(ring[1]),
        _unowned(ring[2]),
        _unowned(ring[3]),
        _unowned(ring[4]),
        _unowned(ring[5]),
        _unowned(ring[6]),
    )
    block = (
        _unowned(src),
        _unowned(prow),
        _unowned(pcol),
        _unowned(tgt),
        _unowned(tw),
        _unowned(out),
        _unowned(bits),
        c0,
        ring,
    )
    return block, (cval, nd, has_nd, _unowned(sup), has_sup)
