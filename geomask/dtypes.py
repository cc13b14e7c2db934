"""Output data types: which conversions are exact, the output's nodata, and the conversion itself.

A run writes the input's dtype unless ``output.dtype`` names another. The window's pixels are converted
to the output dtype when read, before the steps, so every step computes into the output dtype (the
kernels sum in float64 and cast once: a Laplacian of a uint8 scene written as float32 keeps its
negative values). Pixels no step changes are the converted input.

A conversion is *exact* when every value of the input dtype is a value of the output dtype (numpy's
``can_cast(..., "safe")``: uint8 -> int16 or float32, uint16 -> float32, int32 -> float64; not uint16
-> uint8, float -> int, int32 -> float32, whose values beyond 2**24 lose digits, or float64 -> float32).
Other conversions need ``clip``: integers are rounded half to even and clipped to the output's range,
float64 values beyond float32's range become its largest finite value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geomask.pixels import SUPPORTED_DTYPES, effective_nodata, valid_pixels

__all__ = ["OUTPUT_DTYPES", "Conversion", "conversion_problem", "default_nodata", "output_nodata"]

OUTPUT_DTYPES = tuple(d.name for d in SUPPORTED_DTYPES)
"""The dtypes a run can write (those the kernels compute in)."""


def conversion_problem(source: Any, target: Any, clip: bool) -> str | None:
    """Why ``source`` pixels cannot be written as ``target`` without ``clip``; None if they can.

    Parameters
    ----------
    source, target : dtype-like
        The input's and the output's dtype.
    clip : bool
        The user accepts rounding and clipping (then every supported conversion is allowed).
    """
    src, dst = np.dtype(source), np.dtype(target)
    if dst.name not in OUTPUT_DTYPES:
        return f"output dtype {dst.name} is not supported; use one of {', '.join(OUTPUT_DTYPES)}"
    if clip or np.can_cast(src, dst, "safe"):
        return None
    if dst.kind in "iu":
        info = np.iinfo(dst)
        what = f"whole numbers {info.min}..{info.max}"
    else:
        what = "about 7 significant digits" if dst.itemsize == 4 else "float64 values"
    return (
        f"output dtype {dst.name} ({what}) cannot hold every {src.name} value; set output.clip: true to "
        f"round and clip the values to it, or choose a wider dtype"
    )


def default_nodata(dtype: Any) -> float:
    """The output nodata when the input's cannot be held: NaN for floats, the minimum for integers
    (0 for unsigned, as Landsat and Sentinel-2 products use)."""
    dt = np.dtype(dtype)
    return math.nan if dt.kind == "f" else float(np.iinfo(dt).min)


def output_nodata(nodata: float | None, source: Any, target: Any) -> float | None:
    """The nodata value of the output: ``nodata`` when ``target`` holds it exactly, else
    :func:`default_nodata`. None stays None, except float -> integer (NaN pixels need a value)."""
    src, dst = np.dtype(source), np.dtype(target)
    if src == dst:
        return nodata
    value = None if nodata is None else effective_nodata(nodata, src)
    if value is None:
        return default_nodata(dst) if src.kind == "f" and dst.kind in "iu" else None
    if math.isnan(value):
        return math.nan if dst.kind == "f" else default_nodata(dst)
    if dst.kind in "iu":
        info = np.iinfo(dst)
        holds = value.is_integer() and info.min <= value <= info.max
    else:
        with np.errstate(over="ignore"):
            holds = float(np.array(value).astype(dst)) == value
    return value if holds else default_nodata(dst)


@dataclass(frozen=True)
class Conversion:
    """Converts a window's pixels from the input's dtype to the output's (picklable).

    Attributes
    ----------
    dtype : str
        The output dtype.
    nodata : float or None
        The input's nodata (pixels equal to it, and NaN, are invalid).
    out_nodata : float or None
        What invalid pixels become (:func:`output_nodata`).
    """

    dtype: str
    nodata: float | None
    out_nodata: float | None

    def apply(self, values: NDArray[Any]) -> NDArray[Any]:
        """``values`` in :attr:`dtype`: integers rounded half to even and clipped, float64 -> float32
        clipped to the finite range, invalid pixels set to :attr:`out_nodata` (exact where
        :func:`conversion_problem` allows a conversion without ``clip``)."""
        dst = np.dtype(self.dtype)
        if values.dtype == dst:
            return values
        valid = valid_pixels(values, self.nodata)
        if dst.kind in "iu":
            info = np.iinfo(dst)
            if values.dtype.kind == "f":
                with np.errstate(invalid="ignore"):
                    wide = np.clip(np.rint(values), info.min, info.max)
                wide[np.isnan(wide)] = 0
            else:
                wide = np.clip(values.astype(np.int64), info.min, info.max)
            out = wide.astype(dst)
        elif values.dtype.kind == "f" and dst.itemsize < values.dtype.itemsize:
            top = float(np.finfo(dst).max)
            out = np.clip(values, -top, top).astype(dst)
        else:
            out = values.astype(dst)
        if valid is not None and self.out_nodata is not None:
            out[~valid] = self.out_nodata
        return out
