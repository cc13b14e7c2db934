"""geomask:filterinpolygons: apply a kernel to a raster only inside the polygons of a vector layer."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from .base import VECTOR_FORMATS, GeomaskAlgorithm, absolute


class FilterInPolygons(GeomaskAlgorithm):
    """Applies a kernel (gaussian, median, sharpen ... see `geomask kernels`) to the raster only
    inside the polygons of the mask layer; every pixel outside them is copied bit for bit.

    The mask may be any vector layer: a file layer is read where it is (WHERE is an OGR SQL filter
    on its attributes, e.g. landcover = 'forest'); a memory or database layer, or "Selected
    features only", is first written to a temporary GeoPackage. The raster must be a file.
    The run is `geomask run` on a pipeline with these keys (see the geomask documentation)."""

    def name(self) -> str:
        return "filterinpolygons"

    def displayName(self) -> str:
        return "Filter inside polygons"

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Input raster"))
        self.addParameter(
            QgsProcessingParameterFeatureSource("MASK", "Mask polygons", [QgsProcessing.TypeVectorPolygon])
        )
        self.addParameter(
            QgsProcessingParameterString(
                "WHERE", "WHERE: OGR SQL filter on the polygons' attributes", optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                "ALL_TOUCHED", "Select every pixel a polygon touches (else: pixel centres)", False
            )
        )
        self.add_kernel_parameters()
        self.add_common_parameters()

    def processAlgorithm(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        path, layer = self.parameterAsCompatibleSourceLayerPathAndLayerName(
            parameters, "MASK", context, VECTOR_FORMATS, "gpkg", feedback
        )
        mask: dict[str, Any] = {"vector": absolute(path)}
        if layer:
            mask["layer"] = layer
        where = self.parameterAsString(parameters, "WHERE", context).strip()
        if where:
            mask["where"] = where
        if self.parameterAsBoolean(parameters, "ALL_TOUCHED", context):
            mask["all_touched"] = True
        pipeline: dict[str, Any] = {"input": self.raster_path(parameters, "INPUT", context)}
        bands = self.bands(parameters, context)
        if bands is not None:
            pipeline["bands"] = bands
        pipeline["mask"] = mask
        pipeline.update(self.step(parameters, context))
        pipeline["output"] = self.output(parameters, context)
        self.run_pipeline(pipeline, feedback)
        return {"OUTPUT": pipeline["output"]["path"]}
