"""Warnings geomask emits (a user can filter them by class)."""

from __future__ import annotations

__all__ = ["GeomaskWarning", "NoOverlapWarning", "RepairedGeometryWarning", "WorkersCappedWarning"]


class GeomaskWarning(UserWarning):
    """Root of geomask's warnings."""


class NoOverlapWarning(GeomaskWarning):
    """A mask source does not overlap the scene: the scene passes through unchanged."""


class RepairedGeometryWarning(GeomaskWarning):
    """Invalid geometries were repaired with ``shapely.make_valid``."""


class WorkersCappedWarning(GeomaskWarning):
    """More workers were asked for than the machine can hold: fewer were started (the pixels are the same)."""
