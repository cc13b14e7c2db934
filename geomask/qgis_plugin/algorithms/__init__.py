"""The geomask algorithms; their ids (``geomask:<name>``) are stable, models refer to them."""

from __future__ import annotations

from qgis.core import QgsProcessingAlgorithm

from .filter_in_classes import FilterInClasses
from .filter_in_polygons import FilterInPolygons
from .run_pipeline import RunPipeline


def algorithms() -> list[QgsProcessingAlgorithm]:
    """One instance of each algorithm, for the provider."""
    return [FilterInPolygons(), FilterInClasses(), RunPipeline()]
