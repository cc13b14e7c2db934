"""Run a pipeline: every scene of a pipeline file through the engine, with provenance tags.

This is the library behind ``geomask run``: :func:`run_pipeline` loads and validates the pipeline
(:mod:`geomask.config`), builds the engine's steps once (per scene, from its grid, when a kernel
size is in map units: :mod:`geomask.units`), expands the inputs (paths, globs, lists)
into (input, output) pairs, checks that no two scenes share an output, then writes each scene's
output with :func:`geomask.scene_task.write_scene` (here, or on a dask worker). Nothing here
prints; progress goes to the observer.

Resume and provenance (the tags, and when an existing output is current) are in
:mod:`geomask.provenance`. Outputs are only ever renamed into place once complete, so a tagged file at
the output path is a finished one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from geomask.config import Pipeline, load_pipeline, source_files
from geomask.config.build import build_output, build_source, build_steps, unit_notes
from geomask.config.inputs import BandScene, band_scenes, is_product_input
from geomask.config.stac_input import StacInput
from geomask.engine.plan import ScenePlan, plan_scene, worker_path
from geomask.errors import GeomaskError, GridError
from geomask.executors.local import WindowPool, window_pool
from geomask.executors.scenes import is_small, run_in_order
from geomask.executors.sizing import fit_options
from geomask.guard import check_output_items, check_run_outputs
from geomask.io import gdal_env, inspect_scene
from geomask.lock import output_lock
from geomask.masks.assets import for_band, names_read
from geomask.output.staging import remove_stale_partials, staged_output
from geomask.progress import NullObserver, Observer
from geomask.provenance import (
    pipeline_sources_digest,
    profile_digest,
    provenance_tags,
    resume_action,
)
from geomask.scene_task import SceneTask, absolute_paths, write_scene
from geomask.spec import (
    ResumeAction,
    RunOptions,
    SceneReport,
    Step,
    is_distributed,
)
from geomask.urls import is_url

__all__ = ["ResumeAction", "run_pipeline"]


def run_pipeline(
    pipeline: str | os.PathLike[str] | Pipeline,
    *,
    overwrite: bool = False,
    options: RunOptions | None = None,
    observer: Observer | None = None,
    creation_options: Mapping[str, str] | None = None,
    continue_on_error: bool = False,
    client: Any = None,
) -> list[SceneReport]:
    """Run a pipeline on every scene it names.

    Parameters
    ----------
    pipeline : path or Pipeline
        A pipeline YAML file (relative paths inside resolve against its folder) or a validated model.
    overwrite : bool
        Redo every scene and replace existing outputs (also set by the pipeline's
        ``output.overwrite``). Otherwise scenes whose output is current are skipped and older
        geomask outputs are replaced (see :func:`resume_action`).
    options : RunOptions or None
        Window size, scheduler, workers, GDAL options (default: :class:`~geomask.spec.RunOptions`).
    observer : Observer or None
        Receives progress events; nothing is printed.
    creation_options : mapping or None
        Extra GeoTIFF/COG creation options for every output (from a run profile).
    continue_on_error : bool
        Record a scene that fails with a :class:`~geomask.errors.GeomaskError` as ``status="failed"``
        and go on with the next one, instead of raising.
    client : distributed.Client or None
        With a distributed ``options.scheduler`` (``local-cluster``, ``tcp://HOST:PORT`` or
        ``cluster``), a client already connected to it (default: connect for this run and close at
        the end).

    Returns
    -------
    list of SceneReport
        One per scene, in input order; ``status`` is ``done``, ``skipped`` (current output) or
        ``failed``.

    Raises
    ------
    ConfigError
        The pipeline is invalid (every problem in ``.problems`` when it came from a file), a kernel is
        invalid, two scenes would write the same output, or an output would replace an input scene, a
        mask file or the pipeline file (:func:`geomask.guard.check_run_outputs`); raised before any
        scene runs, whatever ``overwrite`` says.
    InputError, OutputError, RunError
        From the first failing scene, unless ``continue_on_error``. Nothing is left at the output
        path of a scene that fails; the outputs of scenes finished before it are kept.
    OutputExistsError
        A file geomask did not write is at an output path and ``overwrite`` is false.
    OutputLockedError
        Another process holds the lock of a scene's output (:func:`geomask.lock.output_lock`, taken
        from before the resume decision until the output is renamed into place); that scene is not
        touched (recorded as failed with ``continue_on_error``).

    Notes
    -----
    Temporary files that a killed earlier run left beside an output
    (``NAME.geomask-PID-RANDOM.partial``, their process gone) are removed when that output's scene
    comes up.

    Each scene's output is written by :func:`geomask.scene_task.write_scene` (lock, stale partials,
    resume decision, staged output, STAC Item), here or on a dask worker.

    With a distributed scheduler, every worker first checks that it sees the run's inputs, mask files
    (a product's band and asset files too) and output folders (:mod:`geomask.executors.reach`). A
    batch of at least as many scenes as worker threads (``options.distribute="auto"``) runs scene by
    scene (:mod:`geomask.executors.scene_tasks`): each output is written, under its lock, by the
    worker that runs its scene, and only its report comes back. Otherwise the windows of all scenes
    share one dask graph, a bounded number in flight at a time (:mod:`geomask.executors.distributed`),
    and each output is written by this process, renamed into place as soon as its last window is
    written.
    """
    model = pipeline if isinstance(pipeline, Pipeline) else load_pipeline(pipeline)
    observer = observer or NullObserver()
    per_scene = model.uses_map_units()
    steps = [] if per_scene else build_steps(model)
    units = _units(model)
    scenes = [(input_path, output_path) for input_path, output_path, _ in units]
    check_run_outputs(model, scenes)
    check_output_items(model, scenes, overwrite=overwrite or model.output.overwrite)
    _check_bands(model, units, options or RunOptions(), headers=not continue_on_error)
    options = options or RunOptions()
    profile_sha256 = profile_digest(creation_options, options.gdal_options)
    sources_sha256 = pipeline_sources_digest(model)  # once: fingerprints taken before any scene reads
    redo = overwrite or model.output.overwrite
    digests = (profile_sha256, sources_sha256)
    if is_distributed(options.scheduler):
        from geomask.executors import distributed as cluster  # imported only when a cluster is used

        def on(client: Any) -> list[SceneReport]:
            from geomask.executors.reach import check_reachable
            from geomask.executors.scene_tasks import run_scene_tasks, scene_level

            check_reachable(
                client,
                inputs=[worker_path(i) for i, _, _ in units],
                files=dict.fromkeys(
                    [
                        *(f.path for f in source_files(model)),
                        *(href for _, _, b in units if b is not None for href in b.files()),
                    ]
                ),
                outputs=[o for _, o, _ in units],
            )
            if scene_level(client, options, len(units)):
                tasks = _scene_tasks(
                    model, units, options, creation_options, digests, redo, continue_on_error
                )
                reports = run_scene_tasks(
                    client, tasks, options=options, observer=observer, continue_on_error=continue_on_error
                )
            else:
                plans = _plans(model, units, options, creation_options, digests, redo, continue_on_error)
                reports = cluster.run_scenes(
                    client, plans, options=options, observer=observer, continue_on_error=continue_on_error
                )
            return _product_items(model, reports)

        if client is not None:
            return on(client)
        with cluster.connect(options) as own:
            return on(own)
    options = fit_options(options)  # once for the run (process_scene's own fit is then a no-op)
    with contextlib.ExitStack() as run:
        # One pool of threads or processes for every scene, started when the first scene is to be
        # written: process workers import geomask while that scene is planned.
        pools: list[WindowPool] = []
        starting = threading.Lock()  # scenes run in two threads (run_in_order)

        def pool() -> WindowPool:
            with starting:
                if not pools:
                    pools.append(run.enter_context(window_pool(options)))
                return pools[0]

        def one(unit: tuple[Path, Path, BandScene | None], observer: Observer) -> SceneReport:
            task = None
            try:
                task = _scene_task(model, steps, unit, options, creation_options, digests, redo)
                return write_scene(task, observer, pool=pool)
            except GeomaskError as e:
                if not continue_on_error:
                    raise
                notes = task.notes if task is not None else []
                report = SceneReport(str(unit[0]), str(unit[1]), "failed", error=str(e), notes=notes)
                observer.scene_finished(report)
                return report

        if options.scheduler == "synchronous" or len(units) < 2:
            return _product_items(model, [one(unit, observer) for unit in units])
        # Two small scenes in flight: one's writing overlaps the next one's computing (events and
        # commits still in input order: geomask.executors.scenes).
        reports = run_in_order(units, one, observer, small=lambda unit: is_small(unit[0]))
    return _product_items(model, reports)


def _product_items(model: Pipeline, reports: list[SceneReport]) -> list[SceneReport]:
    """With STAC input and ``output.stac``, write one output Item per input Item
    (:func:`geomask.stac_output.write_product_items`); returns ``reports`` unchanged."""
    if model.output.stac and isinstance(model.input, StacInput):
        from geomask.stac_output import write_product_items

        write_product_items(model.input.products(), reports)
    return reports


def _scene_steps(
    model: Pipeline, input_path: str | Path, options: RunOptions
) -> tuple[list[Step], list[str]]:
    """Steps with kernel sizes in map units converted on ``input_path``'s grid, and a note for each."""
    with gdal_env(options.gdal_options):
        grid = inspect_scene(input_path).grid
    return build_steps(model, grid), unit_notes(model, grid)


def _scene_task(
    model: Pipeline,
    steps: list[Step],
    unit: tuple[Path, Path, BandScene | None],
    options: RunOptions,
    creation_options: Mapping[str, str] | None,
    digests: tuple[str, str],
    redo: bool,
) -> SceneTask:
    """One scene's :class:`~geomask.scene_task.SceneTask`: its steps (per scene with map units; a
    product's band: its asset masks resolved), provenance tags and output settings."""
    input_path, output_path, band = unit
    notes: list[str] = []
    if model.uses_map_units():
        steps, notes = _scene_steps(model, input_path, options)
    run_steps = steps if band is None else for_band(steps, band.product, model.nodata)
    profile_sha256, sources_sha256 = digests
    tags = provenance_tags(
        model,
        run_steps,
        input_path,
        profile_sha256=profile_sha256,
        sources_sha256=sources_sha256,
        product_files=band.files(names_read(steps)) if band is not None else (),
    )
    return SceneTask(
        input_path,
        output_path,
        build_output(model, Path(output_path), creation_options, overwrite=False, tags=tags),
        run_steps,
        bands=_engine_bands(model, band),
        nodata=model.nodata,
        validity=model.validity,
        options=options,
        redo=redo,
        stac=model.output.stac and not isinstance(model.input, StacInput),  # Items: _product_items
        display=str(input_path),
        notes=notes,
    )


def _scene_tasks(
    model: Pipeline,
    units: Sequence[tuple[Path, Path, BandScene | None]],
    options: RunOptions,
    creation_options: Mapping[str, str] | None,
    digests: tuple[str, str],
    redo: bool,
    continue_on_error: bool,
) -> Iterator[SceneTask | SceneReport]:
    """The scenes of a batch distributed by scene, lazily: a task for a worker, or a finished report.

    The resume decision is taken here without the lock (so a current output costs no task), and
    again by the worker under the lock. On the worker a scene runs on one thread (a worker runs as
    many scene tasks at once as it has threads), with absolute paths.
    """
    on_worker = dataclasses.replace(options, scheduler="threads", workers=1, batch=None, cluster=None)
    steps = [] if model.uses_map_units() else build_steps(model)
    for unit in units:
        input_path, output_path, _ = unit
        task = None
        try:
            task = _scene_task(model, steps, unit, on_worker, creation_options, digests, redo)
            remote = is_url(output_path)
            action = "replace" if remote else resume_action(Path(output_path), task.tags, overwrite=redo)
        except GeomaskError as e:
            if not continue_on_error:
                raise
            notes = task.notes if task is not None else []
            yield SceneReport(str(input_path), str(output_path), "failed", error=str(e), notes=notes)
            continue
        if action == "skip":
            yield SceneReport(str(input_path), str(output_path), "skipped", notes=task.notes)
            continue
        # a worker has its own working directory: absolute paths for the scene and the mask files
        yield dataclasses.replace(
            task,
            input_path=worker_path(input_path),
            output_path=worker_path(output_path),
            steps=absolute_paths(list(task.steps)),
            any_pid=True,
            display_output=str(output_path),
        )


def _plans(
    model: Pipeline,
    units: Sequence[tuple[Path, Path, BandScene | None]],
    options: RunOptions,
    creation_options: Mapping[str, str] | None,
    digests: tuple[str, str],
    redo: bool,
    continue_on_error: bool,
) -> Iterator[ScenePlan | SceneReport]:
    """The scenes as the cluster driver takes them, lazily: a plan to run, or a finished report.

    The same decisions as the local loop of :func:`run_pipeline` (steps per scene, provenance,
    output lock, stale partial files, resume), but a scene to run is only planned; the output lock
    is held by the plan until its writer is closed.
    """
    profile_sha256, sources_sha256 = digests
    per_scene = model.uses_map_units()
    steps = [] if per_scene else build_steps(model)
    for input_path, output_path, band in units:
        notes: list[str] = []
        hold = contextlib.ExitStack()
        try:
            if per_scene:
                steps, notes = _scene_steps(model, input_path, options)
            run_steps = steps if band is None else for_band(steps, band.product, model.nodata)
            tags = provenance_tags(
                model,
                run_steps,
                input_path,
                profile_sha256=profile_sha256,
                sources_sha256=sources_sha256,
                product_files=band.files(names_read(steps)) if band is not None else (),
            )
            hold.enter_context(output_lock(output_path))
            remove_stale_partials(output_path)
            # s3:// outputs have no size or time to compare: always (re)written
            remote = is_url(output_path)
            action = "replace" if remote else resume_action(output_path, tags, overwrite=redo)
            if action == "skip":
                hold.close()
                yield SceneReport(str(input_path), str(output_path), "skipped", notes=notes)
                continue
            local_output = hold.enter_context(staged_output(output_path))  # s3://: uploaded at close
            replace = action == "replace"
            spec = build_output(model, local_output, creation_options, overwrite=replace, tags=tags)
            # Workers open the scene with their own working directory: send them an absolute path.
            plan = plan_scene(
                worker_path(input_path),
                spec,
                run_steps,
                bands=_engine_bands(model, band),
                nodata=model.nodata,
                options=options,
                validity=model.validity,
            )
            plan.report.input, plan.report.output = str(input_path), str(output_path)
            if model.output.stac and not isinstance(model.input, StacInput):
                from geomask.stac import write_item  # pystac: only when Items are asked for

                plan.after_commit.append(
                    functools.partial(
                        write_item,
                        local_output,
                        input_path,
                        run_steps,
                        nodata=model.nodata,
                        gdal=options.gdal_options,
                    )
                )
        except GeomaskError as e:
            hold.__exit__(type(e), e, e.__traceback__)  # with the error: a staged upload is skipped
            if not continue_on_error:
                raise
            yield SceneReport(str(input_path), str(output_path), "failed", error=str(e), notes=notes)
            continue
        except BaseException as e:
            hold.__exit__(type(e), e, e.__traceback__)
            raise
        plan.report.notes.extend(notes)
        plan.hold.push(hold)
        yield plan


def _units(model: Pipeline) -> list[tuple[Path, Path, BandScene | None]]:
    """(input, output, band scene or None) of every scene: one per file, or per band of a product."""
    if is_product_input(model.input):
        return [(scene.input, scene.output, scene) for scene in band_scenes(model)]
    return [(input_path, output_path, None) for input_path, output_path in model.scenes()]


def _engine_bands(model: Pipeline, band: BandScene | None) -> Sequence[int] | None:
    """The 1-based bands the engine filters: the band file's band for a product, else ``bands:``."""
    if band is not None:
        return [band.asset.band]
    return model.bands  # type: ignore[return-value]  # numbers: names are refused without a product


def _check_bands(
    model: Pipeline,
    units: Sequence[tuple[Path, Path, BandScene | None]],
    options: RunOptions,
    *,
    headers: bool,
) -> None:
    """Before anything is written: every name a product's masks use resolves, and (``headers``) every
    file of every product opens as a GeoTIFF.

    Raises
    ------
    ConfigError
        An expression or asset mask names a band or asset a product does not have.
    InputError
        A band or asset file is missing or not a GeoTIFF (only with ``headers``).
    GridError
        Some files of a product have a CRS and others none (only with ``headers``).
    """
    sources = [
        source
        for config in model.step_configs()
        for section in (config.mask, config.support)
        if section is not None and not isinstance(section, str)
        for source in (build_source(section),)
    ]
    checked: set[str] = set()
    for _, _, band in units:
        if band is None or band.product.id in checked:
            continue
        checked.add(band.product.id)
        for_band(sources, band.product, model.nodata)
        if headers:
            with gdal_env(options.gdal_options):
                files = band.files(names_read(sources))
                grids = {href: inspect_scene(href).grid for href in files if href != band.product.item}
            with_crs = [href for href, grid in grids.items() if grid.crs is not None]
            if with_crs and len(with_crs) < len(grids):
                lacking = next(href for href, grid in grids.items() if grid.crs is None)
                raise GridError(
                    f"product {band.product.id}: {lacking} has no CRS but {with_crs[0]} has one, so "
                    "their pixels cannot be matched; georeference it (gdal_edit.py -a_srs EPSG:XXXX)"
                )
