"""Tile copy: which output tiles were written, and the others copied from the input.

When the input is a local tiled GeoTIFF whose tiles decode as the output's will (same codec,
predictor, tile size, interleave: :func:`geomask.tiffraw.profile_matches`), the writer may leave
tiles unwritten: they must equal the input's. The output is then created sparse (``SPARSE_OK``)
and, once closed, its unwritten tiles get the input's compressed bytes (:func:`geomask.tiffraw.copy_tiles`)
instead of being decoded and re-encoded; if GDAL wrote another layout than predicted, they are
re-encoded from the input's pixels instead. Writes must then cover whole tiles.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.windows import Window

from geomask import tiffraw
from geomask.errors import LayoutMismatch, RunError
from geomask.io import SceneInfo
from geomask.output.check import write_failure
from geomask.windows import covers_whole_tiles

__all__ = ["TileCopy", "matching_layout"]

_MIB = 1 << 20


def matching_layout(scene: SceneInfo, profile: Mapping[str, Any]) -> tiffraw.Layout | None:
    """The tile layout of ``scene``'s file if an output written with ``profile`` can take its tiles
    as they are (same size, bands, bits per sample, codec, predictor, tiles, interleave), else None."""
    layout = tiffraw.layout_of(scene.path)
    grid = scene.grid
    dt = np.dtype(scene.dtype)
    if layout is not None and not (
        (layout.width, layout.height) == (grid.width, grid.height)
        and layout.samples == scene.count
        and layout.bits == (dt.itemsize * 8,) * scene.count
        and tiffraw.profile_matches(layout, profile)
    ):
        return None
    return layout


class TileCopy:
    """The tiles written so far of the output ``final`` of ``scene``, and the copy of the others.

    Parameters
    ----------
    layout : tiffraw.Layout
        The input's tile layout (from :func:`matching_layout`).
    scene : SceneInfo
        The input scene.
    final : Path
        The output path (for messages).
    """

    def __init__(self, layout: tiffraw.Layout, scene: SceneInfo, final: Path) -> None:
        self.layout = layout
        self.scene = scene
        self.final = final
        self.written: set[tuple[int, int]] = set()

    def adapt_profile(self, profile: dict[str, Any], creation_options: Mapping[str, str]) -> None:
        """Make the creation ``profile`` sparse (unwritten tiles stay empty, for the copy), and
        BigTIFF for rasters over 3 GiB unless the user set ``BIGTIFF``."""
        scene, grid = self.scene, self.scene.grid
        profile["SPARSE_OK"] = "TRUE"  # tiles never written stay empty, for copy_tiles
        raw = grid.width * grid.height * scene.count * np.dtype(scene.dtype).itemsize
        if raw > 3 * 2**30 and not any(k.upper() == "BIGTIFF" for k in creation_options):
            profile["BIGTIFF"] = "YES"  # the copied tiles are appended: keep offsets 64-bit

    @property
    def side(self) -> int | None:
        """The tile side (pixels) if the tiles are square, else None."""
        return self.layout.tile[0] if self.layout.tile[0] == self.layout.tile[1] else None

    def mark(self, window: Window) -> None:
        """Record the tiles ``window`` covers as written (it must cover them whole).

        Raises
        ------
        RunError
            ``window`` covers part of a tile (a bug of the caller: the rest of its pixels would be lost).
        """
        self.written.update(self._tiles_of(window))

    def _tiles_of(self, window: Window) -> Iterator[tuple[int, int]]:
        """The (row, column) of the output tiles ``window`` covers; it must cover them whole."""
        tw, th = self.layout.tile
        r0, c0, h, w = int(window.row_off), int(window.col_off), int(window.height), int(window.width)
        # A partial tile would lose the rest of its pixels: a bug of the caller.
        if not covers_whole_tiles(window, (th, tw), self.scene.grid.shape):
            raise RunError(f"{self.final}: window {window} does not cover whole {tw}x{th} tiles")
        for tr in range(r0 // th, -(-(r0 + h) // th)):
            for tc in range(c0 // tw, -(-(c0 + w) // tw)):
                yield tr, tc

    def missing(self) -> list[tuple[int, int]]:
        """The (row, column) of the tiles not written so far: :meth:`fill` copies them."""
        down, across = self.layout.grid
        return [(r, c) for r in range(down) for c in range(across) if (r, c) not in self.written]

    def fill(self, tmp: Path) -> None:
        """Fill the tiles of the closed file ``tmp`` never written with the input's: compressed
        bytes copied, or re-encoded.

        Raises
        ------
        OutputError
            The copy failed (saying when the disk is full).
        """
        missing = self.missing()
        if not missing:
            return
        try:
            tiffraw.copy_tiles(self.scene.path, tmp, missing)
            return
        except LayoutMismatch:
            pass  # GDAL wrote another layout than predicted (a GDAL version's default): re-encode
        except OSError as e:
            raise write_failure(self.final, "copying the unchanged tiles", e, _MIB) from e
        tw, th = self.layout.tile
        try:
            with rasterio.open(self.scene.path) as src, rasterio.open(tmp, "r+") as dst:
                for r, c in missing:
                    window = Window(c * tw, r * th, tw, th).intersection(Window(0, 0, src.width, src.height))
                    dst.write(src.read(window=window), window=window)
        except (RasterioError, OSError) as e:
            raise write_failure(self.final, "writing the unchanged tiles", e, _MIB) from e
