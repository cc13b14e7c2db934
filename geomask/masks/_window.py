"""Window checks shared by the mask renderers."""

from __future__ import annotations

from rasterio.windows import Window

from geomask.errors import MaskError

__all__ = ["check_window"]


def check_window(window: Window, shape: tuple[int, int], label: str) -> tuple[int, int, int, int]:
    """``(row_off, col_off, height, width)`` of ``window`` as ints.

    Raises :class:`~geomask.errors.MaskError` naming ``label`` when the window has fractional offsets
    or sizes or does not lie inside a grid of ``shape`` (rows, cols).
    """
    values = (window.row_off, window.col_off, window.height, window.width)
    row0, col0, height, width = (int(value) for value in values)
    rows, cols = shape
    if (
        (row0, col0, height, width) != values
        or min(row0, col0, height, width) < 0
        or row0 + height > rows
        or col0 + width > cols
    ):
        raise MaskError(f"{window} is not an integer window inside the {rows}x{cols} grid of {label}")
    return row0, col0, height, width
