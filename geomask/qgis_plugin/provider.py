"""The "geomask" Processing provider: its id, name and algorithms."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider

from .algorithms import algorithms
from .runner import version


class GeomaskProvider(QgsProcessingProvider):
    """Provider id ``geomask``: algorithm ids are ``geomask:<name>``."""

    def id(self) -> str:
        return "geomask"

    def name(self) -> str:
        return "geomask"

    def longName(self) -> str:
        found = version()
        return f"geomask ({found})" if found else "geomask"

    def supportedOutputRasterLayerExtensions(self) -> list[str]:
        return ["tif"]

    def loadAlgorithms(self) -> None:
        for algorithm in algorithms():
            self.addAlgorithm(algorithm)
