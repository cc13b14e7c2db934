"""Scene planning and the writer's life cycle: the windows of a scene and its one output file.

:func:`plan_scene` inspects the scene, binds the steps, plans the windows and creates (without
opening) the writer; :class:`ScenePlan` is the writing half, used by every executor: open, write every
window's result in window order, commit (or close without commit: nothing is left at the output path).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from rasterio.windows import Window

from geomask.dtypes import Conversion, conversion_problem, output_nodata, output_nodata_problem
from geomask.engine.bind import bind_steps, resolve_bands, resolve_nodata
from geomask.engine.task import SceneJob, WindowResult
from geomask.engine.tilecache import FirstTile, shareable
from geomask.errors import ConfigError, OutputError, OutputExistsError, RunError
from geomask.io import SceneInfo, gdal_env, inspect_scene
from geomask.output.writer import OutputFile
from geomask.pixels import effective_nodata
from geomask.spec import OutputSpec, RunOptions, SceneReport, Step, Validity
from geomask.windows import covers_whole_tiles, plan_windows

__all__ = ["ScenePlan", "plan_scene", "worker_path"]


_IN_PROCESS = ("threads", "synchronous")
"""Schedulers whose window tasks run in this process (they share its tile cache)."""


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
        if data is not None and (tiles is None or tiles.all()):
            # Every tile of the window changed: one write of the whole (contiguous) window, which
            # GDAL splits into the same tiles, in the same order, as one write per tile would;
            # a tile's strided slice would first be copied to a contiguous array (rasterio).
            self.writer.write(data, window, result.mask)
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
        self.report.nodata_collisions += result.collisions

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
    validity: Validity = "honour",
) -> ScenePlan:
    """Inspect ``input_path``, bind ``steps`` to its grid and plan its windows and writer.

    Parameters are those of :func:`geomask.process.process_scene`. Nothing is read beyond the scene's header
    and the mask files, and nothing is written: the writer opens with :meth:`ScenePlan.open`.

    Raises
    ------
    InputError, ConfigError, KernelError, OutputError
        As :func:`geomask.process.process_scene`, before any window runs.
    """
    started = time.perf_counter()
    options = options or RunOptions()
    first = FirstTile(str(input_path))
    with gdal_env(options.gdal_options):
        scene = inspect_scene(input_path, read_first=first)
    final = _check_output(scene, output)
    nd = resolve_nodata(scene, nodata)
    honour = validity == "honour"
    alpha = scene.alpha if honour else None
    dataset_mask = honour and scene.dataset_mask
    band_list = resolve_bands(scene, bands, alpha=alpha is not None)
    bound = bind_steps(scene, steps, nd, masked=alpha is not None or dataset_mask)
    out_scene, convert, tags = _conversion(scene, output, nd, masked=alpha is not None or dataset_mask)
    out_block = _output_block(scene, output.block_size)
    windows = _window_plan(scene, options, out_block)
    declared = effective_nodata(out_scene.nodata, out_scene.dtype)
    report = SceneReport(
        str(input_path),
        str(final),
        "done",
        windows_total=len(windows),
        output_nodata=None if declared is None else f"{declared:g}",
    )
    writer = OutputFile(
        final,
        out_scene,
        block_size=out_block,
        compress=output.compress,
        creation_options=output.creation_options,
        tags=tags,
        cog=output.format == "COG",
        overview_resampling=output.overview_resampling,
        # Copied tiles hold the input's dtype, and its mask band is not copied.
        copy_tiles=options.copy_tiles and convert is None and not dataset_mask,
        dataset_mask=dataset_mask,
    )
    tile = writer.copy_tile
    if tile and not all(covers_whole_tiles(w, (tile, tile), scene.grid.shape) for w in windows):
        writer.no_tile_copy()
        tile = None
    if tile and shareable(scene.path, scene.block_shape) and options.scheduler in _IN_PROCESS:
        first.keep()  # the windows read through this process's tile cache: the check's block serves them
    step_nodata = nd if convert is None else convert.out_nodata
    job = SceneJob(
        scene,
        bound,
        band_list,
        step_nodata,
        dict(options.gdal_options),
        tile,
        convert,
        alpha,
        dataset_mask,
        out_nodata=declared,
    )
    return ScenePlan(job, windows, writer, report, started)


def _conversion(
    scene: SceneInfo, output: OutputSpec, nodata: float | None, *, masked: bool = False
) -> tuple[SceneInfo, Conversion | None, dict[str, str]]:
    """The output's scene description, the window conversion (None: pixels written as computed) and
    the tags.

    ``nodata`` is the run's (the input's invalid value); ``masked``: an alpha band or GDAL mask marks
    invalid pixels too. With ``output.nodata`` a number, the output declares it and a conversion
    rewrites the invalid pixels to it; it is None only when no pixel can need that (the same dtype,
    the value already the input's nodata, nothing masked), so unchanged tiles can still be copied.

    Raises
    ------
    ConfigError
        ``output.dtype`` cannot hold the scene's values and ``clip`` is off, or is not supported;
        ``output.nodata`` is not a value of the output dtype.
    """
    tags = dict(output.tags)
    same = output.dtype is None or np.dtype(output.dtype) == np.dtype(scene.dtype)
    target = np.dtype(scene.dtype if same else output.dtype).name
    if not same:
        problem = conversion_problem(scene.dtype, target, output.clip)
        if problem is not None:
            raise ConfigError(f"{scene.path} is {scene.dtype}: {problem}")
        tags["GEOMASK_DTYPE"] = f"{target} (from {scene.dtype}{', clipped' if output.clip else ''})"
    step_nodata = nodata if same else output_nodata(nodata, scene.dtype, target)
    if output.nodata == "auto":
        if same:
            return scene, None, tags
        file_nodata = output_nodata(scene.nodata, scene.dtype, target)
        tags["GEOMASK_NODATA"] = "none" if file_nodata is None else f"{file_nodata:g}"
        return (
            dataclasses.replace(scene, dtype=target, nodata=file_nodata),
            Conversion(target, nodata, step_nodata),
            tags,
        )
    value = float(output.nodata)
    problem = output_nodata_problem(value, target)
    if problem is not None:
        raise ConfigError(f"{scene.path}: output.nodata: {problem}")
    tags["GEOMASK_NODATA"] = f"{value:g}"
    out_scene = dataclasses.replace(scene, dtype=target, nodata=value)
    if same and not masked and not _may_differ(nodata, value, target):
        return out_scene, None, tags
    return out_scene, Conversion(target, nodata, step_nodata, final_nodata=value), tags


def _may_differ(nodata: float | None, value: float, dtype: str) -> bool:
    """Whether a pixel invalid by value (``nodata``, or NaN for a float ``dtype``) may differ from
    ``value``, the output's nodata."""
    if np.dtype(dtype).kind == "f":
        if math.isnan(value):  # NaN pixels already are the value
            return nodata is not None and not math.isnan(nodata)
        return True  # NaN pixels may occur, whatever the nodata
    return nodata is not None and nodata != value


def _output_block(scene: SceneInfo, block_size: int | None) -> int:
    """Output tile side: ``block_size`` (a multiple of 16; None: the input's square tiles of 128 to
    2048 pixels, else 512), smaller for small scenes."""
    if block_size is None:
        bh, bw = scene.block_shape
        tiled = bh == bw and bh % 16 == 0 and 128 <= bh <= 2048 and bw < scene.grid.width
        block_size = bh if tiled else 512
    side = max(16, min(block_size, 16 * math.ceil(max(scene.grid.shape) / 16)))
    return int(16 * math.ceil(side / 16))
