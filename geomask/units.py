"""Kernel sizes in map units: ``"30 m"``, ``"0.5 km"``, ``"0.01 deg"``, converted to pixels per scene.

A kernel parameter that is a length (``sigma``, ``radius``, ``size``) may be a number of pixels (the
default) or a :class:`Length` parsed from text. A length is converted with the pixel size of the scene
it is applied to, so one pipeline gives the same ground size on scenes of different resolutions.

Rules (kept deliberately simple):

* ``m`` and ``km`` need a projected CRS; its linear unit is taken into account (a CRS in US feet
  works). ``deg`` needs a geographic CRS and is divided by the pixel size in degrees. Any other
  pairing, or a scene without a CRS, is an error: write the size in pixels instead.
* ``px`` is an explicit number of pixels and needs no scene.
* ``sigma`` stays fractional; ``radius`` is rounded to the nearest whole pixel (halves up);
  ``size`` to the nearest odd number of pixels (ties up), at least 1.
* Pixels that are not square: the length is converted along x and along y separately. The kernels
  have one size for both axes, so the two results must agree (whole and odd sizes equal, ``sigma``
  within 1 %, then their mean is used); otherwise the conversion is refused with the two values,
  and the size must be given in pixels.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from geomask.errors import GridError, KernelError
from geomask.messages import crs_name

if TYPE_CHECKING:
    from geomask.grid import Grid

__all__ = ["LENGTH_PARAMS", "Length", "LengthUnit", "looks_like_length", "parse_length", "resolve_length"]

LengthUnit = Literal["px", "m", "km", "deg"]

LENGTH_PARAMS: dict[str, Literal["float", "whole", "odd"]] = {
    "sigma": "float",
    "radius": "whole",
    "size": "odd",
}
"""Kernel parameters that are lengths, and how their pixel value is rounded."""

_METRES = {"m": 1.0, "km": 1000.0}
_PATTERN = re.compile(r"\s*([-+]?[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE]([-+]?[0-9]+))?\s*([A-Za-z]+)\s*")
_TIE = 1e-9
"""Added before rounding, so a half that float arithmetic made 2.4999999999 still rounds up."""
_SQUARE_SIGMA = 0.01
"""Largest relative difference between the x and y sigma of non-square pixels that is accepted."""


@dataclass(frozen=True)
class Length:
    """A positive length with its unit, as written in a pipeline (``Length(30.0, "m")``)."""

    value: float
    unit: LengthUnit

    def __str__(self) -> str:
        return f"{self.value:g} {self.unit}"


def looks_like_length(text: str) -> bool:
    """Whether ``text`` is a number followed by a word (a length, maybe with an unknown unit)."""
    return _PATTERN.fullmatch(text) is not None


def parse_length(text: str) -> Length:
    """Parse ``"30 m"``, ``"0.5km"``, ``"0.01 deg"`` or ``"3 px"``.

    Raises
    ------
    ValueError
        Not a positive number followed by one of ``px``, ``m``, ``km``, ``deg``.
    """
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise ValueError(
            f"expected a number of pixels or a length such as '30 m', '0.5 km' or '0.01 deg', got {text!r}"
        )
    number, exponent, unit = match.groups()
    value = float(number + (f"e{exponent}" if exponent else ""))
    unit = unit.lower()
    if unit not in ("px", "m", "km", "deg"):
        raise ValueError(f"unknown unit {unit!r} in {text!r}: use px, m, km or deg")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"a length must be a finite number > 0, got {text!r}")
    return Length(value, unit)  # type: ignore[arg-type]


def _pixels(length: Length, grid: Grid) -> tuple[float, float]:
    """``length`` in pixels along (x, y)."""
    if length.unit == "px":
        return (length.value, length.value)
    crs = grid.crs
    if crs is None:
        raise GridError(f"the scene has no CRS, so {length} cannot be converted to pixels: give it in pixels")
    res_x, res_y = grid.res
    if length.unit == "deg":
        if not crs.is_geographic:
            raise KernelError(
                f"{length} is in degrees but the scene's CRS ({crs_name(crs)}) is projected: "
                "give it in m or km (or pixels)"
            )
        return (length.value / res_x, length.value / res_y)
    if crs.is_geographic:
        raise KernelError(
            f"{length} is in metres but the scene's CRS ({crs_name(crs)}) is geographic (degrees): "
            "give it in deg, e.g. '0.001 deg' (about 110 m of latitude), or in pixels"
        )
    from rasterio.errors import CRSError  # here, so validating a pipeline does not load rasterio

    try:
        _, unit_metres = crs.linear_units_factor
    except CRSError as e:
        raise KernelError(
            f"the scene's CRS ({crs_name(crs)}) has no linear unit, so {length} cannot be converted: "
            "give it in pixels"
        ) from e
    metres = length.value * _METRES[length.unit]
    return (metres / (res_x * unit_metres), metres / (res_y * unit_metres))


def _round(pixels: float, rule: Literal["float", "whole", "odd"]) -> float | int:
    if rule == "float":
        return pixels
    if rule == "whole":
        return math.floor(pixels + 0.5 + _TIE)
    return max(1, 2 * math.floor((pixels - 1) / 2 + 0.5 + _TIE) + 1)


def resolve_length(kernel: str, param: str, length: Length, grid: Grid | None) -> tuple[float | int, str]:
    """The pixel value of a kernel's length parameter on ``grid``, and a note saying how it was found.

    Parameters
    ----------
    kernel : str
        Kernel name (for messages).
    param : str
        ``sigma``, ``radius`` or ``size`` (see :data:`LENGTH_PARAMS`).
    length : Length
        The value as written.
    grid : Grid or None
        The scene's grid; None works only for ``px``.

    Returns
    -------
    (number, str)
        The value to build the kernel with (float for ``sigma``, int otherwise) and a note such as
        ``"gaussian sigma 30 m = 1 px"``.

    Raises
    ------
    KernelError
        The unit does not suit the CRS, or non-square pixels give different sizes along x and y.
    GridError
        The scene has no CRS.
    """
    rule = LENGTH_PARAMS[param]
    if length.unit == "px":  # as written (the kernel checks it): "3 px" is the same as 3
        value = length.value if rule == "float" or not length.value.is_integer() else int(length.value)
        return value, f"{kernel} {param} {length}"
    if grid is None:
        raise KernelError(f"kernel {kernel!r}: {param} {length} is in map units and needs a scene")
    else:
        try:
            px, py = _pixels(length, grid)
        except KernelError as e:
            raise KernelError(f"kernel {kernel!r}: {param} {e}") from e
        except GridError as e:
            raise GridError(f"kernel {kernel!r}: {param}: {e}") from e
    if not (math.isfinite(px) and math.isfinite(py)):
        raise KernelError(
            f"kernel {kernel!r}: {param} {length} is more pixels than a float holds: use a smaller one"
        )
    vx, vy = _round(px, rule), _round(py, rule)
    mean = ""
    if vx != vy:
        if rule == "float" and math.isclose(px, py, rel_tol=_SQUARE_SIGMA):
            vx = (px + py) / 2
            mean = " (mean of x and y)"
        else:
            res = f"{grid.res[0]:g} x {grid.res[1]:g}" if grid is not None else "?"
            raise KernelError(
                f"kernel {kernel!r}: {param} {length} is {vx:g} px along x but {vy:g} px along y "
                f"(pixels {res} are not square) and the kernel has one {param} for both axes: "
                f"give {param} in pixels"
            )
    return vx, f"{kernel} {param} {length} = {vx:.4g} px{mean}"
