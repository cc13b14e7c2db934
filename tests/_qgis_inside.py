"""Run geomask's QGIS algorithms inside QGIS's own Python (not pytest's): tests/test_qgis.py starts it.

Usage: python3 _qgis_inside.py PLUGINS_FOLDER SCENE BIG_SCENE OUT_FOLDER (QGIS's python3)

Prints one JSON object per case on stdout:
* ``memory``: filterinpolygons with a memory polygon layer (written to a temporary GeoPackage);
* ``cancel``: filterinpolygons on BIG_SCENE with a feedback that cancels once progress is above 0;
* ``not_a_file``: a raster layer that is not a file (the virtual raster provider) is refused.
"""

from __future__ import annotations

import json
import os
import sys
import time

from qgis.core import (
    QgsApplication,
    QgsFeature,
    QgsGeometry,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsRasterLayer,
    QgsVectorLayer,
)


class Recorder(QgsProcessingFeedback):
    """Keeps the errors and the highest progress; cancels after progress > 0 when asked."""

    def __init__(self, cancel: bool = False) -> None:
        super().__init__()
        self.cancel_on_progress = cancel
        self.errors: list[str] = []
        self.top = 0.0
        self.cancelled_at: float | None = None

    def setProgress(self, progress: float) -> None:
        super().setProgress(progress)
        self.top = max(self.top, progress)
        if self.cancel_on_progress and progress > 0 and self.cancelled_at is None:
            self.cancelled_at = time.monotonic()
            self.cancel()

    def reportError(self, error: str, fatalError: bool = False) -> None:
        self.errors.append(error)


def polygon_layer(raster: QgsRasterLayer, shrink: float) -> QgsVectorLayer:
    """A memory layer with one polygon: the raster's extent shrunk by ``shrink`` (map units)."""
    layer = QgsVectorLayer(f"Polygon?crs={raster.crs().authid()}", "roi", "memory")
    feature = QgsFeature()
    extent = raster.extent()
    extent.grow(-shrink)
    feature.setGeometry(QgsGeometry.fromRect(extent))
    layer.dataProvider().addFeatures([feature])
    return layer


def run(algorithm_id: str, parameters: dict, feedback: Recorder, context: QgsProcessingContext) -> dict:
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(algorithm_id)
    started = time.monotonic()
    results, ok = algorithm.run(parameters, context, feedback)
    return {
        "ok": ok,
        "results": {k: str(v) for k, v in (results or {}).items()},
        "errors": feedback.errors,
        "top_progress": feedback.top,
        "seconds_after_cancel": None
        if feedback.cancelled_at is None
        else time.monotonic() - feedback.cancelled_at,
        "seconds": time.monotonic() - started,
    }


def main() -> None:
    plugins, scene, big_scene, out = sys.argv[1:5]
    sys.path.insert(0, plugins)
    app = QgsApplication([], False)
    app.initQgis()
    from geomask_provider.provider import GeomaskProvider

    provider = GeomaskProvider()  # keep a reference: the registry does not own Python providers
    QgsApplication.processingRegistry().addProvider(provider)
    context = QgsProcessingContext()

    raster = QgsRasterLayer(scene, "scene")
    roi = polygon_layer(raster, 3000)
    context.temporaryLayerStore().addMapLayer(roi)
    parameters = {"INPUT": scene, "MASK": roi.id(), "KERNEL": "gaussian", "OUTPUT": f"{out}/memory.tif"}
    print(json.dumps({"case": "memory", **run("geomask:filterinpolygons", parameters, Recorder(), context)}))

    big = QgsRasterLayer(big_scene, "big")
    everywhere = polygon_layer(big, 0)
    context.temporaryLayerStore().addMapLayer(everywhere)
    parameters = {
        "INPUT": big_scene,
        "MASK": everywhere.id(),
        "KERNEL": "median",
        "SIZE": 9,
        "OUTPUT": f"{out}/cancelled/big.tif",
    }
    result = run("geomask:filterinpolygons", parameters, Recorder(cancel=True), context)
    print(json.dumps({"case": "cancel", **result}))

    virtual = QgsRasterLayer(
        f"?crs={raster.crs().authid()}&extent=0,0,10,10&width=10&height=10&formula=1",
        "virtual",
        "virtualraster",
    )
    context.temporaryLayerStore().addMapLayer(virtual)
    parameters = {"INPUT": virtual.id(), "MASK": roi.id(), "OUTPUT": f"{out}/virtual.tif"}
    print(
        json.dumps({"case": "not_a_file", **run("geomask:filterinpolygons", parameters, Recorder(), context)})
    )
    # QGIS 3.22's exitQgis() can crash on the Python objects still alive: end without teardown.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
