"""Quicklooks: before | after | mask of a pipeline's first scene, side by side, as a PNG.

Everything is read at preview resolution: the scene is decimated by a whole factor ``f`` so its
longer side is at most ``size`` pixels (panels are ``ceil(H / f)`` x ``ceil(W / f)``), with
nearest-neighbour decimated reads (``out_shape``) that GDAL serves from overviews when the files
have them, so a large scene with overviews (a COG, or ``gdaladdo``) previews in seconds; without
overviews GDAL decodes every block once.

* **before**: the input. **after**: the pipeline's output when it exists (read like the input, from
  the same overview level of both files when they share one, so pixels outside the masks match),
  else computed on the decimated input with :func:`geomask.masked_convolve` and the mask at preview
  resolution (an approximation: the kernel works on preview pixels, so it looks ``f`` times
  wider). The panel's label says which. **mask**: the pixels the steps select (white), at preview
  resolution.
* Bands 1-3 as RGB when the scene has 3 or more bands, else band 1 in grey; each band stretched
  from its 2nd to its 98th percentile over the valid pixels of *before*, the same stretch for
  *after*. Nodata is black.
* ROI outlines (the polygons of vector masks) are drawn in yellow on every panel.

Image size: ``(3 * w + 2 * GAP, HEADER + h)`` for panels of ``w`` x ``h`` pixels.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from affine import Affine
from numpy.typing import NDArray
from PIL import Image, ImageDraw
from rasterio.enums import Resampling
from rasterio.features import rasterize
from rasterio.windows import Window

from geomask.config import Pipeline, load_pipeline
from geomask.convolve import masked_convolve
from geomask.engine.bind import bind_steps, resolve_nodata
from geomask.errors import InputError, OutputError
from geomask.io import gdal_env, inspect_scene
from geomask.masks.base import BoundMask, FullMask
from geomask.masks.vector import BoundVectorMask

__all__ = ["GAP", "HEADER", "render_preview"]

GAP = 8
"""Pixels between panels."""
HEADER = 18
"""Pixels above the panels, for their labels."""
_OUTLINE = (255, 255, 0)


def render_preview(
    pipeline: str | os.PathLike[str] | Pipeline,
    png: str | os.PathLike[str],
    *,
    size: int = 512,
    gdal: dict[str, str] | None = None,
) -> Path:
    """Write the before | after | mask quicklook of the pipeline's first scene to ``png``.

    Parameters
    ----------
    pipeline : path or Pipeline
        A pipeline file or validated model; its first scene (input order) is shown.
    png : path
        The PNG to write (its folder is created).
    size : int
        The longer side of each panel, in pixels, at most (the scene is decimated by a whole factor).
    gdal : mapping or None
        GDAL configuration options.

    Returns
    -------
    Path
        ``png``.

    Raises
    ------
    ConfigError, InputError, MaskError
        As :func:`geomask.run_pipeline`, for the first scene.
    OutputError
        The PNG cannot be written.
    """
    if size < 16:
        raise InputError(f"size {size} is too small: give at least 16 pixels")
    model = pipeline if isinstance(pipeline, Pipeline) else load_pipeline(pipeline)
    input_path, output_path = model.scenes()[0]
    with gdal_env(gdal or {}):
        scene = inspect_scene(input_path)
        grid = scene.grid
        steps = model.to_steps(grid) if model.uses_map_units() else model.to_steps()
        nodata = resolve_nodata(scene, model.nodata)
        bound = bind_steps(scene, steps, nodata)
        height, width = grid.shape
        f = max(1, math.ceil(max(height, width) / size))
        shape = (math.ceil(height / f), math.ceil(width / f))
        bands = [1, 2, 3] if scene.count >= 3 else [1]
        output = str(output_path)
        has_output = _readable(output)
        level_in, level_out = _levels(str(input_path), output if has_output else None, f)
        before = _read(str(input_path), bands, shape, level_in)
        masks = [_mask(s.target, grid.shape, shape, f) for s in bound]
        if has_output:
            after = _read(output, bands, shape, level_out)
            label = "after (output)"
        else:
            after = before
            filtered = model.bands or list(range(1, scene.count + 1))
            rows = [i for i, b in enumerate(bands) if b in filtered]
            for step, mask in zip(bound, masks, strict=True):
                done = after.copy()
                if rows:
                    done[rows] = masked_convolve(
                        after[rows],
                        step.kernel,
                        mask,
                        mode=step.mode if step.mode != "leave" else "reflect",
                        cval=step.cval,
                        nodata=nodata,
                        op="correlate",
                        normalize=step.normalize,
                    )
                after = done
            label = "after (preview)"
    selected = np.logical_or.reduce(masks) if masks else np.zeros(shape, bool)
    lo, hi = _stretch(before, nodata)
    panels = [_to_rgb(before, lo, hi, nodata), _to_rgb(after, lo, hi, nodata), _mask_rgb(selected)]
    h, w = shape
    image = Image.new("RGB", (3 * w + 2 * GAP, HEADER + h), (40, 40, 40))
    draw = ImageDraw.Draw(image)
    for i, (panel, text) in enumerate(zip(panels, ("before", label, "mask"), strict=True)):
        x0 = i * (w + GAP)
        image.paste(Image.fromarray(panel, "RGB"), (x0, HEADER))
        draw.text((x0 + 2, 2), text, fill=(255, 255, 255))
        for ring in _rings(bound):
            xy = [(x0 + x / f, HEADER + y / f) for x, y in ring]
            draw.line(xy, fill=_OUTLINE, width=1)
    out = Path(png)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        image.save(out, format="PNG")
    except OSError as e:
        raise OutputError(f"{out}: cannot write the quicklook ({e.strerror or e})") from e
    return out


def _readable(path: str) -> bool:
    if "://" not in path and not os.path.isfile(path):
        return False
    try:
        with rasterio.open(path, sharing=False):
            return True
    except rasterio.errors.RasterioError:
        return False


def _levels(input_path: str, output: str | None, f: int) -> tuple[int | None, int | None]:
    """Overview level indices (input, output) to read from: the largest factor <= ``f`` both files
    have (None: full resolution)."""
    with rasterio.open(input_path, sharing=False) as ds:
        ins = ds.overviews(1)
    outs = ins
    if output is not None:
        with rasterio.open(output, sharing=False) as ds:
            outs = ds.overviews(1)
    common = [factor for factor in ins if factor in outs and factor <= f]
    if not common:
        return None, None
    best = max(common)
    return ins.index(best), outs.index(best)


def _read(path: str, bands: Sequence[int], shape: tuple[int, int], level: int | None) -> NDArray[Any]:
    options: dict[str, Any] = {} if level is None else {"overview_level": level}
    with rasterio.open(path, sharing=False, **options) as ds:
        return ds.read(list(bands), out_shape=(len(bands), *shape), resampling=Resampling.nearest)


def _mask(target: BoundMask, full: tuple[int, int], shape: tuple[int, int], f: int) -> NDArray[np.bool_]:
    """A mask at preview resolution: the full-resolution pixel each nearest read samples."""
    if isinstance(target, FullMask):
        return np.ones(shape, bool)
    if isinstance(target, BoundVectorMask):
        if target.is_empty:
            return np.zeros(shape, bool)
        # preview pixel (r, c) is sampled at full-resolution pixel centre ((r + .5) f, (c + .5) f)
        burned = rasterize(
            target.geometries,
            out_shape=shape,
            transform=Affine.scale(f),
            all_touched=target.all_touched,
            dtype="uint8",
        )
        return burned.astype(bool)
    height, width = full
    rows = np.minimum(((np.arange(shape[0]) + 0.5) * height / shape[0]).astype(int), height - 1)
    cols = np.minimum(((np.arange(shape[1]) + 0.5) * width / shape[1]).astype(int), width - 1)
    out = np.zeros(shape, bool)
    side = max(f, 1024 // f * f)
    for r0 in range(0, height, side):
        for c0 in range(0, width, side):
            h, w = min(side, height - r0), min(side, width - c0)
            block = target.render(Window(c0, r0, w, h))
            ri = np.flatnonzero((rows >= r0) & (rows < r0 + h))
            ci = np.flatnonzero((cols >= c0) & (cols < c0 + w))
            out[np.ix_(ri, ci)] = block[np.ix_(rows[ri] - r0, cols[ci] - c0)]
    return out


def _valid(values: NDArray[Any], nodata: float | None) -> NDArray[np.bool_]:
    ok = np.ones(values.shape, bool)
    if values.dtype.kind == "f":
        ok &= np.isfinite(values)
    if nodata is not None and not np.isnan(nodata):
        ok &= values != nodata
    return ok


def _stretch(values: NDArray[Any], nodata: float | None) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    lo = np.zeros(values.shape[0])
    hi = np.ones(values.shape[0])
    for b in range(values.shape[0]):
        valid = values[b][_valid(values[b], nodata)]
        if valid.size:
            lo[b], hi[b] = np.percentile(valid.astype(np.float64), [2, 98])
        if hi[b] <= lo[b]:
            hi[b] = lo[b] + 1
    return lo, hi


def _to_rgb(
    values: NDArray[Any], lo: NDArray[np.float64], hi: NDArray[np.float64], nodata: float | None
) -> NDArray[np.uint8]:
    scaled = (values.astype(np.float64) - lo[:, None, None]) / (hi - lo)[:, None, None]
    out = np.clip(np.nan_to_num(scaled) * 255.0, 0, 255).round().astype(np.uint8)
    out[~_valid(values, nodata)] = 0
    if out.shape[0] == 1:
        out = np.repeat(out, 3, axis=0)
    return np.ascontiguousarray(out.transpose(1, 2, 0))


def _mask_rgb(selected: NDArray[np.bool_]) -> NDArray[np.uint8]:
    return np.repeat((selected.astype(np.uint8) * 255)[:, :, None], 3, axis=2)


def _rings(bound: Sequence[Any]) -> list[list[tuple[float, float]]]:
    """Boundary rings of the vector masks' polygons, in full-resolution (col, row) pixel coordinates."""
    rings: list[list[tuple[float, float]]] = []
    for step in bound:
        if not isinstance(step.target, BoundVectorMask):
            continue
        for geom in step.target.geometries:
            boundary = shapely.boundary(geom)
            for part in shapely.get_parts(boundary):
                coords = shapely.get_coordinates(part)
                if len(coords) >= 2:
                    rings.append([(float(x), float(y)) for x, y in coords])
    return rings
