"""The ``fill`` option of a step: fill nodata pixels from their valid neighbours (see geomask.fill)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from geomask.errors import At

__all__ = ["FillConfig", "fill_problems"]


class FillConfig(BaseModel):
    """``fill: {nodata: true, min_valid: N}``: the step changes only nodata pixels of its mask, each
    one with at least ``min_valid`` valid neighbours under the kernel taking the kernel's value."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, validate_default=False)

    nodata: Literal[True] = Field(description="fill nodata (and NaN) pixels (true; the only kind of fill)")
    min_valid: Annotated[int, Field(ge=1)] = Field(
        1, description="fewest valid cells under the kernel's footprint a pixel needs to be filled"
    )


def fill_problems(fill: FillConfig | None, kernels_by: object) -> list[At]:
    """Problems of a step's ``fill`` with its other keys (relative to the step)."""
    if fill is not None and kernels_by is not None:
        return [At(("fill",), "fill works with one kernel: use kernel, not kernels_by, in a fill step")]
    return []
