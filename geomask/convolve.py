"""Masked convolution: a kernel applied only inside a mask, the rest left bit for bit.

Pure numpy (and the compiled loops of :mod:`geomask._kernels_nb`); no I/O.
:func:`filter_padded` is the one primitive: it filters a block that already
carries its halo. :func:`masked_convolve` (whole arrays in memory) and the
windowed engine both call it, which is why they agree byte for byte.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray

from geomask import _kernels_nb as nb
from geomask.errors import ConfigError, InputError, KernelError
from geomask.kernels import Kernel, as_kernel
from geomask.windows import check_mode, source_index

__all__ = [
    "SUPPORTED_DTYPES",
    "Op",
    "check_dtype",
    "effective_nodata",
    "filter_padded",
    "masked_convolve",
    "prepare_kernel",
    "to_dtype",
    "valid_pixels",
]

Op = Literal["convolve", "correlate"]
SUPPORTED_DTYPES = tuple(
    np.dtype(t) for t in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")
)
_RANK = {"median": 0, "minimum": 1, "maximum": 2}


def check_dtype(dtype: Any) -> np.dtype:
    """Return ``dtype`` as a numpy dtype if geomask can filter it, else raise :class:`InputError`."""
    dt = np.dtype(dtype)
    if dt not in SUPPORTED_DTYPES:
        names = ", ".join(d.name for d in SUPPORTED_DTYPES)
        raise InputError(f"unsupported data type {dt.name}: geomask filters {names}")
    return dt


def prepare_kernel(kernel: Kernel | ArrayLike | str, op: str) -> Kernel:
    """The kernel as applied by correlation: flipped for ``op="convolve"`` (as scipy.ndimage does)."""
    if op not in get_args(Op):
        raise ConfigError(f"unknown op {op!r}: use 'convolve' (kernel flipped) or 'correlate'")
    k = as_kernel(kernel)
    return k.flipped() if (op == "convolve" and k.kind == "linear") else k


def effective_nodata(nodata: float | None, dtype: Any) -> float | None:
    """``nodata`` as the value it has in ``dtype`` (as float64), or None if no pixel can equal it.

    GDAL reports a float32 band's nodata as a float64 (``-3.4e38``), which differs from
    the stored float32 value; an integer band cannot hold a fractional or out-of-range
    nodata, so such a nodata selects nothing.
    """
    if nodata is None:
        return None
    dt = np.dtype(dtype)
    value = float(nodata)
    if np.isnan(value):
        return value if dt.kind == "f" else None
    if dt.kind == "f":
        with np.errstate(over="ignore"):
            return float(np.array(value).astype(dt))
    info = np.iinfo(dt)
    if not value.is_integer() or not info.min <= value <= info.max:
        return None
    return value


def valid_pixels(values: NDArray[Any], nodata: float | None) -> NDArray[np.bool_] | None:
    """Pixels that hold data: not equal to ``nodata`` and, for floats, not NaN. None if all are."""
    invalid = None
    if values.dtype.kind == "f":
        invalid = np.isnan(values)
    if nodata is not None and not np.isnan(nodata):
        hit = values == nodata
        invalid = hit if invalid is None else (invalid | hit)
    if invalid is None or not invalid.any():
        return None
    return ~invalid


def to_dtype(values: NDArray[np.float64], dtype: np.dtype) -> NDArray[Any]:
    """Cast filtered float64 values to ``dtype``: integers rounded half to even and clipped to range."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)


def filter_padded(
    padded: NDArray[np.float64],
    center: NDArray[Any],
    target: NDArray[np.bool_],
    kernel: Kernel,
    *,
    nodata: float | None = None,
    normalize: bool = True,
    support: NDArray[np.bool_] | None = None,
    interior: NDArray[np.bool_] | None = None,
    const_rows: NDArray[np.bool_] | None = None,
) -> tuple[NDArray[Any], int]:
    """Filter one block that carries its halo; the primitive behind every public entry point.

    Parameters
    ----------
    padded : float64 array (bands, h + 2*ry, w + 2*rx)
        The block's values with a halo of the kernel's half-size (``kernel.halo``), boundary
        modes already applied (constant cells hold ``cval``).
    center : array (bands, h, w) of the scene's dtype
        The block's own pixels in their original dtype: copied unchanged wherever the
        filter does not apply, so those pixels keep their exact bits.
    target : bool array (h, w)
        Where output pixels may change.
    kernel : Kernel
        Already prepared for correlation (see :func:`prepare_kernel`).
    nodata : float or None
        Pixels equal to it (and NaN in floats) neither contribute nor change.
    normalize : bool
        Renormalise linear kernels over the contributing neighbours (normalized convolution).
    support : bool array like ``padded``'s last two axes, or None
        Neighbours outside it do not contribute (as nodata).
    interior : bool array (h, w) or None
        For mode ``leave``: pixels whose footprint stays inside the scene.
    const_rows : bool array (h + 2*ry,) or None
        Padded rows that lie beyond the scene in ``constant`` mode (separable kernels keep
        their padded value in the second pass, as scipy does).

    Returns
    -------
    (out, changed) : array like ``center``, and the number of pixel values that changed.

    Notes
    -----
    Memory: a few float64 copies of ``padded``. A pixel with no contributing neighbour
    (all weight on nodata) is left unchanged.
    """
    bands, h, w = center.shape
    ry, rx = kernel.halo
    out = center.copy()
    if const_rows is None:
        const_rows = np.zeros(padded.shape[1], dtype=np.bool_)
    if interior is not None:
        target = target & interior
    if not target.any():
        return out, 0
    changed = 0
    for b in range(bands):
        pad_b = padded[b]
        valid = valid_pixels(pad_b, nodata)
        if support is not None:
            valid = support if valid is None else (valid & support)
        tgt = target
        if valid is not None:
            tgt = target & valid[ry : ry + h, rx : rx + w]
        tgt = np.ascontiguousarray(tgt)
        if not tgt.any():
            continue
        result = np.zeros((h, w), dtype=np.float64)
        done = tgt
        if kernel.kind == "linear":
            if valid is None:
                _linear(pad_b, kernel, tgt, const_rows, result)
            else:
                if normalize and kernel.weight_sum <= 0:
                    raise KernelError(
                        f"kernel {kernel.name!r} has weights summing to {kernel.weight_sum:g}: it cannot be "
                        "renormalised over nodata or unsupported neighbours; set normalize: false "
                        "(missing neighbours then count as 0) or declare no nodata"
                    )
                num = np.zeros((h, w), dtype=np.float64)
                _linear(np.where(valid, pad_b, 0.0), kernel, tgt, const_rows, num)
                if normalize:
                    den = np.zeros((h, w), dtype=np.float64)
                    full = np.zeros((h, w), dtype=np.float64)
                    _linear(valid.astype(np.float64), kernel, tgt, const_rows, den)
                    _linear(np.ones_like(pad_b), kernel, tgt, const_rows, full)
                    done = tgt & (den != 0)
                    with np.errstate(divide="ignore", invalid="ignore"):
                        result = np.where(done, num * (full / den), 0.0)
                else:
                    result = num
        else:
            valid_arr = np.ones(pad_b.shape, dtype=np.bool_) if valid is None else valid
            result = np.full((h, w), np.nan)
            footprint = np.ascontiguousarray(kernel.weights != 0)
            nb.rank_filter(pad_b, valid_arr, footprint, tgt, _RANK[kernel.kind], result)
            done = tgt & ~np.isnan(result)
        new = to_dtype(result[done], center.dtype)
        old = center[b][done]
        changed += int(np.count_nonzero(new.view(_uint_view(new.dtype)) != old.view(_uint_view(old.dtype))))
        out[b][done] = new
    return out, changed


def _uint_view(dtype: np.dtype) -> np.dtype:
    return np.dtype(f"u{dtype.itemsize}")


def _linear(
    pad: NDArray[np.float64],
    kernel: Kernel,
    target: NDArray[np.bool_],
    const_rows: NDArray[np.bool_],
    out: NDArray[np.float64],
) -> None:
    pad = np.ascontiguousarray(pad, dtype=np.float64)
    if kernel.separable is not None:
        column, row = (np.ascontiguousarray(v) for v in kernel.separable)
        nb.correlate_separable(pad, column, row, target, const_rows, out)
    else:
        nb.correlate2d(pad, np.ascontiguousarray(kernel.weights), target, out)


def pad_indices(size: int, radius: int, mode: str) -> NDArray[np.int64]:
    """Scene indices for positions ``-radius .. size + radius - 1`` (``-1`` = constant cell)."""
    return source_index(np.arange(-radius, size + radius), size, mode)


def interior_mask(
    shape: tuple[int, int], origin: tuple[int, int], scene: tuple[int, int], halo: tuple[int, int]
) -> NDArray[np.bool_]:
    """Pixels of a block (at ``origin`` in a ``scene``-sized grid) whose footprint stays inside the scene."""
    (h, w), (r0, c0), (hh, ww), (ry, rx) = shape, origin, scene, halo
    rows = np.arange(r0, r0 + h)
    cols = np.arange(c0, c0 + w)
    ok_r = (rows >= ry) & (rows < hh - ry)
    ok_c = (cols >= rx) & (cols < ww - rx)
    return ok_r[:, None] & ok_c[None, :]


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
        :class:`~geomask.errors.KernelError` when nodata is present unless ``normalize=False``,
        where missing neighbours count as 0.
    support : bool array (H, W) or None
        Only these pixels contribute as neighbours.

    Returns
    -------
    A new array of ``array``'s shape and dtype. Outside ``mask`` (and at nodata pixels)
    it equals the input bit for bit. Inside, linear kernels give the float64 result of
    ``scipy.ndimage.correlate`` (separable kernels: two ``correlate1d`` passes, rows first),
    cast back: integers rounded half to even and clipped to the dtype's range.

    Notes
    -----
    Memory: about four float64 copies of one band plus the output. Cost follows the
    number of masked pixels times the kernel size (separable kernels: its side lengths).
    """
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
    ry, rx = k.halo
    rows = pad_indices(h, ry, mode)
    cols = pad_indices(w, rx, mode)
    padded = _gather(planes, rows, cols, cval)
    sup_padded = None
    if sup is not None:
        sup_padded = _gather(sup[None].astype(np.float64), rows, cols, 1.0)[0] != 0
    interior = interior_mask((h, w), (0, 0), (h, w), (ry, rx)) if mode == "leave" else None
    out, _ = filter_padded(
        padded,
        planes,
        target,
        k,
        nodata=nodata,
        normalize=normalize,
        support=sup_padded,
        interior=interior,
        const_rows=rows < 0,
    )
    return out[0] if arr.ndim == 2 else out


def _bool_plane(values: ArrayLike, shape: tuple[int, int], what: str) -> NDArray[np.bool_]:
    a = np.asarray(values)
    if a.shape != shape:
        raise InputError(f"{what} has shape {a.shape} but the array's pixels are {shape}: they must match")
    if a.dtype != np.bool_:
        a = a != 0
    return np.ascontiguousarray(a)


def _gather(
    planes: NDArray[Any], rows: NDArray[np.int64], cols: NDArray[np.int64], cval: float
) -> NDArray[np.float64]:
    """planes[:, rows][:, :, cols] as float64, with -1 indices filled with ``cval``."""
    out = planes.astype(np.float64, copy=False)[:, np.maximum(rows, 0)][:, :, np.maximum(cols, 0)]
    if (rows < 0).any():
        out[:, rows < 0, :] = cval
    if (cols < 0).any():
        out[:, :, cols < 0] = cval
    return np.ascontiguousarray(out)
