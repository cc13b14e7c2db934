"""Helpers shared by the mask source tests: whole-grid windows and tiled renders."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window

from geomask.grid import Grid
from geomask.masks import BoundMask

# Window sizes every source is rendered with: single rows and columns, sizes that do not divide the test
# grids, and windows larger than the grid (cut to it). 1-pixel windows: :func:`pixel_by_pixel`.
WINDOW_SIZES: tuple[tuple[int, int], ...] = ((1, 200), (200, 1), (7, 13), (16, 16), (33, 5), (1000, 1000))


def full(grid: Grid) -> Window:
    """The window covering the whole grid."""
    return Window(0, 0, grid.width, grid.height)


def tiled(
    mask: BoundMask, shape: tuple[int, int], size: tuple[int, int], phase: tuple[int, int] = (0, 0)
) -> NDArray[np.bool_]:
    """The mask assembled from windows of ``size``, the first row/column of windows cut by ``phase``.

    Checks every window's shape, dtype and contiguity, and that every pixel is rendered exactly once.
    """
    height, width = shape
    out = np.zeros(shape, dtype=np.uint8)
    rows = sorted({0, *range(phase[0] % size[0] or size[0], height, size[0])})
    cols = sorted({0, *range(phase[1] % size[1] or size[1], width, size[1])})
    for r0, r1 in zip(rows, [*rows[1:], height], strict=True):
        for c0, c1 in zip(cols, [*cols[1:], width], strict=True):
            block = mask.render(Window(c0, r0, c1 - c0, r1 - r0))
            assert block.shape == (r1 - r0, c1 - c0)
            assert block.dtype == bool
            assert block.flags.c_contiguous
            out[r0:r1, c0:c1] += 1 + block.astype(np.uint8)
    assert (out >= 1).all() and (out <= 2).all()
    return out == 2


def window_of(grid: Grid, row: int, col: int, height: int, width: int) -> Window:
    """A window at (row, col) of at most ``height`` x ``width`` pixels, cut to the grid."""
    row, col = min(row, grid.height - 1), min(col, grid.width - 1)
    return Window(col, row, min(width, grid.width - col), min(height, grid.height - row))


def pixel_by_pixel(mask: BoundMask, window: Window) -> NDArray[np.bool_]:
    """``window`` of the mask assembled from 1 x 1 windows (keep it small: one render per pixel)."""
    r0, c0, height, width = int(window.row_off), int(window.col_off), int(window.height), int(window.width)
    out = np.zeros((height, width), dtype=bool)
    for r in range(height):
        for c in range(width):
            out[r, c] = mask.render(Window(c0 + c, r0 + r, 1, 1))[0, 0]
    return out
