"""The masked-filter loops in C (``kernels.c``), called through ctypes.

The functions here take the same arguments as those of :mod:`geomask._nb` (the numba build of
the same loops: see its docstring for the data layout and the summation orders), so
:mod:`geomask.convolve` calls either through :func:`geomask.loops.backend`. The library for a
pixel type is built on its first use (:mod:`geomask._c.compiler`, about a second) and loaded once per
process. ctypes releases the GIL during each call, so the row parts run in parallel threads.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import numpy as np

from geomask._c.compiler import CTYPES, build
from geomask.errors import KernelBuildError, RunError

_I64 = ctypes.c_int64
_F64 = ctypes.c_double
_P = ctypes.c_void_p


class Block(ctypes.Structure):
    """``gm_block`` of kernels.c: everything a kernel call shares (strides in elements)."""

    _fields_ = [
        ("src", _P),
        ("src_sb", _I64),
        ("src_sr", _I64),
        ("prow", _P),
        ("h", _I64),
        ("pk", _I64),
        ("pcol", _P),
        ("w", _I64),
        ("pkw", _I64),
        ("tgt", _P),
        ("tgt_w", _I64),
        ("out", _P),
        ("nb", _I64),
        ("out_sb", _I64),
        ("out_sr", _I64),
        ("c0", _I64),
        ("in_place", _I64),
        ("last", _P),
        ("held", _P),
        ("nseg", _P),
        ("whole", _P),
        ("segs", _P),
        ("nslots", _I64),
        ("nsegmax", _I64),
        ("count", _P),
        ("cval", _F64),
        ("nd", _F64),
        ("has_nd", _I64),
        ("sup", _P),
        ("sup_w", _I64),
        ("has_sup", _I64),
        ("is_int", _I64),
        ("lo", _F64),
        ("hi", _F64),
    ]


_ABI = 1  # gm_abi() of the kernels.c this module matches
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "gm_linear2d": (_I64, [_P, _P, _I64, _I64, _P, _I64, _I64]),
    "gm_separable": (_I64, [_P, _P, _I64, _P, _I64, _P, _I64, _I64]),
    "gm_rank": (_I64, [_P, _P, _I64, _I64, _I64]),
    "gm_ring_flush": (None, [_P, _I64, _I64]),
    "gm_any_invalid": (_I64, [_P, _I64, _I64, _I64, _I64]),
    "gm_gather_center": (None, [_P, _I64, _I64]),
    "gm_first_last_readers": (None, [_P, _I64, _I64, _I64, _P, _P]),
    "gm_count_changed": (None, [_P, _I64, _I64, _P, _P, _P, _I64, _I64, _I64, _I64, _I64, _P]),
    "gm_abi": (_I64, []),
}

_LIBS: dict[str, ctypes.CDLL] = {}
_LOCK = threading.Lock()


def library(dtype: np.dtype | str) -> ctypes.CDLL:
    """The loaded library for pixel type ``dtype`` (built on first use; see :mod:`geomask._c.compiler`)."""
    name = np.dtype(dtype).name
    lib = _LIBS.get(name)
    if lib is not None:
        return lib
    with _LOCK:
        if name not in _LIBS:
            path = build(name)
            try:
                lib = ctypes.CDLL(str(path))
            except OSError as e:  # e.g. a cache folder on a noexec mount
                raise KernelBuildError(f"could not load the C kernels {path}: {e}") from e
            for fn, (res, args) in _SIGNATURES.items():
                f = getattr(lib, fn)
                f.restype, f.argtypes = res, args
            if lib.gm_abi() != _ABI:
                raise RunError(f"the compiled kernels for {name} do not match this geomask; delete the cache")
            _LIBS[name] = lib
        return _LIBS[name]


def _any_library(itemsize: int | None = None) -> ctypes.CDLL:
    """A library already loaded (of that pixel size), else the unsigned one's: for the helpers that
    do not depend on the pixel type, so a run builds no library only for them."""
    for name, lib in _LIBS.items():
        if itemsize is None or np.dtype(name).itemsize == itemsize:
            return lib
    # The pixel type of that size whose unsigned view is the helpers' (no uint64 pixels: float64's).
    return library({1: "uint8", 2: "uint16", 4: "uint32", 8: "float64"}[itemsize or 1])


def _ptr(a: np.ndarray) -> int:
    return a.ctypes.data  # type: ignore[no-any-return]


def _elems(a: np.ndarray, axis: int) -> int:
    """Stride of ``axis`` in elements (the loops index the last axis densely)."""
    return a.strides[axis] // a.itemsize


def _c64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int64)


def _block(block: tuple[Any, ...], valid: tuple[Any, ...], cast: tuple[Any, ...]) -> tuple[Block, list[Any]]:
    """The :class:`Block` of the numba argument groups, and the arrays to keep alive during the call."""
    src, prow, pcol, tgt, _tw, out, _bits, c0, ring = block
    cval, nd, has_nd, sup, has_sup = valid
    is_int, lo, hi = cast
    prow, pcol = _c64(prow), _c64(pcol)
    tgt = np.ascontiguousarray(tgt)
    sup = np.ascontiguousarray(sup)
    if src.strides[-1] != src.itemsize or out.strides[-1] != out.itemsize:
        raise RunError("the C kernels need rows contiguous in memory (a bug: please report)")
    keep = [src, prow, pcol, tgt, out, sup]
    b = Block(
        src=_ptr(src),
        src_sb=_elems(src, 0),
        src_sr=_elems(src, 1),
        prow=_ptr(prow),
        h=prow.shape[0],
        pk=prow.shape[1],
        pcol=_ptr(pcol),
        w=pcol.shape[0],
        pkw=pcol.shape[1],
        tgt=_ptr(tgt),
        tgt_w=tgt.shape[1],
        out=_ptr(out),
        nb=out.shape[0],
        out_sb=_elems(out, 0),
        out_sr=_elems(out, 1),
        c0=int(c0),
        cval=float(cval),
        nd=float(nd),
        has_nd=bool(has_nd),
        sup=_ptr(sup),
        sup_w=sup.shape[1],
        has_sup=bool(has_sup),
        is_int=bool(is_int),
        lo=float(lo),
        hi=float(hi),
    )
    if ring[0]:
        _, last, held, nseg, whole, segs, count = ring
        b.in_place = 1
        b.last, b.held, b.nseg, b.whole = _ptr(last), _ptr(held), _ptr(nseg), _ptr(whole)
        b.segs, b.count = _ptr(segs), _ptr(count)
        b.nslots, b.nsegmax = held.shape[0], segs.shape[1]
        keep += [last, held, nseg, whole, segs, count]
    return b, keep


def _checked(changed: int) -> int:
    if changed == -1:
        raise RunError("geomask: in-place ring full (a bug: please report)")
    if changed < 0:
        raise MemoryError("the C kernels could not allocate their scratch memory")
    return changed


def linear2d(block, valid, cast, weights, pline, normalize, nrow, nbits):  # type: ignore[no-untyped-def]
    """:func:`geomask._nb.linear2d.linear2d` (``nrow``/``nbits`` unused: the C loop has its own)."""
    b, keep = _block(block, valid, cast)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    pline = _c64(pline)
    kh, kw = weights.shape
    lib = library(block[0].dtype)
    changed = lib.gm_linear2d(
        ctypes.byref(b), _ptr(weights), kh, kw, _ptr(pline), pline.shape[0], bool(normalize)
    )
    del keep
    return _checked(changed)


def separable(block, valid, cast, column, row, pline, normalize, nrow, nbits):  # type: ignore[no-untyped-def]
    """:func:`geomask._nb.separable.separable`."""
    b, keep = _block(block, valid, cast)
    column = np.ascontiguousarray(column, dtype=np.float64)
    row = np.ascontiguousarray(row, dtype=np.float64)
    pline = _c64(pline)
    lib = library(block[0].dtype)
    changed = lib.gm_separable(
        ctypes.byref(b),
        _ptr(column),
        column.shape[0],
        _ptr(row),
        row.shape[0],
        _ptr(pline),
        pline.shape[0],
        bool(normalize),
    )
    del keep
    return _checked(changed)


def rank(block, valid, cast, footprint, kind):  # type: ignore[no-untyped-def]
    """:func:`geomask._nb.rank.rank`."""
    b, keep = _block(block, valid, cast)
    footprint = np.ascontiguousarray(footprint, dtype=np.bool_)
    kh, kw = footprint.shape
    changed = library(block[0].dtype).gm_rank(ctypes.byref(b), _ptr(footprint), kh, kw, int(kind))
    del keep
    return _checked(changed)


def _ring_flush(ring, src, prow, ry, c0, buf, before):  # type: ignore[no-untyped-def]
    """:func:`geomask._nb.ring._ring_flush`."""
    tgt = np.zeros((prow.shape[0], 8), dtype=np.bool_)  # unused by the flush
    block = (src, prow, np.zeros((1, 1), np.int64), tgt, None, buf, None, c0, ring)
    b, keep = _block(block, (0.0, 0.0, False, np.ones((1, 1), np.bool_), False), (False, 0.0, 0.0))
    library(src.dtype).gm_ring_flush(ctypes.byref(b), int(ry), int(before))
    del keep


def any_invalid(src, b, prow, pcol, nd, has_nd, has_sup, cval_valid):  # type: ignore[no-untyped-def]
    """:func:`geomask._nb.cells.any_invalid`."""
    src = np.ascontiguousarray(src)
    tgt = np.zeros((1, 8), dtype=np.bool_)
    out = src[:1, :1, :1]
    block = (src, prow, pcol, tgt, None, out, None, -1, (False,))
    blk, keep = _block(block, (0.0, nd, has_nd, np.ones((1, 1), np.bool_), has_sup), (False, 0.0, 0.0))
    _, in_h, in_w = src.shape
    found = library(src.dtype).gm_any_invalid(ctypes.byref(blk), int(b), in_h, in_w, bool(cval_valid))
    del keep
    return bool(found)


def gather_center(src, prow, pcol, ry, rx, c0, out):  # type: ignore[no-untyped-def]
    """:func:`geomask._nb.rows.gather_center`."""
    tgt = np.zeros((prow.shape[0], 8), dtype=np.bool_)
    block = (src, prow, pcol, tgt, None, out, None, c0, (False,))
    b, keep = _block(block, (0.0, 0.0, False, np.ones((1, 1), np.bool_), False), (False, 0.0, 0.0))
    library(src.dtype).gm_gather_center(ctypes.byref(b), int(ry), int(rx))
    del keep


def first_last_readers(prow, n):  # type: ignore[no-untyped-def]
    """:func:`geomask._nb.rows.first_last_readers`."""
    prow = _c64(prow)
    first = np.empty(n, dtype=np.int64)
    last = np.empty(n, dtype=np.int64)
    _any_library().gm_first_last_readers(_ptr(prow), prow.shape[0], prow.shape[1], n, _ptr(first), _ptr(last))
    return first, last


def count_changed(before, rows, cols, after, th, tw):  # type: ignore[no-untyped-def]
    """:func:`geomask._nb.cells.count_changed` (unsigned views of the same size)."""
    before = np.ascontiguousarray(before)
    after = np.ascontiguousarray(after)
    rows, cols = _c64(rows), _c64(cols)
    nb, h, w = after.shape
    counts = np.empty(((h + th - 1) // th, (w + tw - 1) // tw), dtype=np.int64)
    _any_library(before.itemsize).gm_count_changed(
        _ptr(before),
        _elems(before, 0),
        _elems(before, 1),
        _ptr(rows),
        _ptr(cols),
        _ptr(after),
        *(nb, h, w, th, tw),
        _ptr(counts),
    )
    return counts


__all__ = [
    "CTYPES",
    "_ring_flush",
    "any_invalid",
    "count_changed",
    "first_last_readers",
    "gather_center",
    "library",
    "linear2d",
    "rank",
    "separable",
]
