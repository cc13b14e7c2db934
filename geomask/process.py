"""The facade: one scene through the engine, on the executor its scheduler names.

:func:`process_scene` plans the scene (:func:`geomask.engine.plan.plan_scene`), runs its windows on a
local executor (:mod:`geomask.executors.local`: threads, processes, synchronous) or on a
dask.distributed cluster (:mod:`geomask.executors.distributed`, imported only then), writes them in
window order and commits the output.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from geomask.engine.plan import plan_scene, worker_path
from geomask.executors.local import run_windows
from geomask.executors.scenes import all_computed
from geomask.executors.sizing import fit_options
from geomask.io import gdal_env
from geomask.progress import NullObserver, Observer
from geomask.spec import OutputSpec, RunOptions, SceneReport, Step, Validity, is_distributed

if TYPE_CHECKING:
    from geomask.executors.local import WindowPool

__all__ = ["process_scene"]


def process_scene(
    input_path: str | os.PathLike[str],
    output: OutputSpec,
    steps: Sequence[Step],
    *,
    bands: Sequence[int] | None = None,
    nodata: float | Literal["auto"] | None = "auto",
    options: RunOptions | None = None,
    observer: Observer | None = None,
    validity: Validity = "honour",
    pool: WindowPool | None = None,
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
    validity : "honour" or "ignore"
        ``honour``: an alpha band (colour interpretation alpha) is not data (default ``bands`` leave it
        out; it is copied unchanged) and pixels whose alpha or GDAL per-dataset mask (internal or
        ``.msk``) is 0 are invalid like nodata; the output keeps the mask. ``ignore``: both are data.
    pool : WindowPool or None
        A local scheduler's pool shared by the scenes of a run
        (:func:`geomask.executors.local.window_pool`; default: one started for this scene).

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
        from geomask.executors import distributed as cluster  # imported only when a cluster is used

        plan = plan_scene(
            worker_path(input_path),
            output,
            steps,
            bands=bands,
            nodata=nodata,
            options=options,
            validity=validity,
        )
        plan.report.input = str(input_path)
        with cluster.connect(options) as client:
            [report] = cluster.run_scenes(client, [plan], options=options, observer=observer)
        return report
    options = fit_options(options)
    plan = plan_scene(
        input_path, output, steps, bands=bands, nodata=nodata, options=options, validity=validity
    )
    observer.scene_started(plan.report.input, len(plan.windows))
    with gdal_env(options.gdal_options), plan:
        for done, result in enumerate(run_windows(plan.job, plan.windows, options, pool), start=1):
            if done == len(plan.windows):
                all_computed()  # a batch may start its next scene now (geomask.executors.scenes)
            plan.write(result)
            observer.window_done(plan.report.input, 1)
        report = plan.commit()
    observer.scene_finished(report)
    return report
