"""Mask sources: what selects the pixels a kernel is applied to."""

from __future__ import annotations

from geomask.masks.algebra import AllSource, AnySource, GrowSource, NotSource, ShrinkSource
from geomask.masks.base import ArrayMask, ArraySource, BoundMask, FullMask, MaskContext, MaskSource
from geomask.masks.bbox import BboxSource
from geomask.masks.expression import ExpressionSource
from geomask.masks.raster import RasterSource
from geomask.masks.vector import VectorSource

__all__ = [
    "AllSource",
    "AnySource",
    "ArrayMask",
    "ArraySource",
    "BboxSource",
    "BoundMask",
    "ExpressionSource",
    "FullMask",
    "GrowSource",
    "MaskContext",
    "MaskSource",
    "NotSource",
    "RasterSource",
    "ShrinkSource",
    "VectorSource",
]
