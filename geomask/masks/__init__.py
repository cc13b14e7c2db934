"""Mask sources: what selects the pixels a kernel is applied to."""

from __future__ import annotations

from geomask.masks.base import ArrayMask, ArraySource, BoundMask, FullMask, MaskContext, MaskSource
from geomask.masks.vector import VectorSource

__all__ = ["ArrayMask", "ArraySource", "BoundMask", "FullMask", "MaskContext", "MaskSource", "VectorSource"]
