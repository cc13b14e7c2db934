"""Masked convolution: a kernel applied only inside a mask, the rest left bit for bit.

Pure numpy (and the compiled loops: :mod:`geomask._c` or :mod:`geomask._nb`, see
:mod:`geomask.loops`); no I/O.
:func:`filter_indexed` is the one primitive: it filters a block read with its halo,
through index maps that fold in the boundary mode. :func:`masked_convolve` (whole arrays in memory) and the
windowed engine both call it, which is why they agree byte for byte.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray

from geomask.errors import ConfigError, InputError, KernelError
from geomask.kernels import Kernel, as_kernel
from geomask.loops import backend
from geomask.pixels import check_dtype, effective_nodata, valid_pixels
from geomask.spec import Op
from geomask.windows import check_mode, source_index

__all__ = [
    "Op",
    "changed_per_tile",
    "count_changed",
    "filter_indexed",
    "masked_convolve",
    "interior",
    "prepare_kernel",
    "tap_index",
]

_RANK = {"median": 0, "minimum": 1, "maximum": 2}


def prepare_kernel(kernel: Kernel | ArrayLike | str, op: str) -> Kernel:
    """The kernel as applied by correlation: flipped for ``op="convolve"`` (as scipy.ndimage does)."""
    if op not in get_args(Op):
        raise ConfigError(f"unknown op {op!r}: use 'convolve' (kernel flipped) or 'correlate'")
    k = as_kernel(kernel)
    return k.flipped() if (op == "convolve" and k.kind == "linear") else k


def tap_index(
    positions: NDArray[np.int64],
    radius: int,
    size: int,
    mode: str,
    available: NDArray[np.int64] | None = None,
) -> NDArray[np.int64]:
    """The cell each kernel tap of each output position reads, as an index into the block read.

    Parameters
    ----------
    positions : int64 array (n,)
        Scene rows (or columns) of the output pixels, in ``[0, size)``.
    radius : int
        The kernel's half-size along this axis (pixels).
    size : int
        The scene's size along this axis (pixels).
    mode : str
        Boundary mode (:func:`geomask.windows.source_index`).
    available : sorted int64 array, or None
        The scene indices the block holds, in order; None: the whole axis (``arange(size)``).

    Returns
    -------
    int64 array (n, 2 * radius + 1): positions in ``available`` (``-1``: a ``constant`` cell;
    ``-2``: a cell the block does not hold, which only pixels that are not computed may have).
    """
    taps = np.asarray(positions, dtype=np.int64)[:, None] + np.arange(-radius, radius + 1, dtype=np.int64)
    src = source_index(taps, size, mode)
    if available is None:
        return np.ascontiguousarray(src)
    pos = np.searchsorted(available, np.maximum(src, 0))
    found = available[np.minimum(pos, available.size - 1)] == src
    return np.ascontiguousarray(np.where(src < 0, -1, np.where(found, pos, -2)))


@functools.lru_cache(maxsize=32)
def _axis_taps(size: int, radius: int, mode: str) -> NDArray[np.int64]:
    """:func:`tap_index` over a whole axis, kept for the next call with the same size, radius
    and mode (0.07 ms each for 4096 rows: a visible part of a sparse call). Callers only read it."""
    return tap_index(np.arange(size), radius, size, mode)


def interior(
    rows: NDArray[np.int64], cols: NDArray[np.int64], scene: tuple[int, int], halo: tuple[int, int]
) -> NDArray[np.bool_]:
    """Pixels at ``rows`` x ``cols`` (scene indices) whose kernel footprint stays inside the scene."""
    (hh, ww), (ry, rx) = scene, halo
    ok_r = (rows >= ry) & (rows < hh - ry)
    ok_c = (cols >= rx) & (cols < ww - rx)
    return ok_r[:, None] & ok_c[None, :]


def filter_indexed(
    values: NDArray[Any],
    prow: NDArray[np.int64],
    pcol: NDArray[np.int64],
    target: NDArray[np.bool_],
    kernel: Kernel,
    *,
    cval: float = 0.0,
    nodata: float | None = None,
    normalize: bool = True,
    support: NDArray[np.bool_] | None = None,
    threads: int | None = 1,
    in_place: bool = False,
) -> tuple[NDArray[Any], int]:
    """Filter one block through index maps; the primitive behind every public entry point.

    Parameters
    ----------
    values : array (bands, in_h, in_w) of the scene's dtype
        The pixels read for the block: its own pixels and its halo (no padding, no cast).
    prow : int64 array (h, kh)
        ``prow[i, k]``: the row of ``values`` that kernel row ``k`` of output row ``i`` reads
        (``-1``: beyond the scene in ``constant`` mode, value ``cval``); see :func:`tap_index`.
        ``prow[i, kh // 2]`` is output row ``i`` itself.
    pcol : int64 array (w, kw)
        The same for columns.
    target : bool array (h, w)
        Where output pixels may change (mode ``leave``: already limited to :func:`interior`).
    kernel : Kernel
        Already prepared for correlation (see :func:`prepare_kernel`).
    cval : float
        The value of ``constant`` cells.
    nodata : float or None
        Pixels equal to it (and NaN in floats) neither contribute nor change.
    normalize : bool
        Renormalise linear kernels over the contributing neighbours (normalized convolution).
    support : bool array (in_h, in_w) or None
        Neighbours outside it do not contribute (as nodata).
    threads : int or None
        Threads to split the rows over (at most one per 128 rows; the rows are split by estimated
        work, see :func:`_row_cuts`, and run on a shared pool, see :func:`_row_pool`); None: as
        many as pay off (:func:`_auto_threads`). The result is the same for any value. The engine
        passes 1 (its windows already run in parallel).
    in_place : bool
        Write the result into ``values`` itself (then C-contiguous, writable, the block's own
        pixels a straight run of columns, and ``prow`` rows all in it) and return it. A row is
        written back once no row still to compute reads it (each thread holds its rows in a
        ring of about 3 x kernel rows until then): its targets only, or where they are dense
        the stretch that holds them (the other pixels with their own values). No full-size
        output is allocated, so the cost follows the targets.

    Returns
    -------
    (out, changed) : a new array (bands, h, w) of ``values``' dtype, and the number of pixel
    values (per band) that changed bit-wise.

    Raises
    ------
    KernelError
        A linear kernel whose weights sum to <= 0 with ``normalize`` where some cell of the
        block is invalid (nodata, NaN, outside the support or an invalid ``cval``).

    Notes
    -----
    No copy of the block is made besides the output: the compiled loops read ``values`` in
    its dtype and visit only target pixels. Memory: the output plus O(kernel x width).
    """
    if not in_place:
        values = np.ascontiguousarray(values)
    elif not (values.flags.c_contiguous and values.flags.writeable):
        raise InputError("in-place filtering needs a C-contiguous, writable array")
    dtype = values.dtype
    bands = values.shape[0]
    h, w = target.shape
    ry, rx = kernel.halo
    own = pcol[:, rx]  # the block's own columns: a straight run (copied) or gathered (-1)
    c0 = int(own[0]) if np.array_equal(own, own[0] + np.arange(w)) else -1
    if in_place and c0 < 0:
        raise InputError("in-place filtering needs the block's own columns in one run")

    nb = backend(dtype.name)
    target = np.ascontiguousarray(target, dtype=np.bool_)
    out = None if in_place else np.empty((bands, h, w), dtype=dtype)
    if not target.any():
        if out is None:
            return values, 0
        nb.gather_center(values, prow, pcol, ry, rx, c0, out)
        return out, 0
    # Targets as whole 8-pixel words, so the loops skip empty stretches 8 at a time: the mask
    # itself when its rows are whole words, else a padded copy.
    if w % 8 == 0:
        tgt = target
    else:
        tgt = np.zeros((h, -(-w // 8) * 8), dtype=np.bool_)
        tgt[:, :w] = target
    tw = tgt.view(np.uint64)
    pline = _line_map(pcol)
    nd = np.nan if nodata is None else float(nodata)
    has_nd = nodata is not None and not np.isnan(nd)
    has_sup = support is not None
    sup = np.ascontiguousarray(support, dtype=np.bool_) if support is not None else _NO_SUPPORT
    cval = float(cval)
    udt = _uint_view(dtype)
    readers = _last_readers(prow, nb) if in_place else None
    is_int = dtype.kind in "iu"
    lo, hi = (float(np.iinfo(dtype).min), float(np.iinfo(dtype).max)) if is_int else (0.0, 0.0)
    valid = (cval, nd, has_nd, sup, has_sup)  # the kernels' argument groups (_nb.refs._borrowed)
    cast = (is_int, lo, hi)
    if kernel.kind == "linear" and normalize and kernel.weight_sum <= 0:
        cval_valid = not (np.isnan(cval) or (has_nd and cval == nd))
        if any(nb.any_invalid(values, b, prow, pcol, nd, has_nd, has_sup, cval_valid) for b in range(bands)):
            raise zero_sum_error(kernel)
    if kernel.kind != "linear":
        footprint = np.ascontiguousarray(kernel.weights != 0)
    elif kernel.separable is not None:
        column, row = (np.ascontiguousarray(v, dtype=np.float64) for v in kernel.separable)
    else:
        weights = np.ascontiguousarray(kernel.weights, dtype=np.float64)

    held: list[tuple[Any, ...]] = []  # in place: rows a part could not write back itself

    def part(b: int, r0: int, r1: int) -> int:
        """Band ``b``, output rows r0..r1: contiguous views, so one compiled specialisation."""
        src, pr, tg, t8 = values[b : b + 1], prow[r0:r1], tgt[r0:r1], tw[r0:r1]
        if out is None:
            assert readers is not None
            o = np.empty((1, 3 * prow.shape[1] + 4, w), dtype=dtype)  # the ring (see in_place)
            ring = (True, _part_readers(readers, prow, ry, r0, r1), *_free_slots(o.shape[1], w))
        else:
            o, ring = out[b : b + 1, r0:r1], _NO_RING
        block = (src, pr, pcol, tg, t8, o, o.view(udt), c0, ring)
        if kernel.kind != "linear":
            changed = nb.rank(block, valid, cast, footprint, _RANK[kernel.kind])
        else:
            nrow = np.empty(w, dtype=dtype)  # scratch row for the straight stores
            tail = (normalize, nrow, nrow.view(udt))
            if kernel.separable is not None:
                changed = nb.separable(block, valid, cast, column, row, pline, *tail)
            else:
                changed = nb.linear2d(block, valid, cast, weights, pline, *tail)
        if out is None:
            held.append((ring, src, pr, ry, c0, o, -1))
        return int(changed)

    # Rows are independent (each value is computed the same way in any split), so row ranges of
    # each band can run in threads: the compiled loops release the GIL.
    rows = target[::_ROW_SAMPLE].any(axis=1) if threads != 1 else None  # rows holding targets
    if threads is None:
        threads = _auto_threads(rows, target.shape)
    threads = max(1, min(threads, h // 128))
    cuts = _row_cuts(rows, h, threads)
    tasks = [(b, int(r0), int(r1)) for b in range(bands) for r0, r1 in itertools.pairwise(cuts)]
    if threads == 1:
        changed = sum(part(*t) for t in tasks)
    else:  # the calling thread takes the first part itself, the shared pool the others
        futures = [_row_pool().submit(part, *t) for t in tasks[1:]]
        try:
            changed = part(*tasks[0])
        finally:
            changed_rest = [f.result() for f in futures]  # all joined, even after an error
        changed += sum(changed_rest)
    for args in held:  # every part is done: the rows read across parts can be written now
        nb._ring_flush(*args)
    return (values if out is None else out), changed


_POOL: list[Any] = [None, 0]  # (executor, pid that made it)
_POOL_LOCK = threading.Lock()


def _row_pool() -> ThreadPoolExecutor:
    """One pool of ``cpu_count`` threads for the row parts of every call, made on first use.

    Starting threads per call cost 1.5-3 ms here before the second part began (measured with a
    compiled loop of 1.4 ms: the two parts ran one after the other), as much as a sparse call's
    whole work. A pool made before a ``fork`` has no threads in the child: a new one is made.
    """
    with _POOL_LOCK:
        if _POOL[0] is None or _POOL[1] != os.getpid():
            _POOL[0] = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="geomask-rows")
            _POOL[1] = os.getpid()
        return _POOL[0]  # type: ignore[no-any-return]


# Every how many rows the mask is sampled to choose threads and split rows between them.
_ROW_SAMPLE = 8


def _row_cuts(rows: NDArray[np.bool_] | None, h: int, parts: int) -> NDArray[np.int64]:
    """Row boundaries (parts + 1) splitting ``h`` rows into ``parts`` of about equal work.

    ``rows``: whether every ``_ROW_SAMPLE``-th row holds a target. A row costs a little to scan
    and about ten times as much when it holds targets (counting them per row took 0.6 ms for 4096
    rows: as much as a sparse call). ROI masks often crowd one half of an image (the benchmark's
    at 1 % cover: 62 % of the rows with targets in the upper half), where equal row counts would
    leave a thread idle. Only the speed depends on the split.
    """
    if parts <= 1 or rows is None:
        return np.array([0, h], dtype=np.int64)
    weight = 0.1 + rows
    cum = np.cumsum(np.repeat(weight, _ROW_SAMPLE)[:h])
    cuts = np.searchsorted(cum, cum[-1] * np.arange(1, parts) / parts)
    cuts = np.concatenate(([0], cuts, [h])).astype(np.int64)
    if np.any(np.diff(cuts) < 16):  # a sliver: equal row counts instead
        return np.linspace(0, h, parts + 1).astype(np.int64)
    return cuts


def _auto_threads(rows: NDArray[np.bool_] | None, shape: tuple[int, int]) -> int:
    """Threads for ``threads=None``: every core, at most one per ~512 rows that hold a target
    (``rows``: sampled as for :func:`_row_cuts`) or per 8 M pixels, whichever allows more. A
    thread costs ~0.15 ms (the hand-off and its own set-up): more than it saves on a few short
    ROI rows of a small array, less than the scan of its half of a large mask. Only the speed
    depends on it."""
    cpus = os.cpu_count() or 1
    if cpus == 1 or rows is None:
        return 1
    h, w = shape
    held = _ROW_SAMPLE * int(np.count_nonzero(rows))
    return max(1, min(cpus, max(held // 512, (h * w) >> 23)))


_NO_I64 = np.empty(0, dtype=np.int64)
_NO_RING = (False, _NO_I64, _NO_I64, _NO_I64, _NO_I64, np.empty((0, 0, 3), dtype=np.int64), _NO_I64)


def _last_readers(prow: NDArray[np.int64], nb: Any) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(first, last): per row of the block, the first and last output row that reads it (rows
    nobody reads: int64 max and -1)."""
    return nb.first_last_readers(prow, int(prow.max()) + 1)  # type: ignore[no-any-return]


def _part_readers(
    readers: tuple[NDArray[np.int64], NDArray[np.int64]],
    prow: NDArray[np.int64],
    ry: int,
    r0: int,
    r1: int,
) -> NDArray[np.int64]:
    """For output rows r0..r1 (in place): the last of them (relative to r0) that reads each one's
    own pixels, or -1 where a row outside r0..r1 reads them too (written back after all parts)."""
    first, last = readers
    own = prow[r0:r1, ry]
    lo, hi = first[own], last[own]
    return np.where((lo >= r0) & (hi < r1), hi - r0, -1).astype(np.int64)


def _free_slots(n: int, w: int) -> tuple[NDArray[np.int64], ...]:
    """(held, nseg, whole, segs, count) of a ring of ``n`` free slots for rows of ``w`` pixels
    (``_nb.ring._ring_flush``)."""
    return (
        np.full(n, -1, dtype=np.int64),
        np.zeros(n, dtype=np.int64),
        np.zeros(n, dtype=np.int64),
        np.empty((n, w // 8 + 1, 3), dtype=np.int64),
        np.zeros(1, np.int64),
    )


_NO_SUPPORT = np.ones((1, 1), dtype=np.bool_)
_NO_LINE = np.empty(0, dtype=np.int64)


def _line_map(pcol: NDArray[np.int64]) -> NDArray[np.int64]:
    """One column map for a whole padded row, if ``pcol[x, j] == line[x + j]`` (contiguous
    output columns), else an empty array (the loops then visit target pixels one by one)."""
    w, kw = pcol.shape
    line = np.concatenate((pcol[:, 0], pcol[-1, 1:]))
    if all(np.array_equal(pcol[:, j], line[j : j + w]) for j in range(kw)):
        return np.ascontiguousarray(line)
    return _NO_LINE


def count_changed(
    before: NDArray[Any],
    after: NDArray[Any],
    rows: NDArray[np.int64] | None = None,
    cols: NDArray[np.int64] | None = None,
) -> int:
    """Pixels of ``after`` (bands, h, w) where any band differs bit-wise from ``before``.

    ``before[:, rows[i], cols[x]]`` is compared with ``after[:, i, x]`` (default: the same
    positions). Bit-wise: NaN equals NaN, -0.0 differs from 0.0.
    """
    _, h, w = after.shape
    return int(changed_per_tile(before, after, (h, w), rows, cols)[0, 0])


def changed_per_tile(
    before: NDArray[Any],
    after: NDArray[Any],
    tile: tuple[int, int],
    rows: NDArray[np.int64] | None = None,
    cols: NDArray[np.int64] | None = None,
) -> NDArray[np.int64]:
    """:func:`count_changed` per tile of ``tile`` (rows, cols) pixels of ``after``, from its corner.

    Returns an int64 array (tiles down, tiles across); one pass over the pixels.
    """
    u = _uint_view(before.dtype)
    _, h, w = after.shape
    rows = np.arange(h, dtype=np.int64) if rows is None else np.ascontiguousarray(rows, dtype=np.int64)
    cols = np.arange(w, dtype=np.int64) if cols is None else np.ascontiguousarray(cols, dtype=np.int64)
    b = np.ascontiguousarray(before).view(u)
    a = np.ascontiguousarray(after).view(u)
    return backend(before.dtype.name).count_changed(b, rows, cols, a, max(1, tile[0]), max(1, tile[1]))


def zero_sum_error(kernel: Kernel) -> KernelError:
    """The refusal of a kernel whose weights sum to <= 0 where it would need renormalising."""
    return KernelError(
        f"kernel {kernel.name!r} has weights summing to {kernel.weight_sum:g}: it cannot be "
        "renormalised over nodata or unsupported neighbours; set normalize: false "
        "(missing neighbours then count as 0) or declare no nodata"
    )


def _uint_view(dtype: np.dtype) -> np.dtype:
    return np.dtype(f"u{dtype.itemsize}")


def masked_convolve(
    array: ArrayLike,
    kernel: Kernel | ArrayLike | str,
    mask: ArrayLike | None,
    *,
    mode: str = "reflect",
    cval: float = 0.0,
    nodata: float | None = None,
    op: str = "convolve",
    normalize: bool = True,
    support: ArrayLike | None = None,
    threads: int | None = None,
    out: NDArray[Any] | None = None,
) -> NDArray[Any]:
    """Apply ``kernel`` to ``array`` only where ``mask`` is True.

    Parameters
    ----------
    array : array (H, W) or (bands, H, W)
        Any of uint8, int8, uint16, int16, uint32, int32, float32, float64.
    kernel : Kernel, matrix or registry name
        From :func:`geomask.kernels.get`, or a 2-D matrix with odd side lengths.
    mask : bool array (H, W), or None for every pixel
        The target: where output pixels may change.
    mode : {"reflect", "mirror", "nearest", "wrap", "constant", "leave"}
        Values beyond the array's edges, as in ``scipy.ndimage``; ``leave`` leaves pixels
        whose kernel footprint leaves the array unchanged.
    cval : float
        The value beyond the edges for ``mode="constant"``.
    nodata : float or None
        Pixels with this value (and NaN in floats) do not contribute and stay unchanged.
    op : {"convolve", "correlate"}
        ``convolve`` flips the kernel (``scipy.ndimage.convolve``); ``correlate`` does not.
    normalize : bool
        With nodata or ``support``, renormalise linear kernels over the contributing
        neighbours (``value = sum(w*x over valid) * sum(w) / sum(w over valid)``). Kernels
        whose weights sum to <= 0 cannot be renormalised: they raise
        :class:`~geomask.errors.KernelError` up front, whatever the mask, when nodata (or NaN)
        occurs anywhere in ``array`` (any band) or a ``support`` is given, unless
        ``normalize=False``, where missing neighbours count as 0. (The engine refuses them as
        soon as a nodata value or a support is declared.)
    support : bool array (H, W) or None
        Only these pixels contribute as neighbours.
    threads : int or None
        Threads to split the rows over (the compiled loops release the GIL); None: every core,
        but only one for small arrays with few masked rows (under ~512 rows holding masked
        pixels and 8 M pixels), where a thread costs more than it saves; at most one per 128
        rows. The result does not depend on it.
    out : numpy array or None
        Where the result goes. None: a new array. ``array`` itself (``out=array``): in place;
        only masked pixels change, and besides a few rows per thread nothing is allocated or
        copied, so the cost follows the masked area (numpy arrays that are
        C-contiguous and writable; others are filtered into a new array and copied back).
        Another array of the same shape and dtype, not overlapping ``array``: it receives
        the whole result (``array`` is copied into it first).

    Returns
    -------
    The result: ``out`` if given, else a new array of ``array``'s shape and dtype. The
    values are the same bit for bit whichever ``out``. Outside ``mask`` (and at nodata pixels)
    it equals the input bit for bit. Inside, linear kernels give the float64 result of
    ``scipy.ndimage.correlate`` (separable kernels: two ``correlate1d`` passes, rows first),
    cast back: integers rounded half to even and clipped to the dtype's range.

    Notes
    -----
    Memory: the output only (no padded or float64 copy). Cost follows the number of masked
    pixels times the kernel size (separable kernels: about the sum of its side lengths where
    the mask is dense), plus one copy of the array.
    """
    if type(array).__name__ == "DataArray":
        raise InputError(
            "geomask.convolve.masked_convolve takes numpy arrays; for an xarray DataArray call "
            "geomask.masked_convolve"
        )
    arr = np.asarray(array)
    check_dtype(arr.dtype)
    if arr.ndim not in (2, 3):
        raise InputError(f"array must be (H, W) or (bands, H, W), got shape {arr.shape}")
    planes = arr[None] if arr.ndim == 2 else arr
    _, h, w = planes.shape
    if h == 0 or w == 0:
        raise InputError(f"array is empty: shape {arr.shape}")
    check_mode(mode)
    nodata = effective_nodata(nodata, arr.dtype)
    k = prepare_kernel(kernel, op)
    k.check_fits(h, w)
    target = _bool_plane(mask, (h, w), "mask") if mask is not None else np.ones((h, w), dtype=bool)
    sup = _bool_plane(support, (h, w), "support") if support is not None else None
    # One rule for the whole stack, decided before any work (as the engine's bind_steps).
    zero_sum = k.kind == "linear" and normalize and k.weight_sum <= 0
    if zero_sum and (sup is not None or valid_pixels(planes, nodata) is not None):
        raise zero_sum_error(k)
    ry, rx = k.halo
    prow = _axis_taps(h, ry, mode)
    pcol = _axis_taps(w, rx, mode)
    if mode == "leave":
        target = target & interior(np.arange(h), np.arange(w), (h, w), (ry, rx))
    dest, is_input = _destination(out, arr)
    in_place = dest is not None and dest.flags.c_contiguous and dest.flags.writeable
    if dest is not None and in_place and not is_input:
        np.copyto(dest, arr)  # a separate output: the result is the input plus the filtered pixels
    result, _ = filter_indexed(
        (dest[None] if arr.ndim == 2 else dest) if in_place else planes,  # type: ignore[index]
        prow,
        pcol,
        target,
        k,
        cval=cval,
        nodata=nodata,
        normalize=normalize,
        support=sup,
        threads=threads,
        in_place=in_place,
    )
    result = result[0] if arr.ndim == 2 else result
    if dest is not None and not in_place:  # out is not C-contiguous: filtered apart, copied back
        np.copyto(dest, result)
    return result if dest is None else dest


def _destination(out: Any, arr: NDArray[Any]) -> tuple[NDArray[Any] | None, bool]:
    """``out`` checked against ``array``: (None, False), or (a numpy array of its shape and dtype,
    whether it is ``array``'s own memory: in place; else it shares none of it)."""
    if out is None:
        return None, False
    if not isinstance(out, np.ndarray):
        raise InputError(f"out must be a numpy array, got {type(out).__name__}")
    if out.shape != arr.shape or out.dtype != arr.dtype:
        raise InputError(
            f"out is {out.dtype.name} {out.shape} but the result is {arr.dtype.name} {arr.shape}: "
            "pass an array of the input's shape and dtype (or the input itself, to filter in place)"
        )
    if not out.flags.writeable:
        raise InputError("out is read-only: pass a writable array")
    same = (
        out.__array_interface__["data"][0] == arr.__array_interface__["data"][0]
        and out.strides == arr.strides
    )
    if not same and np.shares_memory(out, arr):
        raise InputError(
            "out overlaps the input without being it: pass the input itself, or a separate array"
        )
    return out, same


def _bool_plane(values: ArrayLike, shape: tuple[int, int], what: str) -> NDArray[np.bool_]:
    a = np.asarray(values)
    if a.shape != shape:
        raise InputError(f"{what} has shape {a.shape} but the array's pixels are {shape}: they must match")
    if a.dtype != np.bool_:
        a = a != 0
    return np.ascontiguousarray(a)
