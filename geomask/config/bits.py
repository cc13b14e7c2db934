"""The ``bitfield`` section of a raster mask: a multi-bit field of a quality layer.

``mask: {raster: QA_PIXEL.tif, bitfield: {start: 8, length: 2, values: [3]}}`` selects Landsat's
high-confidence clouds (bits 8-9 equal to 3). Single flags use ``bits: [3, 4]`` on the raster mask
itself (see :class:`~geomask.config.models.RasterMask`); both build a
:class:`~geomask.masks.bits.BitSelection`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from geomask.errors import At

__all__ = ["BitIndex", "Bitfield"]

BitIndex = Annotated[int, Field(ge=0, le=63)]
"""A bit position: 0 (least significant) .. 63."""


class Bitfield(BaseModel):
    """The ``length``-bit field from bit ``start`` (0 = least significant); selects its ``values``."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, validate_default=False)

    start: BitIndex = Field(description="first (least significant) bit of the field, 0..63")
    length: Annotated[int, Field(ge=1, le=64)] = Field(description="number of bits in the field")
    values: list[Annotated[int, Field(ge=0)]] = Field(
        min_length=1, description="field values to select, e.g. [3] for Landsat's high cloud confidence"
    )

    @model_validator(mode="after")
    def _check(self) -> Bitfield:
        if self.start + self.length > 64:
            raise At(("length",), f"bits {self.start}..{self.start + self.length - 1} go beyond bit 63")
        top = (1 << self.length) - 1
        bad = [v for v in self.values if v > top]
        if bad:
            raise At(("values",), f"value {bad[0]} does not fit in {self.length} bits (0..{top})")
        return self

    def as_tuple(self) -> tuple[int, int, tuple[int, ...]]:
        """``(start, length, values)`` for :class:`~geomask.masks.bits.BitSelection`."""
        return self.start, self.length, tuple(self.values)
