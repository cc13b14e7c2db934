"""Arrays in memory: :func:`masked_convolve` for numpy arrays and xarray DataArrays alike.

The public :func:`geomask.masked_convolve` is this dispatcher: an ``xarray.DataArray`` (lazy when
dask-backed) goes to :func:`geomask.xarray.masked_convolve_xarray`, anything else to the numpy
implementation :func:`geomask.convolve.masked_convolve`. It sits above both, so neither imports the
other's caller.
"""

from __future__ import annotations

from typing import Any

from numpy.typing import ArrayLike, NDArray

from geomask import convolve
from geomask.errors import InputError
from geomask.kernels import Kernel
from geomask.xarray import masked_convolve_xarray

__all__ = ["masked_convolve"]


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
    """Apply ``kernel`` to ``array`` only where ``mask`` is True (a numpy array or an xarray DataArray).

    Parameters
    ----------
    array : array (H, W) or (bands, H, W), or xarray.DataArray (y, x) or (band, y, x)
        Any of uint8, int8, uint16, int16, uint32, int32, float32, float64.
    kernel, mask, mode, cval, nodata, op, normalize, support, threads, out
        As :func:`geomask.convolve.masked_convolve` (numpy arrays) and
        :func:`geomask.xarray.masked_convolve_xarray` (DataArrays, which take neither ``threads``
        nor ``out``; ``nodata=None`` there takes the array's own nodata).

    Returns
    -------
    A numpy array (``out`` if given), or for a DataArray a DataArray with the same dims, coords (CRS
    and transform included) and attrs, dask-backed and lazy when ``array`` is. Outside ``mask`` (and
    at nodata pixels) equal to the input bit for bit.

    Raises
    ------
    InputError
        ``out`` given with a DataArray, or any error of the function the array goes to.
    """
    if type(array).__name__ == "DataArray":  # xarray (lazy when dask-backed): geomask.xarray
        if out is not None:
            raise InputError("out= is for numpy arrays; an xarray result is a new DataArray")
        kw = {"mode": mode, "cval": cval, "nodata": nodata, "op": op, "normalize": normalize}
        return masked_convolve_xarray(array, kernel, mask, support=support, **kw)  # type: ignore[no-any-return]
    return convolve.masked_convolve(
        array,
        kernel,
        mask,
        mode=mode,
        cval=cval,
        nodata=nodata,
        op=op,
        normalize=normalize,
        support=support,
        threads=threads,
        out=out,
    )
