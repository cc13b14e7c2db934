"""Field types of the ``output`` section that are not paths: the output data type and nodata."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from geomask.config._report import show

__all__ = ["OutputDtype", "OutputNodata"]

OutputDtype = Literal["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"]
"""The data types an output can have (those geomask's kernels compute in, see geomask.dtypes)."""


def _output_nodata(value: Any) -> float | Literal["auto", "nan"]:
    if value in ("auto", "nan"):
        return value  # type: ignore[no-any-return]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            raise PydanticCustomError(
                "output_nodata_type", "expected auto, nan or a finite number, got {got}", {"got": show(value)}
            )
        return float(value)
    raise PydanticCustomError(
        "output_nodata_type", "expected auto, nan or a number, got {got}", {"got": show(value)}
    )


OutputNodata = Annotated[
    float | Literal["auto", "nan"],
    PlainValidator(_output_nodata),
    WithJsonSchema({"anyOf": [{"enum": ["auto", "nan"]}, {"type": "number"}]}),
]
"""``output.nodata``: ``auto`` (the input's, as converted), ``nan`` (float outputs) or a number."""
