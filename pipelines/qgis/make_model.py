"""Write geomask_model.model3, the QGIS model-builder example, with QGIS's own Python.

Run it with the Python QGIS uses (e.g. Debian: ``QT_QPA_PLATFORM=offscreen /usr/bin/python3
pipelines/qgis/make_model.py``) after ``geomask qgis install``; it loads the installed plugin
from ``$QGIS_CUSTOM_CONFIG_PATH`` (or the default home) profile ``default``.

The model: a raster, polygons and a class raster in; geomask:filterinpolygons blurs the raster
inside the polygons (gaussian, sigma 1), then geomask:filterinclasses sharpens classes 3 and 4 of
the class raster in that result; the sharpened raster is the model's output "filtered".
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from qgis.core import (
    QgsApplication,
    QgsProcessing,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorLayer,
)
from qgis.PyQt.QtCore import QPointF


def main() -> None:
    home = Path(os.environ.get("QGIS_CUSTOM_CONFIG_PATH") or Path.home() / ".local/share/QGIS/QGIS3")
    sys.path.insert(0, str(home / "profiles" / "default" / "python" / "plugins"))
    app = QgsApplication([], False)
    app.initQgis()
    from geomask_provider.provider import GeomaskProvider

    provider = GeomaskProvider()  # keep a reference: the registry does not own Python providers
    QgsApplication.processingRegistry().addProvider(provider)

    model = QgsProcessingModelAlgorithm("geomask blur then sharpen", "geomask")
    inputs = [
        (QgsProcessingParameterRasterLayer("raster", "Raster"), 50),
        (QgsProcessingParameterVectorLayer("polygons", "Polygons", [QgsProcessing.TypeVectorPolygon]), 150),
        (QgsProcessingParameterRasterLayer("classes", "Class raster"), 250),
    ]
    for parameter, y in inputs:
        component = QgsProcessingModelParameter(parameter.name())
        component.setPosition(QPointF(120, y))
        model.addModelParameter(parameter, component)

    def child(algorithm: str, child_id: str, x: float, values: dict) -> QgsProcessingModelChildAlgorithm:
        step = QgsProcessingModelChildAlgorithm(algorithm)
        step.setChildId(child_id)
        step.setDescription(child_id)
        step.setPosition(QPointF(x, 150))
        for name, source in values.items():
            step.addParameterSources(name, [source])
        return step

    static = QgsProcessingModelChildParameterSource.fromStaticValue
    model_input = QgsProcessingModelChildParameterSource.fromModelParameter
    blur = child(
        "geomask:filterinpolygons",
        "blur",
        400,
        {
            "INPUT": model_input("raster"),
            "MASK": model_input("polygons"),
            "KERNEL": static("gaussian"),
            "SIGMA": static(1.0),
            "FORMAT": static("GTiff"),
        },
    )
    sharpen = child(
        "geomask:filterinclasses",
        "sharpen",
        700,
        {
            "INPUT": QgsProcessingModelChildParameterSource.fromChildOutput("blur", "OUTPUT"),
            "CLASSES": model_input("classes"),
            "VALUES": static("3,4"),
            "KERNEL": static("sharpen"),
            "AMOUNT": static(0.5),
            "SUPPORT_TARGET": static(True),
            "BOUNDARY": static("nearest"),
        },
    )
    output = QgsProcessingModelOutput("filtered", "Filtered")
    output.setChildId("sharpen")
    output.setChildOutputName("OUTPUT")
    sharpen.setModelOutputs({"filtered": output})
    model.addChildAlgorithm(blur)
    model.addChildAlgorithm(sharpen)
    model.updateDestinationParameters()
    target = Path(__file__).with_name("geomask_model.model3")
    if not model.toFile(str(target)):
        raise SystemExit(f"cannot write {target}")
    print(target)
    app.exitQgis()


if __name__ == "__main__":
    main()
