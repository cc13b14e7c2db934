"""STAC Items for geomask outputs (``output.stac: true``).

One Item per output, written beside it as ``NAME.json`` (``out/scene.denoised.tif`` gives
``out/scene.denoised.json``), with:

* the output as the ``data`` asset (a relative href, ``./NAME.tif``; media type COG or GeoTIFF);
* the projection extension (v2.0.0): ``proj:code`` (or ``proj:wkt2`` for a CRS without an EPSG
  code), ``proj:shape``, ``proj:transform`` and ``proj:bbox`` in the scene's CRS;
* as the Item's ``geometry`` (and ``bbox``), the **mask footprint** in EPSG:4326: the union of
  every step's target mask, rendered window by window at full resolution and reduced to a coarse
  grid of at most :data:`FOOTPRINT_CELLS` cells on the longer side (a cell is in the footprint when
  any of its pixels is selected, so the footprint covers every pixel the kernels may change, by up
  to one cell), traced to polygons, clipped to the scene and reprojected (edges densified). It works
  the same for every mask source (vector, bbox, class raster, expression ...). A scene without a
  mask has the whole scene as its footprint; a mask that selects nothing gives a ``null`` geometry;
  a scene without a CRS gives a ``null`` geometry too (its footprint cannot be placed on Earth).

``datetime`` is the time the Item was written (the processing time): geomask does not know when the
input was acquired.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import rasterio
import shapely
from affine import Affine
from pystac.extensions.projection import ProjectionExtension
from rasterio.features import shapes
from rasterio.warp import transform_geom
from rasterio.windows import Window

from geomask import __version__
from geomask.engine.bind import bind_steps, resolve_nodata
from geomask.errors import OutputError
from geomask.grid import Grid
from geomask.io import gdal_env, inspect_scene
from geomask.masks.base import BoundMask, FullMask
from geomask.spec import Step
from geomask.threadwarnings import LIBRARY_CATCHES

__all__ = ["FOOTPRINT_CELLS", "build_item", "item_path", "mask_footprint", "write_item"]

FOOTPRINT_CELLS = 512
"""Cells on the longer side of the coarse grid the mask footprint is traced on."""


def item_path(output: str | os.PathLike[str]) -> Path:
    """Where the STAC Item of ``output`` goes: beside it, with the suffix ``.json``."""
    return Path(output).with_suffix(".json")


def mask_footprint(
    grid: Grid, masks: Sequence[BoundMask], *, cells: int = FOOTPRINT_CELLS
) -> shapely.Geometry | None:
    """Polygons (in the grid's CRS) covering every pixel selected by any of ``masks``.

    Parameters
    ----------
    grid : Grid
        The scene's grid.
    masks : sequence of BoundMask
        Masks bound to ``grid`` (an empty sequence means the whole scene).
    cells : int
        The coarse grid's cells on the longer side; the footprint is exact to one cell.

    Returns
    -------
    shapely geometry or None
        A (Multi)Polygon in the CRS units of ``grid``, clipped to the scene; None when nothing is
        selected.

    Notes
    -----
    Memory: one window of at most 1024 x 1024 pixels (about, rounded to whole cells) plus the coarse
    grid; each mask is rendered once over the whole scene.
    """
    height, width = grid.shape
    left, bottom, right, top = grid.bounds
    scene_box = shapely.box(min(left, right), min(bottom, top), max(left, right), max(bottom, top))
    if not masks:
        return scene_box
    f = max(1, math.ceil(max(height, width) / cells))
    coarse = np.zeros((math.ceil(height / f), math.ceil(width / f)), dtype=bool)
    side = f * max(1, 1024 // f)
    for r0 in range(0, height, side):
        for c0 in range(0, width, side):
            h, w = min(side, height - r0), min(side, width - c0)
            window = Window(c0, r0, w, h)
            selected = np.zeros((h, w), dtype=bool)
            for mask in masks:
                selected |= mask.render(window)
            ph, pw = math.ceil(h / f) * f, math.ceil(w / f) * f
            padded = np.zeros((ph, pw), dtype=bool)
            padded[:h, :w] = selected
            reduced = padded.reshape(ph // f, f, pw // f, f).any(axis=(1, 3))
            coarse[r0 // f : r0 // f + reduced.shape[0], c0 // f : c0 // f + reduced.shape[1]] |= reduced
    if not coarse.any():
        return None
    transform = grid.transform @ Affine.scale(f)
    with LIBRARY_CATCHES:  # shapes' in-memory dataset uses catch_warnings: see there
        polygons = [
            shapely.geometry.shape(geom)
            for geom, _ in shapes(coarse.astype(np.uint8), mask=coarse, transform=transform, connectivity=4)
        ]
    return shapely.intersection(shapely.union_all(polygons), scene_box)


def build_item(
    output: str | os.PathLike[str],
    input_path: str | os.PathLike[str],
    steps: Sequence[Step],
    *,
    nodata: float | str | None = "auto",
    gdal: Mapping[str, str] | None = None,
    item_id: str | None = None,
) -> pystac.Item:
    """The STAC Item of a finished output (see the module docstring for what it holds).

    Parameters
    ----------
    output : path
        The finished output GeoTIFF/COG (local).
    input_path : path or URL
        The scene it was made from (its masks are bound to it for the footprint).
    steps : sequence of Step
        The steps that made it.
    nodata : "auto", a number or None
        As given to the run (pixel-value masks need it).
    gdal : mapping or None
        GDAL configuration options for reading.
    item_id : str or None
        Default: the output's stem.

    Returns
    -------
    pystac.Item
    """
    out = Path(output)
    with gdal_env(gdal or {}):
        scene = inspect_scene(input_path)
        with rasterio.open(out, sharing=False) as ds:
            grid = Grid(ds.crs if ds.crs else None, ds.transform, ds.height, ds.width)
            is_cog = ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            tags = dict(ds.tags())
        bound = bind_steps(scene, steps, resolve_nodata(scene, nodata))
        masks = [] if any(isinstance(s.target, FullMask) for s in bound) else [s.target for s in bound]
        footprint = mask_footprint(grid, masks)
    geometry = None
    bbox = None
    if footprint is not None and grid.crs is not None:
        geometry = transform_geom(grid.crs, "EPSG:4326", shapely.geometry.mapping(footprint), precision=-1)
        bbox = list(shapely.geometry.shape(geometry).bounds)
    now = dt.datetime.now(dt.timezone.utc)
    item = pystac.Item(
        id=item_id or out.stem,
        geometry=geometry,
        bbox=bbox,
        datetime=now,
        properties={
            "created": pystac.utils.datetime_to_str(now),
            "title": f"{out.name}: {tags.get('GEOMASK_KERNEL', '')} inside {tags.get('GEOMASK_MASK', '')}",
            "description": f"geomask {__version__} output of {scene.path}",
        },
    )
    media = pystac.MediaType.COG if is_cog else pystac.MediaType.GEOTIFF
    item.add_asset(
        "data", pystac.Asset(href=f"./{out.name}", media_type=media, roles=["data"], title=out.name)
    )
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    epsg = grid.crs.to_epsg() if grid.crs is not None else None
    proj.code = f"EPSG:{epsg}" if epsg is not None else None
    if epsg is None and grid.crs is not None:
        proj.wkt2 = grid.crs.to_wkt()
    proj.shape = [grid.height, grid.width]
    proj.transform = list(grid.transform)[:6]
    left, bottom, right, top = grid.bounds
    proj.bbox = [min(left, right), min(bottom, top), max(left, right), max(bottom, top)]
    return item


def write_item(
    output: str | os.PathLike[str],
    input_path: str | os.PathLike[str],
    steps: Sequence[Step],
    *,
    nodata: float | str | None = "auto",
    gdal: Mapping[str, str] | None = None,
) -> Path:
    """Build the Item of ``output`` (:func:`build_item`) and write it to :func:`item_path` atomically.

    Returns
    -------
    Path
        The JSON file written.

    Raises
    ------
    OutputError
        The file cannot be written.
    """
    item = build_item(output, input_path, steps, nodata=nodata, gdal=gdal)
    path = item_path(output)
    document: dict[str, Any] = item.to_dict(include_self_link=False, transform_hrefs=False)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write the STAC Item ({e.strerror or e})") from e
    return path
