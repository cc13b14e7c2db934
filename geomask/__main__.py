"""``python -m geomask``: the same as the ``geomask`` command (used by the QGIS provider)."""

from geomask.cli import main

main()
