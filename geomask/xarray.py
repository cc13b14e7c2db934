"""xarray adapter: :func:`geomask.masked_convolve` on an ``xarray.DataArray``.

A DataArray as rioxarray opens it, dims ``(band, y, x)`` or ``(y, x)`` (any names: the last two are
rows and columns), goes in; a DataArray with the same dims, coordinates (``spatial_ref`` and its
CRS included), attributes and encoding comes out.

* numpy-backed: filtered in memory with :func:`geomask.masked_convolve`.
* dask-backed: stays lazy. The array is padded at the scene edge by the boundary mode (with
  ``dask.array.pad``: scipy's ``reflect`` is numpy's ``symmetric``, ``mirror`` is ``reflect``,
  ``nearest`` is ``edge``), then every chunk is filtered with its kernel halo of neighbours
  (``dask.array.map_overlap``, no further boundary) and the halo dropped. A pixel's value depends
  only on its footprint, summed in a fixed order, so the result equals the numpy path byte for byte,
  for any chunking. ``mode="leave"`` needs to know where the scene ends and is not available lazily
  (compute first). Chunks along the band axis are fine; the spatial chunks should be larger than
  the kernel's halo (dask rechunks otherwise).

The zero-sum refusal (a kernel whose weights sum to <= 0 cannot be renormalised over nodata) is
decided per chunk on the lazy path: a chunk without nodata filters such a kernel where the numpy path
refuses the whole array; pass ``normalize=False`` (or no nodata) for such kernels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from geomask.errors import ConfigError, InputError
from geomask.kernels import Kernel

__all__ = ["is_dataarray", "masked_convolve_xarray"]

_PAD_MODE = {
    "reflect": "symmetric",
    "mirror": "reflect",
    "nearest": "edge",
    "wrap": "wrap",
    "constant": "constant",
}


def is_dataarray(value: object) -> bool:
    """Whether ``value`` is an ``xarray.DataArray`` (without importing xarray when it is not loaded)."""
    import sys

    xr = sys.modules.get("xarray")
    return xr is not None and isinstance(value, xr.DataArray)


def _plane(value: ArrayLike | Any, shape: tuple[int, int], what: str) -> Any:
    """A (y, x) mask/support as a numpy or dask array (a DataArray gives its data)."""
    if value is None:
        return None
    data = value.data if is_dataarray(value) else value
    if tuple(data.shape) != shape:
        raise InputError(
            f"{what} has shape {tuple(data.shape)} but the array's pixels are {shape}: they must match"
        )
    return data


def masked_convolve_xarray(
    array: Any,
    kernel: Kernel | ArrayLike | str,
    mask: ArrayLike | Any | None,
    *,
    mode: str = "reflect",
    cval: float = 0.0,
    nodata: float | None = None,
    op: str = "convolve",
    normalize: bool = True,
    support: ArrayLike | Any | None = None,
) -> Any:
    """:func:`geomask.masked_convolve` for an ``xarray.DataArray`` (lazy when it is dask-backed).

    Parameters
    ----------
    array : xarray.DataArray
        Dims ``(band, y, x)`` or ``(y, x)``; any dtype :func:`~geomask.masked_convolve` takes.
    kernel, mode, cval, nodata, op, normalize
        As :func:`geomask.masked_convolve`. ``nodata=None`` takes the array's own nodata
        (``array.rio.nodata`` when rioxarray is loaded, else the ``_FillValue`` attribute or encoding).
    mask, support : bool array or DataArray of shape (y, x), or None
        As :func:`geomask.masked_convolve`; may be dask arrays.

    Returns
    -------
    xarray.DataArray
        Same dims, coords (CRS and transform included), attrs, name and dtype; dask-backed and lazy
        when ``array`` is.

    Raises
    ------
    InputError
        Not 2-D or 3-D, or a mask of another shape.
    ConfigError
        ``mode="leave"`` on a dask-backed array.
    """
    from geomask.convolve import masked_convolve, prepare_kernel

    if array.ndim not in (2, 3):
        raise InputError(f"DataArray must be (y, x) or (band, y, x), got dims {array.dims}")
    if nodata is None:
        nodata = _nodata(array)
    shape = (int(array.shape[-2]), int(array.shape[-1]))
    target = _plane(mask, shape, "mask")
    sup = _plane(support, shape, "support")
    options = {"cval": cval, "nodata": nodata, "op": op, "normalize": normalize}
    data = array.data
    try:
        import dask.array as dsa
    except ImportError:  # pragma: no cover - dask is a dependency
        dsa = None
    if dsa is None or not isinstance(data, dsa.Array):
        result = masked_convolve(
            np.asarray(data),
            kernel,
            None if target is None else np.asarray(target),
            mode=mode,
            support=None if sup is None else np.asarray(sup),
            **options,
        )
        return array.copy(data=result)
    if mode == "leave":
        raise ConfigError("mode 'leave' is not available on a dask-backed DataArray: .compute() it first")
    if mode not in _PAD_MODE:
        raise ConfigError(f"unknown mode {mode!r}: use reflect, mirror, nearest, wrap or constant")
    ry, rx = prepare_kernel(kernel, op).halo
    lead = data.ndim - 2
    pad = [(0, 0)] * lead + [(ry, ry), (rx, rx)]
    depth = {lead: ry, lead + 1: rx}

    def padded(values: Any, fill: float) -> Any:
        extra = {"constant_values": fill} if mode == "constant" else {}
        return dsa.pad(values, pad[-values.ndim :], mode=_PAD_MODE[mode], **extra)

    planes = padded(data, cval)
    chunks = planes.chunks
    target_d = (
        dsa.ones(shape, dtype=bool, chunks=data.chunks[-2:]) if target is None else dsa.asarray(target) != 0
    )
    target_p = dsa.pad(target_d, pad[-2:], mode="constant", constant_values=False)
    args = [planes, _spread(target_p, chunks, lead)]
    if sup is not None:
        sup_d = dsa.asarray(sup) != 0
        args.append(
            _spread(
                padded(sup_d, True) if mode == "constant" else dsa.pad(sup_d, pad[-2:], mode=_PAD_MODE[mode]),
                chunks,
                lead,
            )
        )

    def block(values: np.ndarray, tgt: np.ndarray, *rest: np.ndarray) -> np.ndarray:
        plane_tgt = tgt[(0,) * (tgt.ndim - 2)]
        plane_sup = rest[0][(0,) * (rest[0].ndim - 2)] if rest else None
        # A halo of neighbours is present on every side (the mode is applied by the padding), so the
        # block's own boundary mode never reaches a pixel that is kept.
        return masked_convolve(values, kernel, plane_tgt, mode="reflect", support=plane_sup, **options)

    filtered = dsa.map_overlap(
        block,
        *args,
        depth=depth,
        boundary="none",
        dtype=data.dtype,
        meta=np.empty((0,) * data.ndim, data.dtype),
    )
    core = filtered[(slice(None),) * lead + (slice(ry, ry + shape[0]), slice(rx, rx + shape[1]))]
    return array.copy(data=core.rechunk(data.chunks))


def _spread(plane: Any, chunks: tuple[tuple[int, ...], ...], lead: int) -> Any:
    """A (y, x) dask plane chunked like the last two axes of ``chunks``, with ``lead`` size-1 axes
    (so map_overlap lines its blocks up with the data's)."""
    import dask.array as dsa

    plane = plane.rechunk(chunks[-2:])
    for _ in range(lead):
        plane = plane[None]
    return dsa.broadcast_to(plane, tuple(sum(c) for c in chunks[:lead]) + plane.shape[lead:], chunks=chunks)


def _nodata(array: Any) -> float | None:
    rio = None
    try:
        rio = array.rio if "rioxarray" in __import__("sys").modules else None
    except AttributeError:
        rio = None
    if rio is not None and rio.nodata is not None:
        return float(rio.nodata)
    for source in (array.attrs, array.encoding):
        value = source.get("_FillValue")
        if value is not None:
            return float(value)
    return None
