"""geomask:runpipeline: run a geomask pipeline file as it is and list its outputs."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingOutputMultipleLayers,
    QgsProcessingOutputRasterLayer,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFile,
    QgsProcessingUtils,
)

from ..runner import run_geomask
from .base import GeomaskAlgorithm, absolute


class RunPipeline(GeomaskAlgorithm):
    """Runs a geomask pipeline file (YAML) as `geomask run PIPELINE [--overwrite]` does: its inputs,
    masks, kernels and outputs are the file's (relative paths resolve against its folder).
    Without "Overwrite", scenes whose output is current are skipped. OUTPUTS lists every output
    file; OUTPUT is the first, for models that chain it."""

    def name(self) -> str:
        return "runpipeline"

    def displayName(self) -> str:
        return "Run pipeline file"

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        self.addParameter(
            QgsProcessingParameterFile(
                "PIPELINE", "Pipeline (YAML)", fileFilter="geomask pipelines (*.yaml *.yml)"
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean("OVERWRITE", "Overwrite: redo every scene", defaultValue=False)
        )
        self.addOutput(QgsProcessingOutputMultipleLayers("OUTPUTS", "Outputs"))
        self.addOutput(QgsProcessingOutputRasterLayer("OUTPUT", "First output"))

    def processAlgorithm(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        pipeline = absolute(self.parameterAsFile(parameters, "PIPELINE", context))
        folder = tempfile.mkdtemp(prefix="geomask_", dir=QgsProcessingUtils.tempFolder())
        report = os.path.join(folder, "report.json")
        arguments = ["run", pipeline, "--progress", "lines", "--report", report]
        if self.parameterAsBoolean(parameters, "OVERWRITE", context):
            arguments.append("--overwrite")
        run_geomask(arguments, feedback)
        with open(report, encoding="utf-8") as f:
            scenes = json.load(f)["scenes"]
        outputs = [s["output"] for s in scenes if s.get("status") in ("done", "skipped") and s.get("output")]
        return {"OUTPUTS": outputs, "OUTPUT": outputs[0] if outputs else None}
