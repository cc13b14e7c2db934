"""The raster grid: CRS, affine transform and shape, as one frozen value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from affine import Affine
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from geomask.errors import GridError

if TYPE_CHECKING:
    from rasterio.crs import CRS

__all__ = ["Grid"]


@dataclass(frozen=True)
class Grid:
    """A georeferenced pixel grid.

    Attributes
    ----------
    crs : rasterio.crs.CRS or None
        Coordinate reference system of the grid; ``None`` means pixel space only.
    transform : affine.Affine
        Maps (col, row) pixel corners to (x, y) in ``crs`` units.
    height, width : int
        Number of rows and columns (pixels).
    """

    crs: CRS | None
    transform: Affine
    height: int
    width: int

    def __post_init__(self) -> None:
        if self.height < 1 or self.width < 1:
            raise GridError(f"grid must have at least one pixel, got {self.height}x{self.width}")

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return (self.height, self.width)

    @property
    def is_rectilinear(self) -> bool:
        """True when the transform has no rotation or shear terms."""
        return self.transform.b == 0 and self.transform.d == 0

    @property
    def res(self) -> tuple[float, float]:
        """Pixel size (x, y) in CRS units, both positive (rectilinear grids)."""
        return (abs(self.transform.a), abs(self.transform.e))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the grid's outer pixel edges, in CRS units."""
        xs, ys = [], []
        for col, row in ((0, 0), (self.width, 0), (0, self.height), (self.width, self.height)):
            x, y = self.transform @ (col, row)
            xs.append(x)
            ys.append(y)
        return (min(xs), min(ys), max(xs), max(ys))

    def window_transform(self, window: Window) -> Affine:
        """The transform of ``window``'s top-left pixel corner."""
        return window_transform(window, self.transform)

    def window_grid(self, window: Window) -> Grid:
        """The sub-grid covered by ``window`` (same CRS)."""
        return Grid(self.crs, self.window_transform(window), int(window.height), int(window.width))
