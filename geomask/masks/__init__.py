"""Mask sources: what selects the pixels a kernel is applied to."""

from __future__ import annotations

from geomask.masks.algebra import AllSource, AnySource, GrowSource, NotSource, ShrinkSource
from geomask.masks.base import (
    ArrayMask,
    ArraySource,
    BoundMask,
    FullMask,
    FullSource,
    MaskContext,
    MaskSource,
)
from geomask.masks.bbox import BboxSource
from geomask.masks.expression import ExpressionSource
from geomask.masks.kmeans import KMeansSource
from geomask.masks.raster import RasterSource
from geomask.masks.vector import VectorSource
from geomask.masks.write import write_mask

__all__ = [
    "AllSource",
    "AnySource",
    "ArrayMask",
    "ArraySource",
    "BboxSource",
    "BoundMask",
    "ExpressionSource",
    "FullMask",
    "FullSource",
    "GrowSource",
    "KMeansSource",
    "MaskContext",
    "MaskSource",
    "NotSource",
    "RasterSource",
    "ShrinkSource",
    "VectorSource",
    "write_mask",
]
