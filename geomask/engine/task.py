"""The pure window task: one window of one scene through every step, opened, read and computed inside.

:func:`compute_window` is what every executor runs (:mod:`geomask.executors`): given a
:class:`SceneJob` (paths and bound masks, picklable) and a window, it returns the window's finished
pixels for every band (:class:`WindowResult`). It opens its own handle, writes nothing and is safe to
run twice. How the halos and index sets work: :mod:`geomask.engine`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window

from geomask.convolve import changed_per_tile, filter_indexed, interior, tap_index
from geomask.dtypes import Conversion, invalid_pixels
from geomask.engine.tilecache import read_tiled, shareable
from geomask.io import SceneInfo, gdal_env, open_scene, read_indexed
from geomask.kernels import Kernel
from geomask.masks.base import BoundMask
from geomask.windows import contiguous_runs, expand

if TYPE_CHECKING:
    from rasterio.io import DatasetReader

__all__ = ["BoundGroup", "BoundStep", "SceneJob", "WindowResult", "compute_window"]


@dataclass(frozen=True)
class BoundStep:
    kernel: Kernel  # prepared for correlation
    target: BoundMask
    support: BoundMask | None
    mode: str
    cval: float
    normalize: bool
    fill: int | None = None  # a fill step: min_valid (see geomask.fill)


@dataclass(frozen=True)
class SceneJob:
    """Everything a window task needs; picklable (paths and bound masks, no handles)."""

    scene: SceneInfo
    steps: tuple[BoundStep, ...]
    bands: tuple[int, ...]
    nodata: float | None
    gdal_options: Mapping[str, str] = field(default_factory=dict)
    copy_tile: int | None = None  # the writer copies unchanged tiles of this side from the input
    convert: Conversion | None = None  # output.dtype: pixels converted when read (nodata: the output's)
    alpha: int | None = None  # the alpha band: pixels whose alpha is 0 are invalid, like nodata
    dataset_mask: bool = False  # the GDAL per-dataset mask: 0 is invalid; kept in the output
    out_nodata: float | None = None  # the output's declared nodata (computed pixels equal to it are counted)


@dataclass(frozen=True)
class _Validity:
    """Which read pixels are valid (alpha and GDAL mask not 0), at ``rows`` x ``cols`` of the scene."""

    valid: NDArray[np.bool_]
    rows: NDArray[np.int64]
    cols: NDArray[np.int64]

    def at(self, rows: NDArray[np.int64], cols: NDArray[np.int64]) -> NDArray[np.bool_]:
        """The validity at ``rows`` x ``cols`` (sorted subsets of the read ones)."""
        return self.valid[np.ix_(_positions(rows, self.rows), _positions(cols, self.cols))]


@dataclass
class WindowResult:
    """The finished pixels of one window (all bands) and its counts.

    With tile copy (``SceneJob.copy_tile``), ``data`` is None for a window without targets (not
    even read) and ``tiles`` flags the tiles of the window that changed (the rest are the input's).
    """

    window: Window
    data: NDArray[Any] | None
    computed: bool
    selected: int
    changed: int
    tiles: NDArray[np.bool_] | None = None
    mask: NDArray[np.uint8] | None = None  # the GDAL per-dataset mask of the window, to write as is
    collisions: int = 0  # computed pixels (valid in the input) equal to the output's nodata


def _render(mask: BoundMask, rows: NDArray[np.int64], cols: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Render ``mask`` at the product of sorted index sets, one call per pair of runs."""
    out = np.zeros((rows.size, cols.size), dtype=bool)
    r_pos = 0
    for r0, r1 in contiguous_runs(rows):
        c_pos = 0
        for c0, c1 in contiguous_runs(cols):
            block = mask.render(Window(c0, r0, c1 - c0, r1 - r0))
            out[r_pos : r_pos + r1 - r0, c_pos : c_pos + c1 - c0] = block
            c_pos += c1 - c0
        r_pos += r1 - r0
    return out


def _positions(needed: NDArray[np.int64], available: NDArray[np.int64]) -> NDArray[np.int64]:
    """Positions of ``needed`` scene indices within the sorted ``available`` (-1 stays -1)."""
    pos = np.searchsorted(available, np.maximum(needed, 0))
    return np.where(needed < 0, -1, pos)


def compute_window(job: SceneJob, window: Window) -> WindowResult:
    """Compute the finished pixels of ``window``: pure, safe to run twice, opens its own handle."""
    # One GDAL environment for the whole task (rendering the masks included): each GDAL call
    # outside one sets up and tears down its own.
    with gdal_env(job.gdal_options):
        return _compute_window(job, window)


def _compute_window(job: SceneJob, window: Window) -> WindowResult:
    scene = job.scene
    h, w = int(window.height), int(window.width)
    rows, cols, targets = _index_sets(job, window)
    union = _target_union(targets, rows, cols)
    selected = int(union.sum()) if union is not None else 0
    all_bands = range(1, scene.count + 1)
    if job.copy_tile and (union is None or not union.any()):
        return WindowResult(window, None, False, selected, 0)  # the writer copies the input's tiles
    with open_scene(scene.path) as ds:
        if union is None or not union.any():
            data = read_indexed(ds, all_bands, rows[-1], cols[-1])
            mask = read_indexed(ds, [1], rows[-1], cols[-1], masks=True)[0] if job.dataset_mask else None
            if job.convert is not None:
                raw = data
                data = job.convert.apply(data)
                _finish(job, data, raw, _validity(job, raw, mask, rows[-1], cols[-1]))
            return WindowResult(window, data, False, selected, 0, mask=mask)
        active = _active_tiles(job, union)
        if active is None:
            result, per_tile, mask, hits = _compute(job, ds, rows, cols, targets)
            tiles = per_tile > 0 if job.copy_tile else None
            return WindowResult(window, result, True, selected, int(per_tile.sum()), tiles, mask, hits)
        # Tile copy, and some tiles of the window hold no target: those are copied from the input,
        # so only the tiles with targets are computed, each with its own halo (the decoded tiles
        # are shared: engine/tilecache.py). The tiles never computed are left zero in ``data``
        # and unflagged in ``tiles``.
        t = job.copy_tile
        result: NDArray[Any] | None = None
        tiles = np.zeros(active.shape, dtype=bool)
        changed = collisions = 0
        r0, c0 = int(window.row_off), int(window.col_off)
        for tr, tc in zip(*np.nonzero(active), strict=True):
            part = (slice(None), slice(tr * t, (tr + 1) * t), slice(tc * t, (tc + 1) * t))
            last = targets[-1][part[1:]]
            sub = Window(c0 + tc * t, r0 + tr * t, last.shape[1], last.shape[0])
            s_rows, s_cols, s_targets = _index_sets(job, sub, last)
            out, per_tile, _, hits = _compute(job, ds, s_rows, s_cols, s_targets)
            if result is None:  # the computed pixels' dtype (the output's)
                result = np.zeros((out.shape[0], h, w), dtype=out.dtype)
            result[part] = out
            tiles[tr, tc] = per_tile.sum() > 0
            changed += int(per_tile.sum())
            collisions += hits
    return WindowResult(window, result, True, selected, changed, tiles, collisions=collisions)


def _index_sets(
    job: SceneJob, window: Window, last: NDArray[np.bool_] | None = None
) -> tuple[list[NDArray[np.int64]], list[NDArray[np.int64]], list[NDArray[np.bool_]]]:
    """The rows, columns and targets of every step for ``window`` (``last``: the last step's
    target, already rendered on the window)."""
    height, width = job.scene.grid.shape
    r0, c0 = int(window.row_off), int(window.col_off)
    h, w = int(window.height), int(window.width)
    # Index sets, from the last step back to the first: rows[k+1] x cols[k+1] is what step k
    # produces, rows[k] x cols[k] what it reads. A step computes only its target pixels (the
    # others pass its input through), so it reads what it produces plus the halo of the rows
    # and columns that hold targets: a window whose targets stay clear of its edges reads no
    # halo at all (no neighbouring tiles decoded). Every computed pixel reads the same cells
    # as in the whole-image computation, through index maps, whatever set holds them.
    rows = [np.arange(r0, r0 + h, dtype=np.int64)]
    cols = [np.arange(c0, c0 + w, dtype=np.int64)]
    targets: list[NDArray[np.bool_]] = []
    for step in reversed(job.steps):
        target = last if last is not None and not targets else _render(step.target, rows[0], cols[0])
        targets.insert(0, target)
        ry, rx = step.kernel.halo
        t_rows = rows[0][target.any(axis=1)]
        t_cols = cols[0][target.any(axis=0)]
        rows.insert(0, np.union1d(rows[0], expand(t_rows, ry, height, step.mode)))
        cols.insert(0, np.union1d(cols[0], expand(t_cols, rx, width, step.mode)))
    return rows, cols, targets


def _active_tiles(job: SceneJob, union: NDArray[np.bool_]) -> NDArray[np.bool_] | None:
    """With tile copy, which output tiles of the window hold a target (``union``: the window's
    pixels any step selects); None when all do or the window is one tile (compute it whole)."""
    t = job.copy_tile
    if not t or job.dataset_mask:
        return None
    h, w = union.shape
    down, across = -(-h // t), -(-w // t)
    if down * across == 1:
        return None
    active = np.zeros((down, across), dtype=bool)
    for tr in range(down):
        band = union[tr * t : (tr + 1) * t]
        for tc in range(across):
            active[tr, tc] = band[:, tc * t : (tc + 1) * t].any()
    return None if active.all() else active


def _compute(
    job: SceneJob,
    ds: DatasetReader,
    rows: list[NDArray[np.int64]],
    cols: list[NDArray[np.int64]],
    targets: list[NDArray[np.bool_]],
) -> tuple[NDArray[Any], NDArray[np.int64], NDArray[np.uint8] | None, int]:
    """Read ``rows[0]`` x ``cols[0]`` from ``ds``, apply every step; the result at ``rows[-1]`` x
    ``cols[-1]`` (all bands), its changed pixels per output tile, its GDAL mask (or None) and how many
    computed pixels equal the output's nodata (:func:`_collisions`)."""
    scene = job.scene
    all_bands = range(1, scene.count + 1)
    # One read of every band (a pixel-interleaved file decodes them all anyway). With tile copy
    # (a local tiled input), through the tiles shared by the process's window tasks: a tile
    # holding the halo of one window and the targets of the next is decoded once.
    if job.copy_tile and shareable(scene.path, scene.block_shape):
        read = read_tiled(ds, str(scene.path), scene.block_shape, rows[0], cols[0])
    else:
        read = read_indexed(ds, all_bands, rows[0], cols[0])
    gdal_mask = read_indexed(ds, [1], rows[0], cols[0], masks=True)[0] if job.dataset_mask else None
    own_r = _positions(rows[-1], rows[0])
    own_c = _positions(cols[-1], cols[0])
    validity = _validity(job, read, gdal_mask, rows[0], cols[0])
    raw = read
    if job.convert is not None:  # the steps compute into the output dtype
        read = job.convert.apply(read)
    values = read if len(job.bands) == scene.count else read[[b - 1 for b in job.bands]]
    for k, step in enumerate(job.steps):
        apply = _apply_any(step)
        values = apply(job, step, values, rows[k], cols[k], rows[k + 1], cols[k + 1], targets[k], validity)
    if len(job.bands) == scene.count:
        result = values
    else:
        result = read[:, own_r][:, :, own_c]
        result[[b - 1 for b in job.bands]] = values
    tile = job.copy_tile or max(rows[-1].size, cols[-1].size)  # per output tile when tiles are copied
    per_tile = changed_per_tile(read, result, (tile, tile), own_r, own_c)
    mask = None if gdal_mask is None else np.ascontiguousarray(gdal_mask[np.ix_(own_r, own_c)])
    hits = _collisions(job, raw, result, rows, cols, targets, validity)
    if job.convert is not None and job.convert.final_nodata is not None:
        own = _Validity(validity.at(rows[-1], cols[-1]), rows[-1], cols[-1]) if validity is not None else None
        _finish(job, result, raw[:, own_r][:, :, own_c], own)
    return result, per_tile, mask, hits


def _input_nodata(job: SceneJob) -> float | None:
    """The run's nodata in the input's dtype (pixels equal to it, and NaN, are invalid in the input)."""
    return job.convert.nodata if job.convert is not None else job.nodata


def _finish(job: SceneJob, values: NDArray[Any], raw: NDArray[Any], validity: _Validity | None) -> None:
    """With ``output.nodata``, write it into the pixels of ``values`` (finished, output dtype) that are
    invalid in ``raw`` (the same pixels as read, before conversion) and still invalid, and into the
    pixels ``validity`` masks (alpha, GDAL mask; the alpha band itself is kept)."""
    convert = job.convert
    if convert is None or convert.final_nodata is None:
        return
    invalid = invalid_pixels(raw, _input_nodata(job))
    masked = None if validity is None else ~validity.valid
    convert.finish(values, invalid, masked, keep=None if job.alpha is None else job.alpha - 1)


def _collisions(
    job: SceneJob,
    raw: NDArray[Any],
    result: NDArray[Any],
    rows: list[NDArray[np.int64]],
    cols: list[NDArray[np.int64]],
    targets: list[NDArray[np.bool_]],
    validity: _Validity | None,
) -> int:
    """How many computed pixels of ``result`` equal the output's declared nodata (NaN-aware) in some
    filtered band: pixels inside some step's target whose band is valid in ``raw`` (the read, before
    conversion, at ``rows[0]`` x ``cols[0]``) and by ``validity``. That band will read as nodata.

    Cheap when there are none: one comparison of the filtered bands with the value.
    """
    value = job.out_nodata
    if value is None:
        return 0
    idx = [b - 1 for b in job.bands]
    data = result if len(idx) == result.shape[0] else result[idx]
    if math.isnan(value):
        if data.dtype.kind != "f":
            return 0
        hit = np.isnan(data)
    else:
        # In the data's own type: a Python float would cast the whole window to float64 first
        # (1-2 ms per 1024 x 1024 x 3 window). The declared value is one of that type (validated;
        # GDAL readers compare in the band's type too); anything else is compared as before.
        try:
            typed = data.dtype.type(value)
            exact = float(typed) == value
        except (OverflowError, ValueError):
            exact = False
        hit = data == (typed if exact else value)
    if not hit.any():
        return 0
    union = targets[-1] if len(targets) == 1 else _target_union(targets, rows, cols)
    if union is not None:
        hit &= union
    own_r, own_c = _positions(rows[-1], rows[0]), _positions(cols[-1], cols[0])
    nodata = _input_nodata(job)
    pixels = np.zeros(hit.shape[1:], dtype=bool)  # pixels, as the changed count: one band is enough
    for k, b in enumerate(idx):
        if hit[k].any():
            invalid = invalid_pixels(_crop(raw[b], own_r, own_c), nodata)
            pixels |= hit[k] if invalid is None else hit[k] & ~invalid
    if validity is not None:
        pixels &= _crop(
            validity.valid, _positions(rows[-1], validity.rows), _positions(cols[-1], validity.cols)
        )
    return int(pixels.sum())


def _crop(values: NDArray[Any], rows: NDArray[np.int64], cols: NDArray[np.int64]) -> NDArray[Any]:
    """``values[rows][:, cols]`` (2-D): a view when both are contiguous runs (a window inside its
    halo), else a copy."""
    if (
        rows.size
        and cols.size
        and rows[-1] - rows[0] + 1 == rows.size
        and cols[-1] - cols[0] + 1 == cols.size
    ):
        return values[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return values[np.ix_(rows, cols)]


def _validity(
    job: SceneJob,
    read: NDArray[Any],
    gdal_mask: NDArray[np.uint8] | None,
    rows: NDArray[np.int64],
    cols: NDArray[np.int64],
) -> _Validity | None:
    """The pixels of ``read`` whose alpha and GDAL mask are not 0 (None: no alpha band, no mask)."""
    valid = None if job.alpha is None else read[job.alpha - 1] != 0
    if gdal_mask is not None:
        valid = gdal_mask != 0 if valid is None else valid & (gdal_mask != 0)
    return None if valid is None else _Validity(valid, rows, cols)


def _apply_step(
    job: SceneJob,
    step: BoundStep,
    values: NDArray[Any],
    in_rows: NDArray[np.int64],
    in_cols: NDArray[np.int64],
    out_rows: NDArray[np.int64],
    out_cols: NDArray[np.int64],
    target: NDArray[np.bool_],
    validity: _Validity | None = None,
) -> NDArray[Any]:
    """Apply one step: ``values`` at in_rows x in_cols -> result at out_rows x out_cols.

    No padded or float64 copy: the compiled loops read ``values`` in its dtype through
    per-tap index maps (:func:`geomask.convolve.tap_index`) that fold in the boundary mode
    and any gaps in the index sets (wrap, several steps), and visit only ``target`` pixels.
    Pixels ``validity`` marks invalid (alpha or GDAL mask 0) are left out of the support (they
    never contribute) and of the target (they never change), exactly as nodata pixels.
    """
    height, width = job.scene.grid.shape
    ry, rx = step.kernel.halo
    prow = tap_index(out_rows, ry, height, step.mode, in_rows)
    pcol = tap_index(out_cols, rx, width, step.mode, in_cols)
    support = _render(step.support, in_rows, in_cols) if step.support is not None else None
    if validity is not None:
        valid_in = validity.at(in_rows, in_cols)
        support = valid_in if support is None else support & valid_in
        target = target & validity.at(out_rows, out_cols)
    if step.mode == "leave":
        target = target & interior(out_rows, out_cols, (height, width), (ry, rx))
    if step.fill is not None:  # only nodata pixels change: see geomask.fill
        from geomask.fill import fill_nodata

        out = np.ascontiguousarray(values[:, prow[:, ry]][:, :, pcol[:, rx]])
        fill_nodata(
            values,
            prow,
            pcol,
            target,
            step.kernel,
            out,
            min_valid=step.fill,
            cval=step.cval,
            nodata=job.nodata,
            normalize=step.normalize,
            support=support,
        )
        return out
    out, _ = filter_indexed(
        values,
        prow,
        pcol,
        target,
        step.kernel,
        cval=step.cval,
        nodata=job.nodata,
        normalize=step.normalize,
        support=support,
    )
    return out


# --- per-class kernels (kernels_by) ---------------------------------------------------------------
#
# A GroupStep applies several kernels in one step, each inside its own region, all reading the same
# input (the previous step's result), never each other's output. Bound, it is a BoundGroup: a
# BoundStep whose kernel is only a halo envelope (zero weights of the largest half-sizes, so
# compute_window's index arithmetic reads enough rows and columns for every branch) and whose target
# is the union of the regions (for skipping windows and counting pixels). _apply_group calls
# _apply_step once per branch, with the branch's own kernel and region, on the same input index sets,
# and composites: a pixel takes the value of the last branch (in mapping order) whose region holds it,
# others keep their input value. That equals, byte for byte,
#
#     out = input.copy()
#     for region, kernel in regions:
#         out[region] = masked_convolve(input, kernel, region, ...)[region]
#
# since each branch is the exact single-kernel computation.


@dataclass(frozen=True)
class BoundGroup(BoundStep):
    branches: tuple[BoundStep, ...] = ()


def _apply_group(
    job: SceneJob,
    group: BoundGroup,
    values: NDArray[Any],
    in_rows: NDArray[np.int64],
    in_cols: NDArray[np.int64],
    out_rows: NDArray[np.int64],
    out_cols: NDArray[np.int64],
    target: NDArray[np.bool_],
    validity: _Validity | None = None,
) -> NDArray[Any]:
    """Apply every branch of ``group`` to the same ``values`` and composite (later branches win)."""
    result = values[:, _positions(out_rows, in_rows)][:, :, _positions(out_cols, in_cols)]
    if not target.any():
        return result
    for branch in group.branches:
        region = _render(branch.target, out_rows, out_cols)
        if region.any():
            out = _apply_step(job, branch, values, in_rows, in_cols, out_rows, out_cols, region, validity)
            result[:, region] = out[:, region]
    return result


def _apply_any(step: BoundStep) -> Callable[..., NDArray[Any]]:
    """The function that applies ``step``: :func:`_apply_group` for per-class steps."""
    return _apply_group if isinstance(step, BoundGroup) else _apply_step


def _target_union(
    targets: Sequence[NDArray[np.bool_]], rows: Sequence[NDArray[np.int64]], cols: Sequence[NDArray[np.int64]]
) -> NDArray[np.bool_] | None:
    """Pixels of the window (``rows[-1]`` x ``cols[-1]``) that any step's target selects (None: no step).

    ``targets[k]`` covers ``rows[k + 1]`` x ``cols[k + 1]``, which hold the window's rows and columns.
    """
    if not targets:
        return None
    union = targets[-1].copy()
    for k, target in enumerate(targets[:-1]):
        union |= target[np.ix_(_positions(rows[-1], rows[k + 1]), _positions(cols[-1], cols[k + 1]))]
    return union
