"""Masked nodata fill: a step's kernel evaluated at nodata pixels over their valid neighbours.

A fill step (``fill: {nodata: true, min_valid: N}``) changes only target pixels that are nodata (or
NaN): where at least ``min_valid`` cells of the kernel's footprint are valid, the pixel takes

* linear kernels: the sum of ``value * weight`` over the valid cells (C order over the weights with
  ``|w| > DBL_EPSILON``, from 0.0), times ``full / den`` with ``normalize`` (``full`` the sum of all
  those weights, ``den`` that of the valid cells'; a ``den`` of 0 leaves the pixel nodata): the
  same arithmetic as the compiled kernels' renormalised path (:mod:`geomask._nb`);
* rank kernels (median, minimum, maximum): the order statistic of the valid cells (the median of an
  even count is the mean of the two middle values).

Valid pixels keep their value (smooth them in another step). Every fill reads the step's input, so a
pixel filled by a step is data for the next one: repeated fill steps grow into larger holes, and the
result never depends on the window (the cells come through the same index maps as the kernels').
Plain numpy, vectorised over the fill targets, in chunks of at most :data:`MAX_CELLS` footprint
cells (about 19 MiB) whatever the number of holes.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from geomask.kernels import Kernel
from geomask.pixels import to_dtype

__all__ = ["EPS", "MAX_CELLS", "fill_nodata", "footprint_size"]

EPS = float(np.finfo(np.float64).eps)
"""Linear weights at or below this magnitude are not in the footprint (as scipy.ndimage drops them)."""


def _taps(kernel: Kernel) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """(rows, cols, weights) of the footprint's cells in C order."""
    weights = np.asarray(kernel.weights, dtype=np.float64)
    cells = np.abs(weights) > EPS if kernel.kind == "linear" else weights != 0
    di, dj = np.nonzero(cells)
    return di.astype(np.int64), dj.astype(np.int64), weights[di, dj]


def footprint_size(kernel: Kernel) -> int:
    """The number of cells a pixel's fill can read (its most valid neighbours)."""
    return int(_taps(kernel)[0].size)


def fill_nodata(
    values: NDArray[Any],
    prow: NDArray[np.int64],
    pcol: NDArray[np.int64],
    target: NDArray[np.bool_],
    kernel: Kernel,
    out: NDArray[Any],
    *,
    min_valid: int,
    cval: float = 0.0,
    nodata: float | None = None,
    normalize: bool = True,
    support: NDArray[np.bool_] | None = None,
) -> int:
    """Fill the nodata target pixels of ``out`` in place; returns how many values were filled.

    Parameters
    ----------
    values : array (bands, in_h, in_w)
        The step's input as read (its own pixels and halo), in the output's dtype.
    prow, pcol : int64 arrays (h, kh), (w, kw)
        The index maps of :func:`geomask.convolve.tap_index` (``-1``: a ``constant`` cell).
    target : bool array (h, w)
        Where pixels may be filled (the step's mask; pixels invalid by alpha or mask left out).
    kernel : Kernel
        Prepared for correlation (:func:`geomask.convolve.prepare_kernel`).
    out : array (bands, h, w)
        The step's result so far (the input's own pixels); filled pixels are written into it.
    min_valid : int
        Fewest valid footprint cells a pixel needs to be filled.
    cval, nodata, normalize, support
        As :func:`geomask.convolve.filter_indexed`: a ``constant`` cell is ``cval`` (valid unless
        NaN or nodata); cells equal to ``nodata``, NaN or outside ``support`` are not valid.
    """
    di, dj, ww = _taps(kernel)
    ry, rx = prow.shape[1] // 2, pcol.shape[1] // 2
    taps = _Taps(di, dj, ww, float(ww.sum()) if kernel.kind == "linear" else 0.0, kernel.kind)
    cval_ok = not (math.isnan(cval) or (nodata is not None and cval == nodata))
    chunk = max(1, MAX_CELLS // max(1, di.size))
    filled = 0
    for b in range(values.shape[0]):
        band = values[b]
        centre = band[np.ix_(prow[:, ry], pcol[:, rx])]
        ti, tx = np.nonzero(_invalid(centre, nodata) & target)
        for start in range(0, ti.size, chunk):
            rows, cols = ti[start : start + chunk], tx[start : start + chunk]
            cells, ok = _cells(band, prow[rows], pcol[cols], taps, cval, cval_ok, nodata, support)
            t, enough = _values(cells, ok, taps, normalize, min_valid)
            out[b, rows[enough], cols[enough]] = to_dtype(t[enough], out.dtype)
            filled += int(enough.sum())
    return filled


MAX_CELLS = 1 << 21
"""Footprint cells gathered at once (targets x taps; float64 and bool: about 19 MiB)."""


class _Taps(NamedTuple):
    di: NDArray[np.int64]
    dj: NDArray[np.int64]
    ww: NDArray[np.float64]
    full: float
    kind: str


def _cells(
    band: NDArray[Any],
    prow: NDArray[np.int64],
    pcol: NDArray[np.int64],
    taps: _Taps,
    cval: float,
    cval_ok: bool,
    nodata: float | None,
    support: NDArray[np.bool_] | None,
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """(values, valid) of every footprint cell (taps x targets) of the targets whose maps are given."""
    n = prow.shape[0]
    cells = np.empty((taps.di.size, n), dtype=np.float64)
    ok = np.empty((taps.di.size, n), dtype=bool)
    for k in range(taps.di.size):
        p, q = prow[:, taps.di[k]], pcol[:, taps.dj[k]]
        outside = (p < 0) | (q < 0)
        pp, qq = np.maximum(p, 0), np.maximum(q, 0)
        v = band[pp, qq].astype(np.float64)
        good = ~_invalid(v, nodata)
        if support is not None:
            good &= support[pp, qq]
        cells[k] = np.where(outside, cval, v)
        ok[k] = np.where(outside, cval_ok, good)
    return cells, ok


def _values(
    cells: NDArray[np.float64], ok: NDArray[np.bool_], taps: _Taps, normalize: bool, min_valid: int
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """(fill value, whether filled) of each target column."""
    enough = ok.sum(axis=0) >= min_valid
    if taps.kind != "linear":
        return _rank(cells, ok, taps.kind), enough
    t = np.zeros(cells.shape[1])
    den = np.zeros(cells.shape[1])
    for k in range(cells.shape[0]):
        t += np.where(ok[k], cells[k] * taps.ww[k], 0.0)
        den += np.where(ok[k], taps.ww[k], 0.0)
    if normalize:
        enough &= den != 0
        with np.errstate(divide="ignore", invalid="ignore"):
            t = t * (taps.full / den)
    return t, enough


def _invalid(v: NDArray[Any], nodata: float | None) -> NDArray[np.bool_]:
    """NaN, or equal to ``nodata``."""
    bad = np.isnan(v) if v.dtype.kind == "f" else np.zeros(v.shape, dtype=bool)
    if nodata is not None and not math.isnan(nodata):
        bad |= v == nodata
    return bad


def _rank(cells: NDArray[np.float64], ok: NDArray[np.bool_], kind: str) -> NDArray[np.float64]:
    """Median, minimum or maximum of each column's valid cells (columns without any: NaN)."""
    n = ok.sum(axis=0)
    if kind == "minimum":
        return np.where(n > 0, np.where(ok, cells, np.inf).min(axis=0), np.nan)
    if kind == "maximum":
        return np.where(n > 0, np.where(ok, cells, -np.inf).max(axis=0), np.nan)
    ordered = np.sort(np.where(ok, cells, np.inf), axis=0)
    cols = np.arange(cells.shape[1])
    k = n // 2
    upper = ordered[np.minimum(k, cells.shape[0] - 1), cols]
    lower = ordered[np.maximum(k - 1, 0), cols]
    return np.where(n % 2 == 0, (lower + upper) / 2.0, upper)
