"""Bit-flag selections of integer rasters (quality layers such as Landsat's QA_PIXEL).

A quality layer packs several flags in one integer per pixel: Landsat Collection 2 QA_PIXEL has bit 3
cloud and bit 4 cloud shadow (single bits), and bits 8-9 cloud confidence (a 2-bit field: 0 none,
1 low, 2 medium, 3 high). :class:`BitSelection` selects pixels by either form:

* ``bits=(3, 4)``: any listed bit set (bit 0 is the least significant);
* ``bitfield=(8, 2, (3,))``: the unsigned value of bits ``start .. start + length - 1`` is one of
  ``values``.

Values are tested on their two's-complement bit pattern, so a signed raster's bits mean what they mean
in its file. Float rasters carry no bits and are refused (:meth:`BitSelection.dtype_problem`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geomask.errors import MaskError
from geomask.messages import plain

__all__ = ["MAX_BITS", "BitSelection"]

MAX_BITS = 64
"""The widest integer a raster holds (int64/uint64)."""


@dataclass(frozen=True)
class BitSelection:
    """Pixels with any of ``bits`` set, or whose bit field ``bitfield`` holds one of its values.

    Parameters
    ----------
    bits : sequence of int or None
        Bit positions, 0 = least significant; a pixel is selected when any of them is set.
    bitfield : (start, length, values) or None
        The field of ``length`` bits starting at bit ``start``; a pixel is selected when the field's
        unsigned value is one of ``values`` (each ``0 <= value < 2**length``).

    Raises
    ------
    MaskError
        On construction: neither or both forms, an empty ``bits``/``values``, a bit outside 0..63, a
        field that does not fit in 64 bits, or a value the field cannot hold.
    """

    bits: tuple[int, ...] | None = None
    bitfield: tuple[int, int, tuple[int, ...]] | None = None

    def __post_init__(self) -> None:
        if (self.bits is None) == (self.bitfield is None):
            raise MaskError("give exactly one of bits: [..] or bitfield: {start, length, values}")
        if self.bits is not None:
            bits = _ints(self.bits, "bits")
            if not bits:
                raise MaskError("bits is empty; list the bit positions to test (0 = least significant)")
            bad = [b for b in bits if not 0 <= b < MAX_BITS]
            if bad:
                raise MaskError(f"bit {bad[0]} does not exist; bits are 0 (least significant) .. 63")
            object.__setattr__(self, "bits", tuple(sorted(set(bits))))
        if self.bitfield is not None:
            try:
                start, length, values = self.bitfield
            except (TypeError, ValueError) as e:
                raise MaskError(
                    f"bitfield must be (start, length, values), got {plain(self.bitfield)}"
                ) from e
            (start,), (length,) = _ints([start], "bitfield start"), _ints([length], "bitfield length")
            values = _ints(values, "bitfield values")
            if start < 0 or length < 1 or start + length > MAX_BITS:
                raise MaskError(
                    f"bitfield start {start}, length {length} does not fit in bits 0..63; "
                    "give start >= 0, length >= 1, start + length <= 64"
                )
            if not values:
                raise MaskError("bitfield values is empty; list the field values to select")
            bad = [v for v in values if not 0 <= v < 1 << length]
            if bad:
                raise MaskError(
                    f"bitfield value {bad[0]} does not fit in {length} bit{'s' * (length != 1)} "
                    f"(0..{(1 << length) - 1})"
                )
            object.__setattr__(self, "bitfield", (start, length, tuple(sorted(set(values)))))

    @property
    def highest_bit(self) -> int:
        """The most significant bit position the selection reads."""
        if self.bits is not None:
            return max(self.bits)
        start, length, _ = self.bitfield or (0, 1, ())
        return start + length - 1

    def describe(self) -> str:
        """``bits=[3, 4]`` or ``bitfield=8+2 in [3]``."""
        if self.bits is not None:
            return "bits=[" + ", ".join(str(b) for b in self.bits) + "]"
        start, length, values = self.bitfield or (0, 1, ())
        return f"bitfield={start}+{length} in [" + ", ".join(str(v) for v in values) + "]"

    def dtype_problem(self, dtype: Any) -> str | None:
        """Why this selection cannot read a raster of ``dtype`` (a float, or bits beyond its width)."""
        kind = np.dtype(dtype)
        if kind.kind not in "iub":
            return f"a {kind.name} raster has no bit flags; bits and bitfield need an integer raster"
        width = 8 * kind.itemsize
        if self.highest_bit >= width:
            return (
                f"bit {self.highest_bit} is beyond a {kind.name} raster's {width} bits "
                f"(0..{width - 1}); check the bit positions against the product's QA layout"
            )
        return None

    def select(self, values: NDArray[Any]) -> NDArray[np.bool_]:
        """The selected pixels of an integer array (any shape); its bits as stored (two's complement).

        Raises
        ------
        MaskError
            ``values`` is not an integer array, or the selection reads bits beyond its width.
        """
        problem = self.dtype_problem(values.dtype)
        if problem is not None:
            raise MaskError(problem)
        unsigned = values.view(np.dtype(f"u{values.dtype.itemsize}")).astype(np.uint64, copy=False)
        if self.bits is not None:
            flags = np.uint64(sum(1 << b for b in self.bits))
            return (unsigned & flags) != 0
        start, length, wanted = self.bitfield or (0, 1, ())
        field = (unsigned >> np.uint64(start)) & np.uint64((1 << length) - 1)
        return np.isin(field, np.asarray(wanted, dtype=np.uint64))


def _ints(values: Sequence[Any] | Any, what: str) -> list[int]:
    """``values`` as a list of Python ints (bools and non-integral numbers refused)."""
    try:
        items = list(values)
    except TypeError as e:
        raise MaskError(f"{what} must be a list of integers, got {plain(values)}") from e
    out = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, np.integer)):
            raise MaskError(f"{what} must be integers, got {plain(item)}")
        out.append(int(item))
    return out
