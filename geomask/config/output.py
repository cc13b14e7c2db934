"""Field types of the ``output`` section that are not paths: the output data type."""

from __future__ import annotations

from typing import Literal

__all__ = ["OutputDtype"]

OutputDtype = Literal["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"]
"""The data types an output can have (those geomask's kernels compute in, see geomask.dtypes)."""
