"""Pixel values: the data types geomask filters, nodata as a value of a dtype, validity and casts.

Pure numpy (no compiled kernels): masks, readers and validation use these without loading numba.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geomask.errors import InputError

__all__ = [
    "SUPPORTED_DTYPES",
    "check_dtype",
    "effective_nodata",
    "nodata_problem",
    "to_dtype",
    "valid_pixels",
]

SUPPORTED_DTYPES = tuple(
    np.dtype(t) for t in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")
)


def check_dtype(dtype: Any) -> np.dtype:
    """Return ``dtype`` as a numpy dtype if geomask can filter it, else raise :class:`InputError`."""
    dt = np.dtype(dtype)
    if dt not in SUPPORTED_DTYPES:
        names = ", ".join(d.name for d in SUPPORTED_DTYPES)
        raise InputError(f"unsupported data type {dt.name}: geomask filters {names}")
    return dt


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


def nodata_problem(nodata: float, dtype: Any) -> str | None:
    """Why a nodata value given by the user cannot occur in ``dtype``, naming its range; None if it can.

    NaN is only a float's, a fraction never an integer's, and the value must lie in the dtype's range
    (``0..255`` for uint8, ``±3.4028235e+38`` for float32): otherwise no pixel could equal it.
    """
    dt = np.dtype(dtype)
    value = float(nodata)
    if dt.kind == "f":
        limit = float(np.finfo(dt).max)
        if math.isfinite(value) and abs(value) > limit:
            return f"nodata {value:g} is outside the {dt.name} range -{limit:g}..{limit:g}"
        return None
    if dt.kind in "iu":
        info = np.iinfo(dt)
        if math.isnan(value):
            return f"nodata NaN cannot occur in {dt.name} pixels (whole numbers {info.min}..{info.max})"
        if not value.is_integer() or not info.min <= value <= info.max:
            return f"nodata {value:g} is not a {dt.name} value (whole numbers {info.min}..{info.max})"
    return None


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
