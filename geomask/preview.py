"""Quicklooks: before | after | changes | mask of a pipeline's first scene, side by side, as a PNG.

Every panel is made from full-resolution pixels, the same way for the input and the output, so a
pixel that no step changed looks the same in *before* and *after*:

* The scene is cut into preview blocks of ``f`` x ``f`` full-resolution pixels, ``f`` the whole
  factor that makes the longer side at most ``size`` panel pixels (panels are ``ceil(H / f)`` x
  ``ceil(W / f)``; the last row and column of blocks may be smaller).
* **before** and **after**: each panel pixel is the mean of the valid pixels of its block (nodata
  and NaN left out; a block with none is black), computed in float64 by the same function on the
  input and on the output, so a block with no changed pixel gives the same value in both. Bands 1-3
  as RGB when the scene has 3 or more bands, else band 1 in grey; each band stretched from its 2nd
  to its 98th percentile over the valid *before* panel pixels, the same stretch for *after*.
* **changes**: *before* in dimmed grey, with every panel pixel whose block holds at least one
  changed full-resolution pixel (any band, compared bit for bit as the engine counts them) in
  magenta, so a single changed pixel still shows.
* **mask**: the panel pixels whose block holds at least one selected pixel (white).
* Outlines (yellow, on before, after and mask): the boundary of each step's mask on the panel
  grid (the block-wise "any" of the mask, minus its erosion), whatever the mask form; with
  ``kernels_by``, of each class's region.

*after* is the pipeline's output when it is current (its provenance tags match the pipeline and
the input, as for resume; the run's profile aside) and has the input's shape, bands and dtype;
otherwise it is computed here at full resolution by the engine, window by window, exactly as a run
would (it then costs what running the first scene costs, on one thread). The panel's label says
which.

Memory: windows of at most ~32 MiB of float64 per band set (a multiple of ``f`` on each side) are
read, compared, decimated and dropped; only the panels (a few MB) are kept. Every pixel of the
input (and of the output) is decoded once; overviews are not used, since an input's and an
output's overviews are not built the same way.

Image size: ``(4 * w + 3 * GAP, HEADER + h)`` for panels of ``w`` x ``h`` pixels.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from numpy.typing import NDArray
from PIL import Image, ImageDraw, PngImagePlugin
from rasterio.errors import RasterioError
from rasterio.windows import Window
from scipy import ndimage

from geomask import __version__
from geomask.config import Pipeline, load_pipeline
from geomask.config.build import build_steps
from geomask.config.inputs import band_scenes, is_product_input
from geomask.engine.bind import bind_steps, resolve_bands, resolve_nodata
from geomask.engine.task import BoundGroup, BoundStep, SceneJob, compute_window
from geomask.errors import InputError, OutputError
from geomask.guard import PNG_SOFTWARE
from geomask.io import SceneInfo, gdal_env, inspect_scene, open_scene
from geomask.masks.assets import for_band
from geomask.masks.base import BoundMask
from geomask.output.check import read_tags
from geomask.provenance import _CURRENT_KEYS, TAG_PREFIX, provenance_tags
from geomask.urls import is_url

__all__ = ["CHANGED", "GAP", "HEADER", "OUTLINE", "render_preview"]

GAP = 8
"""Pixels between panels."""
HEADER = 18
"""Pixels above the panels, for their labels."""
OUTLINE = (255, 255, 0)
"""Colour of mask outlines (yellow)."""
CHANGED = (255, 0, 255)
"""Colour of changed pixels in the changes panel (magenta)."""
_WINDOW_BYTES = 32 * 2**20  # float64 bytes of one window of all bands, at most (unless f is larger)
_BACKGROUND = (40, 40, 40)
_GREY = 0.6  # brightness of the grey background of the changes panel


def render_preview(
    pipeline: str | os.PathLike[str] | Pipeline,
    png: str | os.PathLike[str],
    *,
    size: int = 512,
    gdal: dict[str, str] | None = None,
) -> Path:
    """Write the before | after | changes | mask quicklook of the pipeline's first scene to ``png``.

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

    Notes
    -----
    Reads every full-resolution pixel of the input once (and of the output, or computes it): see
    the module's documentation for how the panels are made and the memory this takes.
    """
    if size < 16:
        raise InputError(f"size {size} is too small: give at least 16 pixels")
    model = pipeline if isinstance(pipeline, Pipeline) else load_pipeline(pipeline)
    input_path, output_path = model.scenes()[0]
    band = band_scenes(model)[0] if is_product_input(model.input) else None  # a product: its first band
    options = dict(gdal or {})
    with gdal_env(options):
        scene = inspect_scene(input_path)
        steps = build_steps(model, scene.grid) if model.uses_map_units() else build_steps(model)
        if band is not None:
            steps = for_band(steps, band.product, model.nodata)
        nodata = resolve_nodata(scene, model.nodata)
        honour = model.validity == "honour"  # alpha 0 and GDAL mask 0 pixels invalid, as in a run
        alpha = scene.alpha if honour else None
        dataset_mask = honour and scene.dataset_mask
        bound = bind_steps(scene, steps, nodata, masked=alpha is not None or dataset_mask)
        f = max(1, math.ceil(max(scene.grid.shape) / size))
        current = _current_output(model, steps, input_path, output_path, scene)
        bands = (
            (band.asset.band,)
            if band is not None
            else resolve_bands(scene, model.bands, alpha=alpha is not None)  # type: ignore[arg-type]
        )
        # copy_tile: compute_window skips (returns no data for) windows without targets
        job = SceneJob(
            scene,
            bound,
            bands,
            nodata,
            options,
            copy_tile=max(scene.grid.shape),
            alpha=alpha,
            dataset_mask=dataset_mask,
        )
        panels = _decimate(scene, str(output_path) if current else job, _regions(bound), nodata, f)
    label = "after (output)" if current else "after (computed)"
    image = _compose(panels, label)
    out = Path(png)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        info = PngImagePlugin.PngInfo()
        info.add_text("Software", f"{PNG_SOFTWARE} {__version__}")  # how geomask knows its own PNGs
        image.save(out, format="PNG", pnginfo=info)
    except OSError as e:
        raise OutputError(f"{out}: cannot write the quicklook ({e.strerror or e})") from e
    return out


@dataclass
class _Panels:
    """What the quicklook shows, on the panel grid (rows, cols) = (ceil(H / f), ceil(W / f))."""

    before: NDArray[np.float64]  # (bands shown, rows, cols), NaN where a block has no valid pixel
    after: NDArray[np.float64]
    changed: NDArray[np.bool_]  # a block holds a changed pixel
    regions: list[NDArray[np.bool_]]  # per mask region: a block holds a selected pixel
    changed_pixels: int  # full-resolution pixels (any band) changed


def _current_output(
    model: Pipeline, steps: Sequence[Any], input_path: Path, output_path: Path, scene: SceneInfo
) -> bool:
    """True when ``output_path`` is this pipeline's current output of ``input_path`` and has its grid,
    bands and dtype (the tags resume compares, less the run profile, which does not change pixels)."""
    if is_url(output_path) or not os.path.isfile(output_path):
        return False
    found = read_tags(output_path)
    expected = provenance_tags(model, steps, input_path)
    keys = [k for k in _CURRENT_KEYS if k != TAG_PREFIX + "PROFILE_SHA256"]
    if found is None or not all(expected.get(k) is not None and found.get(k) == expected[k] for k in keys):
        return False
    try:
        with rasterio.open(output_path, sharing=False) as ds:
            same = (ds.height, ds.width) == scene.grid.shape and ds.count == scene.count
            return same and all(np.dtype(d) == np.dtype(scene.dtype) for d in ds.dtypes)
    except RasterioError:
        return False


def _regions(bound: Sequence[BoundStep]) -> list[BoundMask]:
    """The masks to outline: each step's target, and each class's with ``kernels_by``."""
    out: list[BoundMask] = []
    for step in bound:
        if isinstance(step, BoundGroup):
            out.extend(branch.target for branch in step.branches)
        else:
            out.append(step.target)
    return out


def _windows(shape: tuple[int, int], f: int, count: int) -> Iterator[Window]:
    """Windows covering ``shape``, their sides multiples of ``f`` (but at the scene edge), each of at
    most ``_WINDOW_BYTES`` float64 values of ``count`` bands unless one block of ``f`` x ``f`` is more."""
    height, width = shape
    side = max(f, int(math.sqrt(_WINDOW_BYTES / (8 * count))) // f * f)
    for r0 in range(0, height, side):
        for c0 in range(0, width, side):
            yield Window(c0, r0, min(side, width - c0), min(side, height - r0))


def _decimate(
    scene: SceneInfo, after: str | SceneJob, regions: Sequence[BoundMask], nodata: float | None, f: int
) -> _Panels:
    """Read (or compute) every window at full resolution and reduce it to the panel grid.

    ``after``: the output's path, or the job that computes it window by window.
    """
    height, width = scene.grid.shape
    shape = (math.ceil(height / f), math.ceil(width / f))
    shown = [0, 1, 2] if scene.count >= 3 else [0]
    panels = _Panels(
        np.full((len(shown), *shape), np.nan),
        np.full((len(shown), *shape), np.nan),
        np.zeros(shape, bool),
        [np.zeros(shape, bool) for _ in regions],
        0,
    )
    with contextlib.ExitStack() as stack:
        src = stack.enter_context(open_scene(scene.path))
        source: rasterio.io.DatasetReader | SceneJob = (
            stack.enter_context(rasterio.open(after, sharing=False)) if isinstance(after, str) else after
        )
        for window in _windows(scene.grid.shape, f, scene.count):
            r0, c0 = int(window.row_off) // f, int(window.col_off) // f
            h, w = math.ceil(window.height / f), math.ceil(window.width / f)
            at = (slice(r0, r0 + h), slice(c0, c0 + w))
            before = _read(src, window)
            result = _after_window(source, window, before)
            changed = _differs(before, result)
            panels.changed_pixels += int(changed.sum())
            panels.changed[at] = _block_any(changed, f)
            panels.before[(slice(None), *at)] = _block_mean(before[shown], nodata, f)
            panels.after[(slice(None), *at)] = _block_mean(result[shown], nodata, f)
            for region, mask in zip(regions, panels.regions, strict=True):
                if not region.is_empty:
                    mask[at] = _block_any(region.render(window), f)
    return panels


def _after_window(
    source: rasterio.io.DatasetReader | SceneJob, window: Window, before: NDArray[Any]
) -> NDArray[Any]:
    """The output's pixels of ``window``: read from the output, or computed by the engine."""
    if isinstance(source, SceneJob):
        computed = compute_window(source, window).data
        return before if computed is None else computed  # None: no target in the window
    return _read(source, window)


def _read(ds: rasterio.io.DatasetReader, window: Window) -> NDArray[Any]:
    try:
        return ds.read(window=window)
    except RasterioError as e:
        raise InputError(
            f"{ds.name}: cannot read rows {int(window.row_off)}-{int(window.row_off + window.height) - 1}, "
            f"columns {int(window.col_off)}-{int(window.col_off + window.width) - 1} ({e})"
        ) from e


def _differs(before: NDArray[Any], after: NDArray[Any]) -> NDArray[np.bool_]:
    """Pixels (rows, cols) where any band differs bit for bit (as the engine counts changes)."""
    u = np.dtype(f"u{before.dtype.itemsize}")
    a = np.ascontiguousarray(before).view(u)
    b = np.ascontiguousarray(after, dtype=before.dtype).view(u)
    return np.asarray((a != b).any(axis=0))


def _block_sum(values: NDArray[Any], f: int) -> NDArray[np.float64]:
    """Per block of ``f`` x ``f`` of ``values`` (..., h, w), zero-padded to multiples of ``f``: the
    float64 sum, shape (..., ceil(h / f), ceil(w / f)): the rows of each block are added first,
    then the columns, in the same order for any two arrays of the same shape."""
    *lead, h, w = values.shape
    ph, pw = -h % f, -w % f
    if ph or pw:
        values = np.pad(values, [(0, 0)] * len(lead) + [(0, ph), (0, pw)])
    rows = values.reshape(*lead, (h + ph) // f, f, w + pw).sum(axis=-2, dtype=np.float64)
    return np.asarray(rows.reshape(*lead, (h + ph) // f, (w + pw) // f, f).sum(axis=-1))


def _block_any(mask: NDArray[np.bool_], f: int) -> NDArray[np.bool_]:
    """Per block of ``f`` x ``f``: does it hold a True pixel (a max-decimation)."""
    return _block_sum(mask, f) > 0


def _block_mean(values: NDArray[Any], nodata: float | None, f: int) -> NDArray[np.float64]:
    """Per band and block of ``f`` x ``f``: the mean of the valid pixels in float64 (NaN: none)."""
    valid = _valid(values, nodata)
    total = _block_sum(values if valid.all() else np.where(valid, values, 0), f)
    count = _block_sum(valid, f)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def _valid(values: NDArray[Any], nodata: float | None) -> NDArray[np.bool_]:
    ok = np.ones(values.shape, bool)
    if values.dtype.kind == "f":
        ok &= np.isfinite(values)
    if nodata is not None and not np.isnan(nodata):
        ok &= values != nodata
    return ok


def _compose(panels: _Panels, label: str) -> Image.Image:
    """The four panels side by side, labelled, with the outlines drawn."""
    lo, hi = _stretch(panels.before)
    before = _to_rgb(panels.before, lo, hi)
    after = _to_rgb(panels.after, lo, hi)
    changes = _changes_rgb(before, panels.changed)
    selected = (
        np.logical_or.reduce(panels.regions) if panels.regions else np.zeros(panels.changed.shape, bool)
    )
    mask = np.repeat((selected.astype(np.uint8) * 255)[:, :, None], 3, axis=2)
    outline = np.zeros(panels.changed.shape, bool)
    for region in panels.regions:
        outline |= region & ~ndimage.binary_erosion(region, border_value=1)
    for panel in (before, after, mask):
        panel[outline] = OUTLINE
    texts = ("before", label, f"changes ({panels.changed_pixels} px)", "mask")
    h, w = panels.changed.shape
    image = Image.new("RGB", (4 * w + 3 * GAP, HEADER + h), _BACKGROUND)
    for i, (panel, text) in enumerate(zip((before, after, changes, mask), texts, strict=True)):
        x0 = i * (w + GAP)
        image.paste(Image.fromarray(panel, "RGB"), (x0, HEADER))
        label = Image.new("RGB", (w, HEADER), _BACKGROUND)  # cut at the panel's width
        ImageDraw.Draw(label).text((2, 2), text, fill=(255, 255, 255))
        image.paste(label, (x0, 0))
    return image


def _stretch(values: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per band: the 2nd and 98th percentiles of the valid (not NaN) values."""
    lo = np.zeros(values.shape[0])
    hi = np.ones(values.shape[0])
    for b in range(values.shape[0]):
        valid = values[b][~np.isnan(values[b])]
        if valid.size:
            lo[b], hi[b] = np.percentile(valid, [2, 98])
        if hi[b] <= lo[b]:
            hi[b] = lo[b] + 1
    return lo, hi


def _to_rgb(
    values: NDArray[np.float64], lo: NDArray[np.float64], hi: NDArray[np.float64]
) -> NDArray[np.uint8]:
    """(bands, rows, cols) -> (rows, cols, 3) uint8 with the stretch ``lo``-``hi``; NaN is black."""
    scaled = (values - lo[:, None, None]) / (hi - lo)[:, None, None]
    out = np.clip(np.nan_to_num(scaled) * 255.0, 0, 255).round().astype(np.uint8)
    out[np.isnan(values)] = 0
    if out.shape[0] == 1:
        out = np.repeat(out, 3, axis=0)
    return np.ascontiguousarray(out.transpose(1, 2, 0))


def _changes_rgb(before: NDArray[np.uint8], changed: NDArray[np.bool_]) -> NDArray[np.uint8]:
    """``before`` as dimmed grey, the changed pixels in :data:`CHANGED`."""
    grey = (before.astype(np.float64).mean(axis=2) * _GREY).round().astype(np.uint8)
    out = np.repeat(grey[:, :, None], 3, axis=2)
    out[changed] = CHANGED
    return out
