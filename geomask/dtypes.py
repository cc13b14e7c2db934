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

``output.nodata`` chooses the output's nodata instead (:func:`output_nodata_problem` says which values a
dtype holds): the steps still compute with the input's validity (so the computed values are those of
``output.nodata: auto``), and once they are done every pixel invalid in the input and still invalid
is written as it (:meth:`Conversion.finish`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geomask.pixels import SUPPORTED_DTYPES, effective_nodata, nodata_problem, valid_pixels

__all__ = [
    "OUTPUT_DTYPES",
    "Conversion",
    "conversion_problem",
    "default_nodata",
    "invalid_pixels",
    "output_nodata",
    "output_nodata_problem",
]

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


def output_nodata_problem(value: float, dtype: Any) -> str | None:
    """Why ``value`` cannot be the declared nodata of a ``dtype`` output; None if it can.

    NaN needs a float dtype; an integer dtype needs a whole number in its range; a float dtype a value
    it holds exactly (float32 cannot hold 0.1 or 16777217, whose pixels would never equal the
    declared value).
    """
    dt = np.dtype(dtype)
    value = float(value)
    if math.isnan(value):
        if dt.kind == "f":
            return None
        return (
            f"nan needs a float output dtype, the output is {dt.name}; set output.dtype: float32 (or float64)"
        )
    if math.isinf(value):
        return f"{value:g} is not a {dt.name} nodata value; give a finite number"
    problem = nodata_problem(value, dt)  # an integer's range and whole numbers, a float's range
    if problem is not None:
        return f"{problem}; give a value it holds, or set output.dtype to a type that holds it"
    held = effective_nodata(value, dt)  # the value a pixel of dt would hold
    if held != value:
        return (
            f"{value!r} is not exactly a {dt.name} value (it would be stored as {held!r}); give a value "
            f"{dt.name} holds, e.g. {held!r}, a whole number or nan"
        )
    return None


def invalid_pixels(values: NDArray[Any], nodata: float | None) -> NDArray[np.bool_] | None:
    """Pixels that are not data (equal to ``nodata``, or NaN); None if there are none."""
    valid = valid_pixels(values, nodata)
    return None if valid is None else ~valid


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
        What invalid pixels become when read (:func:`output_nodata`); the steps' nodata.
    final_nodata : float or None
        ``output.nodata``: what pixels invalid in the input (and still invalid after the steps) are
        written as, by :meth:`finish`; None (``auto``): they stay :attr:`out_nodata`.
    """

    dtype: str
    nodata: float | None
    out_nodata: float | None
    final_nodata: float | None = None

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

    def finish(
        self,
        values: NDArray[Any],
        invalid: NDArray[np.bool_] | None,
        masked: NDArray[np.bool_] | None = None,
        *,
        keep: int | None = None,
    ) -> None:
        """Write :attr:`final_nodata` in place into the invalid pixels of ``values`` (output dtype,
        bands first); nothing to do without :attr:`final_nodata`.

        Parameters
        ----------
        values : array (bands, rows, cols)
            The finished pixels.
        invalid : bool array like ``values``, or None
            Pixels invalid by value in the input (nodata, NaN): rewritten where still invalid (a fill
            step may have given them a value). None: none.
        masked : bool array (rows, cols), or None
            Pixels invalid by an alpha band or GDAL mask: rewritten in every band.
        keep : int or None
            A band (0-based) left as it is (the alpha band).
        """
        if self.final_nodata is None or (invalid is None and masked is None):
            return
        rewrite = np.zeros(values.shape, dtype=bool)
        if invalid is not None:
            still = invalid_pixels(values, self.out_nodata)
            if still is not None:
                rewrite = invalid & still
        if masked is not None:
            rewrite |= masked
        if keep is not None:
            rewrite[keep] = False
        values[rewrite] = self.final_nodata
