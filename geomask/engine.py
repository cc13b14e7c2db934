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
processes) in bounded batches; the next batch computes while the driver writes
the previous one, so at most two batches of windows are in memory. Tasks are pure, so a task run
twice gives the same bytes. On a dask.distributed cluster
(:mod:`geomask.cluster`) the same tasks run on the workers and their results
stream back to this process, still the only writer; a scene there is split in
two halves, :func:`plan_scene` (inspect, bind, plan the windows and the writer)
and :class:`ScenePlan`'s writing methods, so windows of many scenes can be in
flight at once.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import dask
import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window

from geomask.convolve import (
    changed_per_tile,
    effective_nodata,
    filter_indexed,
    interior,
    prepare_kernel,
    tap_index,
)
from geomask.errors import ConfigError, InputError, KernelError, OutputError, OutputExistsError, RunError
from geomask.io import OutputFile, SceneInfo, gdal_env, inspect_scene, open_scene, read_indexed
from geomask.kernels import Kernel
from geomask.masks.base import BoundMask, FullMask, MaskContext, MaskSource
from geomask.progress import NullObserver, Observer
from geomask.spec import GroupStep, OutputSpec, RunOptions, SceneReport, Step, is_distributed
from geomask.windows import check_mode, contiguous_runs, covers_whole_tiles, expand, plan_windows

__all__ = [
    "ScenePlan",
    "compute_window",
    "plan_scene",
    "process_scene",
]


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
    copy_tile: int | None = None  # the writer copies unchanged tiles of this side from the input


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
        target = _render(step.target, rows[0], cols[0])
        targets.insert(0, target)
        ry, rx = step.kernel.halo
        t_rows = rows[0][target.any(axis=1)]
        t_cols = cols[0][target.any(axis=0)]
        rows.insert(0, np.union1d(rows[0], expand(t_rows, ry, height, step.mode)))
        cols.insert(0, np.union1d(cols[0], expand(t_cols, rx, width, step.mode)))
    selected = _count_selected(targets, rows, cols)
    all_bands = range(1, scene.count + 1)
    if job.copy_tile and not any(t.any() for t in targets):
        return WindowResult(window, None, False, selected, 0)  # the writer copies the input's tiles
    with gdal_env(job.gdal_options), open_scene(scene.path) as ds:
        if not any(t.any() for t in targets):
            data = read_indexed(ds, all_bands, rows[-1], cols[-1])
            return WindowResult(window, data, False, selected, 0)
        # One read of every band (a pixel-interleaved file decodes them all anyway).
        read = read_indexed(ds, all_bands, rows[0], cols[0])
    own_r = _positions(rows[-1], rows[0])
    own_c = _positions(cols[-1], cols[0])
    values = read if len(job.bands) == scene.count else read[[b - 1 for b in job.bands]]
    for k, step in enumerate(job.steps):
        values = _apply_any(step)(job, step, values, rows[k], cols[k], rows[k + 1], cols[k + 1], targets[k])
    if len(job.bands) == scene.count:
        result = values
    else:
        result = read[:, own_r][:, :, own_c]
        result[[b - 1 for b in job.bands]] = values
    tile = job.copy_tile or max(h, w)  # counted per output tile when unchanged tiles are copied
    per_tile = changed_per_tile(read, result, (tile, tile), own_r, own_c)
    tiles = per_tile > 0 if job.copy_tile else None
    return WindowResult(window, result, True, selected, int(per_tile.sum()), tiles)


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
    """Apply one step: ``values`` at in_rows x in_cols -> result at out_rows x out_cols.

    No padded or float64 copy: the compiled loops read ``values`` in its dtype through
    per-tap index maps (:func:`geomask.convolve.tap_index`) that fold in the boundary mode
    and any gaps in the index sets (wrap, several steps), and visit only ``target`` pixels.
    """
    height, width = job.scene.grid.shape
    ry, rx = step.kernel.halo
    prow = tap_index(out_rows, ry, height, step.mode, in_rows)
    pcol = tap_index(out_cols, rx, width, step.mode, in_cols)
    support = _render(step.support, in_rows, in_cols) if step.support is not None else None
    if step.mode == "leave":
        target = target & interior(out_rows, out_cols, (height, width), (ry, rx))
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


# --- driving a scene ------------------------------------------------------------------------------


def resolve_nodata(scene: SceneInfo, nodata: float | Literal["auto"] | str | None) -> float | None:
    """The nodata value a run uses on ``scene``: ``auto`` (the file's), ``none``/None, or a number.

    The value is compared in the scene's dtype (:func:`geomask.convolve.effective_nodata`).
    """
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
    if final.is_dir():
        raise OutputError(f"{final}: the output path is a directory; give a file name")
    if final.exists() and not output.overwrite:
        raise OutputExistsError(
            f"{final}: the output exists; pass --overwrite (overwrite: true) to replace it"
        )
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
        if isinstance(step, GroupStep):  # per-class kernels: see _apply_group
            bound.append(_bind_group(scene, step, nodata))
            continue
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
    options = options or RunOptions()
    observer = observer or NullObserver()
    if is_distributed(options.scheduler):
        from geomask import cluster  # distributed is imported only when a cluster is used

        plan = plan_scene(worker_path(input_path), output, steps, bands=bands, nodata=nodata, options=options)
        plan.report.input = str(input_path)
        with cluster.connect(options) as client:
            [report] = cluster.run_scenes(client, [plan], options=options, observer=observer)
        return report
    plan = plan_scene(input_path, output, steps, bands=bands, nodata=nodata, options=options)
    observer.scene_started(plan.report.input, len(plan.windows))
    with gdal_env(options.gdal_options), plan:
        for result in _run_windows(plan.job, plan.windows, options):
            plan.write(result)
            observer.window_done(plan.report.input, 1)
        report = plan.commit()
    observer.scene_finished(report)
    return report


def worker_path(path: str | os.PathLike[str]) -> str | os.PathLike[str]:
    """``path`` as a dask worker must see it: absolute (a worker has its own working directory).

    GDAL URLs and virtual paths (``/vsis3/...``, ``https://...``) are returned unchanged.
    """
    text = str(path)
    if "://" in text or text.startswith("/vsi"):
        return path
    return Path(path).absolute()


@dataclass
class ScenePlan:
    """One scene ready to run: its window task arguments, its windows and its (unopened) writer.

    The writing half of a scene: use it as a context manager (or :meth:`open` / :meth:`close`),
    :meth:`write` every window's result in window order, then :meth:`commit`. Leaving without
    commit removes the temporary file, so nothing is left at the output path.

    Attributes
    ----------
    job : SceneJob
        What every window task of the scene needs (picklable).
    windows : list of Window
        The windows in writing order (row-major).
    writer : OutputFile
        The one writer of the output.
    report : SceneReport
        Filled in as windows are written.
    hold : contextlib.ExitStack
        The caller's contexts (its output lock, a staged upload), exited by :meth:`close`: normally
        once committed, with a :class:`~geomask.errors.RunError` otherwise (so an upload is skipped).
    after_commit : list of callables
        Run by :meth:`commit` once the file is in place (e.g. writing a STAC Item beside it).
    """

    job: SceneJob
    windows: list[Window]
    writer: OutputFile
    report: SceneReport
    started: float = field(default_factory=time.perf_counter)
    hold: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    committed: bool = False

    def open(self) -> None:
        """Create the temporary output file."""
        self.writer.__enter__()

    def write(self, result: WindowResult) -> None:
        """Write one window's pixels (its changed tiles, with tile copy) and add its counts to the report."""
        window, data, tiles = result.window, result.data, result.tiles
        if data is not None and tiles is None:
            self.writer.write(data, window)
        elif data is not None and tiles is not None and self.job.copy_tile:
            t = self.job.copy_tile
            for tr, tc in zip(*np.nonzero(tiles), strict=True):
                part = data[:, tr * t : (tr + 1) * t, tc * t : (tc + 1) * t]
                at = Window(window.col_off + tc * t, window.row_off + tr * t, part.shape[2], part.shape[1])
                self.writer.write(part, at)
        self.report.windows_computed += int(result.computed)
        self.report.windows_skipped += int(not result.computed)
        self.report.pixels_selected += result.selected
        self.report.pixels_changed += result.changed

    def commit(self) -> SceneReport:
        """Finish the file (check, COG conversion), rename it into place, run ``after_commit``."""
        self.writer.commit()
        for action in self.after_commit:
            action()
        self.committed = True
        self.report.seconds = time.perf_counter() - self.started
        return self.report

    def close(self) -> None:
        """Release the writer (removing the temporary file unless committed), then ``hold``."""
        try:
            self.writer.__exit__(None, None, None)
        finally:
            if self.committed:
                self.hold.close()
            else:
                unfinished = RunError(f"{self.report.input}: the scene did not finish")
                self.hold.__exit__(RunError, unfinished, None)

    def __enter__(self) -> ScenePlan:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def plan_scene(
    input_path: str | os.PathLike[str],
    output: OutputSpec,
    steps: Sequence[Step],
    *,
    bands: Sequence[int] | None = None,
    nodata: float | Literal["auto"] | None = "auto",
    options: RunOptions | None = None,
) -> ScenePlan:
    """Inspect ``input_path``, bind ``steps`` to its grid and plan its windows and writer.

    Parameters are those of :func:`process_scene`. Nothing is read beyond the scene's header
    and the mask files, and nothing is written: the writer opens with :meth:`ScenePlan.open`.

    Raises
    ------
    InputError, ConfigError, KernelError, OutputError
        As :func:`process_scene`, before any window runs.
    """
    started = time.perf_counter()
    options = options or RunOptions()
    with gdal_env(options.gdal_options):
        scene = inspect_scene(input_path)
    final = _check_output(scene, output)
    nd = resolve_nodata(scene, nodata)
    band_list = _resolve_bands(scene, bands)
    bound = bind_steps(scene, steps, nd)
    out_block = _output_block(scene, output.block_size)
    windows = _window_plan(scene, options, out_block)
    report = SceneReport(str(input_path), str(final), "done", windows_total=len(windows))
    writer = OutputFile(
        final,
        scene,
        block_size=out_block,
        compress=output.compress,
        creation_options=output.creation_options,
        tags=output.tags,
        cog=output.format == "COG",
        overview_resampling=output.overview_resampling,
        copy_tiles=options.copy_tiles,
    )
    tile = writer.copy_tile
    if tile and not all(covers_whole_tiles(w, (tile, tile), scene.grid.shape) for w in windows):
        writer.no_tile_copy()
        tile = None
    job = SceneJob(scene, bound, band_list, nd, dict(options.gdal_options), tile)
    return ScenePlan(job, windows, writer, report, started)


def _output_block(scene: SceneInfo, block_size: int | None) -> int:
    """Output tile side: ``block_size`` (a multiple of 16; None: the input's square tiles of 128 to
    2048 pixels, else 512), smaller for small scenes."""
    if block_size is None:
        bh, bw = scene.block_shape
        tiled = bh == bw and bh % 16 == 0 and 128 <= bh <= 2048 and bw < scene.grid.width
        block_size = bh if tiled else 512
    side = max(16, min(block_size, 16 * math.ceil(max(scene.grid.shape) / 16)))
    return int(16 * math.ceil(side / 16))


def _run_windows(job: SceneJob, windows: Sequence[Window], options: RunOptions) -> Iterator[WindowResult]:
    """Yield WindowResults in window order, computing bounded batches with dask (one batch ahead)."""
    workers = options.workers or os.cpu_count() or 1
    batch = options.batch or max(2, 4 * workers)
    task: Callable[..., WindowResult] = dask.delayed(compute_window, pure=True)
    job_d = dask.delayed(job, name=f"scenejob-{dask.base.tokenize(job.scene, job.bands, job.nodata)}")
    compute_kwargs: dict[str, Any] = {"scheduler": options.scheduler}
    with contextlib.ExitStack() as stack:
        if options.scheduler == "processes":
            # One pool for the whole scene: dask would otherwise start processes per batch.
            # "spawn": forking a process that already runs GDAL and numba threads is unsafe.
            compute_kwargs["pool"] = stack.enter_context(_process_pool(workers))
        elif options.scheduler == "threads":
            compute_kwargs["num_workers"] = workers
        if options.scheduler == "synchronous" or len(windows) <= batch:
            for start in range(0, len(windows), batch):
                chunk = windows[start : start + batch]
                yield from dask.compute(*[task(job_d, w) for w in chunk], **compute_kwargs)
            return

        def compute(start: int) -> tuple[WindowResult, ...]:
            chunk = windows[start : start + batch]
            return dask.compute(*[task(job_d, w) for w in chunk], **compute_kwargs)

        # Overlap writing with computing: while the caller writes batch k (GDAL compresses in the
        # driving thread), batch k + 1 computes in the background. Measured on the 8192^2 bench
        # scene (2 cores) the driver otherwise left a core idle during every write. At most two
        # batches are in memory.
        prefetch = ThreadPoolExecutor(1, thread_name_prefix="geomask-batch")
        pending = prefetch.submit(compute, 0)
        try:
            for start in range(0, len(windows), batch):
                results = pending.result()
                if start + batch < len(windows):
                    pending = prefetch.submit(compute, start + batch)
                yield from results
        except BaseException:
            # Ctrl-C or a failed write: do not wait for the batch ahead (its results are dropped;
            # the tasks are pure). The process pool, if any, is terminated on the way out.
            prefetch.shutdown(wait=False, cancel_futures=True)
            raise
        prefetch.shutdown(wait=True)


@contextlib.contextmanager
def _process_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` spawned processes immune to SIGINT, shut down without queued work on error.

    Ctrl-C reaches every process of the terminal's group: workers would die mid-import printing
    tracebacks and break the pool. They are started at once with SIGINT blocked (the mask is
    inherited through ``exec``; CPython's own ``resource_tracker`` starts its process the same way),
    so only the driving process handles it and raises ``KeyboardInterrupt``; a Ctrl-C that comes
    while they start stays pending in the driver and is raised as soon as they have. On that (or any
    error) the workers are terminated and the windows not yet started dropped.
    """
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            for _ in range(workers):  # each submit starts one more worker now
                pool.submit(os.getpid)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        yield pool
    except BaseException:
        _terminate_pool(pool)
        raise
    pool.shutdown(wait=True)


def _terminate_pool(pool: ProcessPoolExecutor) -> None:
    """Stop ``pool``'s workers now and shut it down, dropping queued and running tasks.

    Window tasks are pure (they only read), so stopping the workers mid-task loses nothing; waiting
    could take long (a worker may be compiling kernels). Python < 3.14 has no public
    ``ProcessPoolExecutor.terminate_workers``, hence the private attributes (each looked up with a
    default). A worker killed while it sends a result leaves a partial message in the result pipe,
    and the pool's manager thread then waits in ``recv`` for the rest forever (seen 1 run in 10 of
    tests/test_faults.py's process-group Ctrl-C): the pool itself holds the pipe's write end open.
    Once the workers are gone that end is closed, so the read ends (EOF), the pool marks itself
    broken and its shutdown returns.
    """
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    deadline = time.monotonic() + 10
    for process in processes:  # exited: their copies of the pipe's write end are closed
        with contextlib.suppress(Exception):
            multiprocessing.connection.wait([process.sentinel], max(0.0, deadline - time.monotonic()))
    writer = getattr(getattr(pool, "_result_queue", None), "_writer", None)
    if writer is not None:
        with contextlib.suppress(OSError):
            writer.close()
    pool.shutdown(wait=True, cancel_futures=True)


# --- per-class kernels (kernels_by) ---------------------------------------------------------------
#
# A GroupStep applies several kernels in one step, each inside its own region, all reading the same
# input (the previous step's result), never each other's output. Bound, it is a _BoundGroup: a
# _BoundStep whose kernel is only a halo envelope (zero weights of the largest half-sizes, so
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
class _BoundGroup(_BoundStep):
    branches: tuple[_BoundStep, ...] = ()


def _bind_group(scene: SceneInfo, step: GroupStep, nodata: float | None) -> _BoundGroup:
    """Bind every branch as a step of its own, and the envelope compute_window needs."""
    branches = bind_steps(scene, step.branches(), nodata)
    ry = max(b.kernel.halo[0] for b in branches)
    rx = max(b.kernel.halo[1] for b in branches)
    envelope = Kernel("kernels_by", np.zeros((2 * ry + 1, 2 * rx + 1)))
    from geomask.masks.algebra import BoundAny

    target = BoundAny(tuple(b.target for b in branches), scene.grid.shape)
    first = branches[0]
    return _BoundGroup(envelope, target, None, first.mode, first.cval, first.normalize, branches)


def step_mask(step: Step | GroupStep) -> MaskSource | None:
    """Where ``step`` may change output pixels: its mask, or the union of a per-class step's regions.

    None: everywhere.
    """
    if not isinstance(step, GroupStep):
        return step.mask  # type: ignore[return-value]
    from geomask.masks.algebra import AnySource

    return AnySource(tuple(region for region, _ in step.regions))  # type: ignore[arg-type]


def _apply_group(
    job: SceneJob,
    group: _BoundGroup,
    values: NDArray[Any],
    in_rows: NDArray[np.int64],
    in_cols: NDArray[np.int64],
    out_rows: NDArray[np.int64],
    out_cols: NDArray[np.int64],
    target: NDArray[np.bool_],
) -> NDArray[Any]:
    """Apply every branch of ``group`` to the same ``values`` and composite (later branches win)."""
    result = values[:, _positions(out_rows, in_rows)][:, :, _positions(out_cols, in_cols)]
    if not target.any():
        return result
    for branch in group.branches:
        region = _render(branch.target, out_rows, out_cols)
        if region.any():
            out = _apply_step(job, branch, values, in_rows, in_cols, out_rows, out_cols, region)
            result[:, region] = out[:, region]
    return result


def _apply_any(step: _BoundStep) -> Callable[..., NDArray[Any]]:
    """The function that applies ``step``: :func:`_apply_group` for per-class steps."""
    return _apply_group if isinstance(step, _BoundGroup) else _apply_step


def _count_selected(
    targets: Sequence[NDArray[np.bool_]], rows: Sequence[NDArray[np.int64]], cols: Sequence[NDArray[np.int64]]
) -> int:
    """Pixels of the window (``rows[-1]`` x ``cols[-1]``) that any step's target selects.

    ``targets[k]`` covers ``rows[k + 1]`` x ``cols[k + 1]``, which hold the window's rows and columns.
    """
    if not targets:
        return 0
    union = targets[-1].copy()
    for k, target in enumerate(targets[:-1]):
        union |= target[np.ix_(_positions(rows[-1], rows[k + 1]), _positions(cols[-1], cols[k + 1]))]
    return int(union.sum())
