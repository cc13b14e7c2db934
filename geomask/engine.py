"""The windowed engine: one scene through a list of steps, window by window, in parallel.

Strategy
--------
The scene is cut into windows aligned to the input's blocks (and the output's
tiles). Each window is one pure task, :func:`compute_window`, that opens the
scene itself, reads what it needs and returns the finished pixels of its window
for every band; the process that drives the run is the only writer of the
output file (several processes writing one compressed GeoTIFF lose tiles).

Halos and steps. A step's kernel needs a halo of its half-size around every
pixel it computes. For the last step that is the window itself; for step k the
rows (and, independently, the columns) it must produce are those step k+1
reads, after the boundary mode maps positions beyond the scene edge back onto
scene pixels (:func:`geomask.windows.expand`). Working backwards from the window
gives, for every step, the sorted set of scene rows and columns it computes;
the first step reads the scene at its sets. Inner windows thus read plain
neighbours, edge windows read what the mode says (``wrap`` reads the far
side), and every pixel is computed from exactly the values the whole-image
computation would use, in the same summation order: the tiled result equals the
whole-image :func:`geomask.masked_convolve`, byte for byte, for any window size.

Skipping. Masks render before pixels are read. A window in which no step
selects a pixel (of what that step computes) is read once, without halo, and
passed through; its pixels are never filtered.

Parallelism. Tasks run on dask's local schedulers (threads by default, or
processes) in bounded batches, so at most a batch of windows is in memory;
results are written as each batch completes. Tasks are pure, so a task run
twice gives the same bytes.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import dask
import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window

from geomask.convolve import effective_nodata, filter_padded, interior_mask, prepare_kernel
from geomask.errors import ConfigError, InputError, KernelError, OutputError, OutputExistsError
from geomask.io import OutputFile, SceneInfo, gdal_env, inspect_scene, open_scene, read_indexed
from geomask.kernels import Kernel
from geomask.masks.base import BoundMask, FullMask, MaskContext, MaskSource
from geomask.progress import NullObserver, Observer
from geomask.windows import Mode, check_mode, contiguous_runs, expand, plan_windows, source_index

__all__ = [
    "OutputSpec",
    "RunOptions",
    "SceneReport",
    "Step",
    "compute_window",
    "process_scene",
]

Scheduler = Literal["threads", "processes", "synchronous"]


@dataclass(frozen=True)
class Step:
    """One kernel applied inside one mask.

    Attributes
    ----------
    kernel : Kernel
        What to apply (:func:`geomask.kernels.get`).
    mask : MaskSource or None
        Where output pixels change (the target); None = everywhere.
    op : {"convolve", "correlate"}
        ``convolve`` flips the kernel, as ``scipy.ndimage.convolve``.
    mode : str
        Boundary mode at the scene edge (``reflect``, ``mirror``, ``nearest``, ``wrap``,
        ``constant``, ``leave``).
    cval : float
        Value beyond the scene edge for ``constant``.
    normalize : bool
        Renormalise over contributing neighbours where some are nodata or unsupported.
    support : MaskSource or None
        Which neighbours may contribute (None = all valid pixels).
    """

    kernel: Kernel
    mask: MaskSource | None = None
    op: Literal["convolve", "correlate"] = "convolve"
    mode: Mode = "reflect"
    cval: float = 0.0
    normalize: bool = True
    support: MaskSource | None = None


@dataclass(frozen=True)
class OutputSpec:
    """Where and how to write a scene's result.

    ``format`` COG converts the finished tiled GeoTIFF once with GDAL's COG driver.
    ``creation_options`` are GDAL GTiff/COG creation options (e.g. ``{"PREDICTOR": "2"}``);
    ``tags`` are extra metadata tags written on the output.
    """

    path: Path
    format: Literal["GTiff", "COG"] = "GTiff"
    compress: str = "deflate"
    creation_options: Mapping[str, str] = field(default_factory=dict)
    overwrite: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)
    block_size: int = 512
    overview_resampling: str = "average"


@dataclass(frozen=True)
class RunOptions:
    """How to run: window size, scheduler, workers, GDAL configuration.

    ``window_size`` (pixels) is rounded up to a multiple of the input's block shape and
    of the output's tile size unless ``align_windows`` is False (then windows are exactly
    ``window_size`` pixels, for tests of arbitrary tilings). ``batch`` bounds how many
    windows are in memory at once (default: 4 per worker).
    """

    window_size: int = 1024
    scheduler: Scheduler = "threads"
    workers: int | None = None
    gdal_options: Mapping[str, str] = field(default_factory=dict)
    align_windows: bool = True
    batch: int | None = None


@dataclass
class SceneReport:
    """What happened to one scene.

    ``notes`` are remarks for the user, e.g. how kernel sizes in map units converted to pixels.
    """

    input: str
    output: str
    status: Literal["done", "failed", "skipped"]
    windows_total: int = 0
    windows_computed: int = 0
    windows_skipped: int = 0
    pixels_selected: int = 0
    pixels_changed: int = 0
    seconds: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _BoundStep:
    kernel: Kernel  # prepared for correlation
    target: BoundMask
    support: BoundMask | None
    mode: str
    cval: float
    normalize: bool


@dataclass(frozen=True)
class SceneJob:
    """Everything a window task needs; picklable (paths and bound masks, no handles)."""

    scene: SceneInfo
    steps: tuple[_BoundStep, ...]
    bands: tuple[int, ...]
    nodata: float | None
    gdal_options: Mapping[str, str] = field(default_factory=dict)


@dataclass
class WindowResult:
    """The finished pixels of one window (all bands) and its counts."""

    window: Window
    data: NDArray[Any]
    computed: bool
    selected: int
    changed: int


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
    scene = job.scene
    height, width = scene.grid.shape
    r0, c0 = int(window.row_off), int(window.col_off)
    h, w = int(window.height), int(window.width)
    # Index sets each step must produce, from the last step back to the first.
    rows = [np.arange(r0, r0 + h, dtype=np.int64)]
    cols = [np.arange(c0, c0 + w, dtype=np.int64)]
    for step in reversed(job.steps):
        ry, rx = step.kernel.halo
        rows.insert(0, expand(rows[0], ry, height, step.mode))
        cols.insert(0, expand(cols[0], rx, width, step.mode))
    # rows[k] / cols[k]: what step k reads (k = 0: the scene); rows[k+1]: what it produces.
    targets = [_render(s.target, rows[k + 1], cols[k + 1]) for k, s in enumerate(job.steps)]
    selected = int(targets[-1].sum()) if targets else 0
    with gdal_env(job.gdal_options), open_scene(scene.path) as ds:
        if not any(t.any() for t in targets):
            data = read_indexed(ds, range(1, scene.count + 1), rows[-1], cols[-1])
            return WindowResult(window, data, False, selected, 0)
        values = read_indexed(ds, job.bands, rows[0], cols[0])
        everything = None
        if len(job.bands) != scene.count:
            everything = read_indexed(ds, range(1, scene.count + 1), rows[-1], cols[-1])
    if everything is None:
        # All bands are filtered: the window's original pixels are inside what step 1 read.
        original = values[:, _positions(rows[-1], rows[0])][:, :, _positions(cols[-1], cols[0])]
    else:
        original = everything
    for k, step in enumerate(job.steps):
        values = _apply_step(job, step, values, rows[k], cols[k], rows[k + 1], cols[k + 1], targets[k])
    if everything is None:
        result = values
    else:
        result = everything.copy()
        result[[b - 1 for b in job.bands]] = values
    changed = _count_changed(original, result)
    return WindowResult(window, result, True, selected, changed)


def _count_changed(before: NDArray[Any], after: NDArray[Any]) -> int:
    u = np.dtype(f"u{before.dtype.itemsize}")
    return int(np.count_nonzero((before.view(u) != after.view(u)).any(axis=0)))


def _apply_step(
    job: SceneJob,
    step: _BoundStep,
    values: NDArray[Any],
    in_rows: NDArray[np.int64],
    in_cols: NDArray[np.int64],
    out_rows: NDArray[np.int64],
    out_cols: NDArray[np.int64],
    target: NDArray[np.bool_],
) -> NDArray[Any]:
    """Apply one step: ``values`` at in_rows x in_cols -> result at out_rows x out_cols."""
    height, width = job.scene.grid.shape
    ry, rx = step.kernel.halo
    support = _render(step.support, in_rows, in_cols) if step.support is not None else None
    out = np.empty((values.shape[0], out_rows.size, out_cols.size), dtype=values.dtype)
    values64 = values.astype(np.float64)
    r_pos = 0
    for a, b in contiguous_runs(out_rows):
        prow = _positions(source_index(np.arange(a - ry, b + ry), height, step.mode), in_rows)
        own_r = _positions(np.arange(a, b), in_rows)
        c_pos = 0
        for c, d in contiguous_runs(out_cols):
            pcol = _positions(source_index(np.arange(c - rx, d + rx), width, step.mode), in_cols)
            own_c = _positions(np.arange(c, d), in_cols)
            padded = values64[:, np.maximum(prow, 0)][:, :, np.maximum(pcol, 0)]
            if (prow < 0).any():
                padded[:, prow < 0, :] = step.cval
            if (pcol < 0).any():
                padded[:, :, pcol < 0] = step.cval
            center = values[:, own_r][:, :, own_c]
            sup = None
            if support is not None:
                sup = support[np.maximum(prow, 0)][:, np.maximum(pcol, 0)]
                sup[prow < 0, :] = True
                sup[:, pcol < 0] = True
            tgt = target[r_pos : r_pos + b - a, c_pos : c_pos + d - c]
            interior = None
            if step.mode == "leave":
                interior = interior_mask((b - a, d - c), (a, c), (height, width), (ry, rx))
            block, _ = filter_padded(
                np.ascontiguousarray(padded),
                center,
                np.ascontiguousarray(tgt),
                step.kernel,
                nodata=job.nodata,
                normalize=step.normalize,
                support=sup,
                interior=interior,
                const_rows=prow < 0,
            )
            out[:, r_pos : r_pos + b - a, c_pos : c_pos + d - c] = block
            c_pos += d - c
        r_pos += b - a
    return out


# --- driving a scene ------------------------------------------------------------------------------


def _resolve_nodata(scene: SceneInfo, nodata: float | Literal["auto"] | str | None) -> float | None:
    if nodata == "auto":
        return effective_nodata(scene.nodata, scene.dtype)
    if nodata is None or nodata == "none":
        return None
    try:
        value = float(nodata)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"nodata must be 'auto', 'none' or a number, got {nodata!r}") from e
    return effective_nodata(value, scene.dtype)


def _resolve_bands(scene: SceneInfo, bands: Sequence[int] | None) -> tuple[int, ...]:
    if bands is None:
        return tuple(range(1, scene.count + 1))
    out = []
    for b in bands:
        if isinstance(b, bool) or int(b) != b or not 1 <= int(b) <= scene.count:
            raise InputError(
                f"{scene.path}: band {b} does not exist: bands are numbered 1..{scene.count} (1-based)"
            )
        out.append(int(b))
    if len(set(out)) != len(out):
        raise ConfigError(f"bands {list(bands)} lists a band twice")
    return tuple(out)


def _window_plan(scene: SceneInfo, options: RunOptions, out_block: int) -> list[Window]:
    height, width = scene.grid.shape
    if not options.align_windows:
        return plan_windows(height, width, (1, 1), options.window_size)
    bh, bw = scene.block_shape
    # Windows a multiple of both the input's blocks and the output's tiles, so each input
    # block is read by one window and each output tile written once; if that common
    # multiple is far beyond the wished size, align to the output tiles only.
    lh, lw = math.lcm(bh, out_block), math.lcm(bw, out_block)
    if lh > 4 * options.window_size:
        lh = out_block
    if lw > 4 * options.window_size:
        lw = out_block
    return plan_windows(height, width, (lh, lw), options.window_size)


def _check_output(scene: SceneInfo, output: OutputSpec) -> Path:
    final = Path(output.path)
    if "://" not in scene.path and final.resolve() == Path(scene.path).resolve():
        raise ConfigError(f"{final}: the output path is the input scene; choose another output.path")
    if final.exists() and not output.overwrite:
        raise OutputExistsError(
            f"{final}: the output exists; pass --overwrite (overwrite: true) to replace it"
        )
    if final.is_dir():
        raise OutputError(f"{final}: the output path is a directory; give a file name")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{final.parent}: cannot create the output directory ({e.strerror})") from e
    if not os.access(final.parent, os.W_OK):
        raise OutputError(f"{final.parent}: the output directory is not writable; choose another output.path")
    return final


def bind_steps(scene: SceneInfo, steps: Sequence[Step], nodata: float | None) -> tuple[_BoundStep, ...]:
    """Validate ``steps`` against ``scene`` and bind their masks to its grid."""
    if not steps:
        raise ConfigError("a pipeline needs at least one step (a mask and a kernel)")
    context = MaskContext(scene.grid, scene.path, nodata)
    bound = []
    for step in steps:
        check_mode(step.mode)
        kernel = prepare_kernel(step.kernel, step.op)
        kernel.check_fits(*scene.grid.shape)
        if (
            kernel.kind == "linear"
            and step.normalize
            and kernel.weight_sum <= 0
            and (nodata is not None or step.support is not None)
        ):
            raise KernelError(
                f"kernel {kernel.name!r} has weights summing to {kernel.weight_sum:g}: it cannot be "
                "renormalised over nodata or unsupported neighbours; set normalize: false "
                "(missing neighbours then count as 0) or nodata: none"
            )
        target = step.mask.bind(context) if step.mask is not None else FullMask()
        support = step.support.bind(context) if step.support is not None else None
        bound.append(_BoundStep(kernel, target, support, step.mode, float(step.cval), step.normalize))
    return tuple(bound)


def process_scene(
    input_path: str | os.PathLike[str],
    output: OutputSpec,
    steps: Sequence[Step],
    *,
    bands: Sequence[int] | None = None,
    nodata: float | Literal["auto"] | None = "auto",
    options: RunOptions | None = None,
    observer: Observer | None = None,
) -> SceneReport:
    """Run ``steps`` over one scene and write the georeferenced result.

    Parameters
    ----------
    input_path : path or GDAL URL
        A GeoTIFF (tiled or striped, any supported dtype).
    output : OutputSpec
        The output path, format and creation options.
    steps : sequence of Step
        Applied in order; a later step sees the earlier steps' result.
    bands : 1-based band numbers, or None for all
        The bands the steps apply to; the other bands are copied unchanged.
    nodata : "auto", a number, or None
        ``auto`` uses the file's nodata. Nodata pixels (and NaN) never contribute and never change.
    options : RunOptions
        Window size, scheduler, workers, GDAL configuration options.
    observer : Observer
        Receives progress events (from the calling thread).

    Returns
    -------
    SceneReport with window and pixel counts.

    Raises
    ------
    InputError, ConfigError, KernelError, OutputError, RunError
        Nothing is left at the output path when an error is raised.

    Notes
    -----
    The output has the input's CRS, transform, dtype, nodata, band count, band
    descriptions, colour interpretation, scale/offset and tags. Memory is bounded by the
    window size times the batch size, not by the scene size.
    """
    started = time.perf_counter()
    options = options or RunOptions()
    observer = observer or NullObserver()
    with gdal_env(options.gdal_options):
        scene = inspect_scene(input_path)
    final = _check_output(scene, output)
    nd = _resolve_nodata(scene, nodata)
    band_list = _resolve_bands(scene, bands)
    bound = bind_steps(scene, steps, nd)
    job = SceneJob(scene, bound, band_list, nd, dict(options.gdal_options))
    out_block = _output_block(scene, output.block_size)
    windows = _window_plan(scene, options, out_block)
    report = SceneReport(str(input_path), str(final), "done", windows_total=len(windows))
    observer.scene_started(str(input_path), len(windows))
    writer = OutputFile(
        final,
        scene,
        block_size=out_block,
        compress=output.compress,
        creation_options=output.creation_options,
        tags=output.tags,
        cog=output.format == "COG",
        overview_resampling=output.overview_resampling,
    )
    with gdal_env(options.gdal_options), writer:
        for result in _run_windows(job, windows, options):
            writer.write(result.data, result.window)
            report.windows_computed += int(result.computed)
            report.windows_skipped += int(not result.computed)
            report.pixels_selected += result.selected
            report.pixels_changed += result.changed
            observer.window_done(str(input_path), 1)
        writer.commit()
    report.seconds = time.perf_counter() - started
    observer.scene_finished(report)
    return report


def _output_block(scene: SceneInfo, block_size: int) -> int:
    """Output tile side: ``block_size`` (a multiple of 16), smaller for small scenes."""
    side = max(16, min(block_size, 16 * math.ceil(max(scene.grid.shape) / 16)))
    return int(16 * math.ceil(side / 16))


def _run_windows(job: SceneJob, windows: Sequence[Window], options: RunOptions) -> Iterator[WindowResult]:
    """Yield WindowResults in window order, computing bounded batches with dask."""
    workers = options.workers or os.cpu_count() or 1
    batch = options.batch or max(2, 4 * workers)
    task: Callable[..., WindowResult] = dask.delayed(compute_window, pure=True)
    job_d = dask.delayed(job, name=f"scenejob-{dask.base.tokenize(job.scene, job.bands, job.nodata)}")
    compute_kwargs: dict[str, Any] = {"scheduler": options.scheduler}
    with contextlib.ExitStack() as stack:
        if options.scheduler == "processes":
            # One pool for the whole scene: dask would otherwise start processes per batch.
            # "spawn": forking a process that already runs GDAL and numba threads is unsafe.
            compute_kwargs["pool"] = stack.enter_context(
                ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            )
        elif options.scheduler == "threads":
            compute_kwargs["num_workers"] = workers
        for start in range(0, len(windows), batch):
            chunk = windows[start : start + batch]
            results = dask.compute(*[task(job_d, w) for w in chunk], **compute_kwargs)
            yield from results
