"""The geomask QGIS plugin: a Processing provider whose algorithms run the ``geomask`` command line.

This package is loaded by QGIS's own Python, never by geomask's: it imports only ``qgis`` and the
standard library. ``geomask qgis install`` copies it into a QGIS profile's plugin folder as
``geomask_provider`` and writes ``geomask.json`` beside it (the command that runs geomask).
"""

from __future__ import annotations

from typing import Any


def classFactory(iface: Any) -> Any:
    """Return the plugin object QGIS loads (``iface`` is the QGIS interface, None in qgis_process)."""
    from .plugin import GeomaskPlugin

    return GeomaskPlugin(iface)
