"""geomask: apply kernels only inside regions of interest of GeoTIFF scenes."""

from __future__ import annotations

__version__ = "0.1.0"
