"""geomask:filterinclasses: apply a kernel to a raster only where a class raster has given values."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterBand,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from .base import GeomaskAlgorithm


class FilterInClasses(GeomaskAlgorithm):
    """Applies a kernel to the raster only where the class raster (a segmentation or land-cover map,
    on any grid: it is resampled to the input's grid by nearest neighbour) has one of VALUES;
    every other pixel is copied bit for bit. With "Only pixels inside the mask contribute",
    classes do not blur or sharpen into each other. Both rasters must be files."""

    def name(self) -> str:
        return "filterinclasses"

    def displayName(self) -> str:
        return "Filter inside classes"

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Input raster"))
        self.addParameter(QgsProcessingParameterRasterLayer("CLASSES", "Class raster"))
        self.addParameter(
            QgsProcessingParameterBand("BAND", "Class band (default 1)", 1, "CLASSES", optional=True)
        )
        self.addParameter(QgsProcessingParameterString("VALUES", "Class values to filter (e.g. 3,4)"))
        self.add_kernel_parameters(default="sharpen")
        self.add_common_parameters()

    def processAlgorithm(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        text = self.parameterAsString(parameters, "VALUES", context)
        try:
            values = [_number(v) for v in text.replace(";", ",").split(",") if v.strip()]
        except ValueError as e:
            raise QgsProcessingException(f"VALUES: '{text}' is not a list of class values such as 3,4") from e
        mask: dict[str, Any] = {"raster": self.raster_path(parameters, "CLASSES", context), "values": values}
        band = self.parameterAsInt(parameters, "BAND", context) or 1
        if band != 1:
            mask["band"] = band
        pipeline: dict[str, Any] = {"input": self.raster_path(parameters, "INPUT", context)}
        bands = self.bands(parameters, context)
        if bands is not None:
            pipeline["bands"] = bands
        pipeline["mask"] = mask
        pipeline.update(self.step(parameters, context))
        pipeline["output"] = self.output(parameters, context)
        self.run_pipeline(pipeline, feedback)
        return {"OUTPUT": pipeline["output"]["path"]}


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() else value
