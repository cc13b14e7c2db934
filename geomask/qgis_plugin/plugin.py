"""The plugin object: registers the geomask Processing provider with QGIS and removes it on unload."""

from __future__ import annotations

from typing import Any

from qgis.core import QgsApplication

from .provider import GeomaskProvider


class GeomaskPlugin:
    """Adds the "geomask" provider to the Processing registry (GUI and qgis_process alike)."""

    def __init__(self, iface: Any) -> None:
        self.iface = iface
        self.provider: GeomaskProvider | None = None

    def initProcessing(self) -> None:
        """Register the provider (called by QGIS, by qgis_process too, before initGui)."""
        if self.provider is None:
            self.provider = GeomaskProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:
        """Nothing but the provider: the algorithms appear in the Processing toolbox."""
        self.initProcessing()

    def unload(self) -> None:
        """Remove the provider."""
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
