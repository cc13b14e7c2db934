"""What the geomask algorithms share: layers as files, kernel parameters, the pipeline file, the run.

An algorithm builds a pipeline (a dict, keys as in geomask's YAML), writes it as
``<tmp>/<algorithm name>.yaml`` (JSON text, which is YAML) and runs ``geomask run`` on it, so the
output carries the provenance tag ``GEOMASK_PIPELINE=<algorithm name>``.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
    QgsProcessingUtils,
    QgsProviderRegistry,
)

from ..runner import kernels, run_geomask

OPS = ["convolve", "correlate"]
BOUNDARIES = ["reflect", "mirror", "nearest", "wrap", "constant", "leave"]
FORMATS = ["GTiff", "COG"]
# QGIS parameter -> (kernel key, integer?)
KERNEL_PARAMETERS = {
    "SIZE": ("size", True),
    "SIGMA": ("sigma", False),
    "RADIUS": ("radius", True),
    "AMOUNT": ("amount", False),
}
VECTOR_FORMATS = ["gpkg", "shp", "geojson", "fgb", "sqlite", "gml", "kml", "tab", "mif"]


def absolute(path: str) -> str:
    """``path`` made absolute (from the working directory, as QGIS reads it); GDAL virtual paths
    (/vsicurl/...) and URLs unchanged. The temporary pipeline is elsewhere, and geomask resolves
    relative paths from the pipeline's folder."""
    if not path or path.startswith("/vsi") or "://" in path:
        return path
    return os.path.abspath(path)


def _enum(name: str, description: str, options: list[str], default: str) -> QgsProcessingParameterEnum:
    return QgsProcessingParameterEnum(
        name, description, options=options, defaultValue=default, usesStaticStrings=True
    )


class GeomaskAlgorithm(QgsProcessingAlgorithm):
    """Base of the geomask algorithms (subclasses give ``name``, parameters and ``pipeline``)."""

    def createInstance(self) -> QgsProcessingAlgorithm:
        return type(self)()

    def groupId(self) -> str:
        return ""

    def group(self) -> str:
        return ""

    # -- parameters ------------------------------------------------------------------------------
    def add_kernel_parameters(self, default: str = "gaussian") -> None:
        """KERNEL (a name of `geomask kernels`), its numbers, OP, BOUNDARY, CVAL, NORMALIZE."""
        names = sorted(kernels())
        self.addParameter(_enum("KERNEL", "Kernel (see `geomask kernels`)", names, default))
        texts = {
            "SIZE": "Size: odd side length in pixels (box, median, minimum, maximum)",
            "SIGMA": "Sigma: standard deviation in pixels (gaussian)",
            "RADIUS": "Radius in pixels (gaussian half-width, disk)",
            "AMOUNT": "Amount: strength (sharpen)",
        }
        for name, (_key, integer) in KERNEL_PARAMETERS.items():
            kind = QgsProcessingParameterNumber.Integer if integer else QgsProcessingParameterNumber.Double
            self.addParameter(QgsProcessingParameterNumber(name, texts[name], kind, optional=True))
        self.addParameter(_enum("OP", "Operation", OPS, "convolve"))
        self.addParameter(_enum("BOUNDARY", "Boundary: values beyond the scene edge", BOUNDARIES, "reflect"))
        cval = QgsProcessingParameterNumber(
            "CVAL", "Value beyond the edge (boundary: constant)", QgsProcessingParameterNumber.Double, 0.0
        )
        cval.setFlags(cval.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(cval)
        normalize = QgsProcessingParameterBoolean(
            "NORMALIZE", "Renormalise the kernel over valid neighbours", defaultValue=True
        )
        normalize.setFlags(normalize.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(normalize)

    def add_common_parameters(self) -> None:
        """BANDS, SUPPORT_TARGET, FORMAT and OUTPUT."""
        self.addParameter(
            QgsProcessingParameterString(
                "BANDS", "Bands to filter (1-based, e.g. 1,2,3; empty: all)", optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                "SUPPORT_TARGET", "Only pixels inside the mask contribute as neighbours", defaultValue=False
            )
        )
        self.addParameter(
            _enum("FORMAT", "Output format (COG: cloud-optimised, with overviews)", FORMATS, "GTiff")
        )
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Filtered"))

    # -- values ----------------------------------------------------------------------------------
    def raster_path(self, parameters: dict[str, Any], name: str, context: QgsProcessingContext) -> str:
        """The file (or GDAL path such as /vsicurl/...) of a raster layer parameter; other layers refused."""
        layer = self.parameterAsRasterLayer(parameters, name, context)
        if layer is None:
            raise QgsProcessingException(self.invalidRasterError(parameters, name))
        if layer.providerType() != "gdal":
            raise QgsProcessingException(
                f"{name}: layer '{layer.name()}' is not a raster file (provider {layer.providerType()}): "
                "geomask reads rasters from files; save it first (Export > Save As...) and use the file"
            )
        parts = QgsProviderRegistry.instance().decodeUri("gdal", layer.source())
        return absolute(str(parts.get("path") or layer.source()))

    def enum_text(self, parameters: dict[str, Any], name: str, context: QgsProcessingContext) -> str:
        """The chosen option of an enum parameter, as text (an index is accepted as well)."""
        return self.parameterAsEnumString(parameters, name, context)

    def kernel(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """The pipeline's ``kernel`` mapping: the name and only the numbers given."""
        kernel: dict[str, Any] = {"name": self.enum_text(parameters, "KERNEL", context)}
        for name, (key, integer) in KERNEL_PARAMETERS.items():
            if parameters.get(name) is None or parameters.get(name) == "":
                continue
            if integer:
                kernel[key] = self.parameterAsInt(parameters, name, context)
            else:
                kernel[key] = self.parameterAsDouble(parameters, name, context)
        return kernel

    def step(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """kernel, op, boundary, cval, normalize and support of the pipeline."""
        step: dict[str, Any] = {
            "kernel": self.kernel(parameters, context),
            "op": self.enum_text(parameters, "OP", context),
            "boundary": self.enum_text(parameters, "BOUNDARY", context),
            "cval": self.parameterAsDouble(parameters, "CVAL", context),
            "normalize": self.parameterAsBoolean(parameters, "NORMALIZE", context),
        }
        if self.parameterAsBoolean(parameters, "SUPPORT_TARGET", context):
            step["support"] = "target"
        return step

    def bands(self, parameters: dict[str, Any], context: QgsProcessingContext) -> list[int] | None:
        """The BANDS list (None: every band)."""
        text = self.parameterAsString(parameters, "BANDS", context).strip()
        if not text:
            return None
        try:
            return [int(b) for b in text.replace(";", ",").split(",") if b.strip()]
        except ValueError as e:
            raise QgsProcessingException(
                f"BANDS: '{text}' is not a list of band numbers such as 1,2,3"
            ) from e

    def output(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """The pipeline's ``output`` mapping (the path QGIS chose, the format, always overwritten)."""
        path = absolute(self.parameterAsOutputLayer(parameters, "OUTPUT", context))
        return {"path": path, "format": self.enum_text(parameters, "FORMAT", context)}

    # -- running ---------------------------------------------------------------------------------
    def write_pipeline(self, pipeline: dict[str, Any]) -> str:
        """Write ``pipeline`` as ``<a new temporary folder>/<algorithm name>.yaml``; return its path."""
        folder = tempfile.mkdtemp(prefix="geomask_", dir=QgsProcessingUtils.tempFolder())
        path = os.path.join(folder, f"{self.name()}.yaml")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(pipeline, f, indent=2)
            f.write("\n")
        return path

    def run_pipeline(
        self, pipeline: dict[str, Any], feedback: QgsProcessingFeedback, *arguments: str
    ) -> list[str]:
        """Write ``pipeline`` and run ``geomask run`` on it (``--overwrite``, progress lines)."""
        path = self.write_pipeline(pipeline)
        feedback.pushDebugInfo(f"pipeline {path}:\n{json.dumps(pipeline, indent=2)}")
        return run_geomask(
            ["run", path, "--overwrite", "--progress", "lines", *arguments], feedback, hide=path
        )

    def shortHelpString(self) -> str:
        return self.__doc__ or ""
