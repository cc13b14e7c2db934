"""Run a pipeline: every scene of a pipeline file through the engine, with provenance tags.

This is the library behind ``geomask run``: :func:`run_pipeline` loads and validates the pipeline
(:mod:`geomask.config`), builds the engine's steps once (per scene, from its grid, when a kernel
size is in map units: :mod:`geomask.units`), expands the inputs (paths, globs, lists)
into (input, output) pairs, checks that no two scenes share an output, then calls
:func:`geomask.process.process_scene` for each scene in turn. Nothing here prints; progress goes to
the observer.

Resume. Every output carries provenance tags (:func:`provenance_tags`). Before a scene runs,
:func:`resume_action` compares the tags of an existing output with those the run would write: an
output made by the same geomask version, from the same pipeline and byte-relevant profile settings,
and from an input of the same size and modification time is *current* and the scene is skipped;
an older geomask output is replaced; a file geomask did not write (no tags, or unreadable) is an
error unless ``overwrite``. Outputs are only ever renamed into place once complete, so a tagged
file at the output path is a finished one.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from geomask import __version__
from geomask.config import Pipeline, load_pipeline, source_files
from geomask.config.build import build_output, build_source, build_steps, unit_notes
from geomask.config.inputs import BandScene, band_scenes, is_product_input
from geomask.config.stac_input import StacInput
from geomask.engine.bind import step_mask
from geomask.engine.plan import ScenePlan, plan_scene, worker_path
from geomask.errors import GeomaskError, GridError, OutputExistsError
from geomask.executors.sizing import fit_options
from geomask.fingerprint import sidecars, sources_digest
from geomask.guard import check_output_items, check_run_outputs
from geomask.io import gdal_env, inspect_scene
from geomask.lock import output_lock
from geomask.masks.assets import for_band
from geomask.output.check import read_tags
from geomask.output.staging import remove_stale_partials, staged_output
from geomask.process import process_scene
from geomask.progress import NullObserver, Observer
from geomask.spec import (
    ResumeAction,
    RunOptions,
    SceneReport,
    Step,
    describe_kernels,
    is_distributed,
)
from geomask.stac import write_item
from geomask.urls import is_url

__all__ = [
    "ResumeAction",
    "pipeline_sources_digest",
    "profile_digest",
    "provenance_tags",
    "resume_action",
    "run_pipeline",
]

TAG_PREFIX = "GEOMASK_"
"""Prefix of the GDAL metadata tags geomask writes on its outputs."""

_CURRENT_KEYS = tuple(
    TAG_PREFIX + k
    for k in ("VERSION", "PIPELINE_SHA256", "PROFILE_SHA256", "SOURCES_SHA256", "INPUT_SIZE", "INPUT_MTIME")
)
"""The tags that must match for an existing output to count as current."""

_SPEED_ONLY = frozenset(
    {
        "CPL_DEBUG",
        "GDAL_CACHEMAX",
        "GDAL_DISABLE_READDIR_ON_OPEN",
        "GDAL_NUM_THREADS",
        "NUM_THREADS",
        "VSI_CACHE",
        "VSI_CACHE_SIZE",
    }
)
"""GDAL configuration and creation options that change speed or logging, never the output's bytes."""


def profile_digest(
    creation_options: Mapping[str, str] | None = None, gdal_options: Mapping[str, str] | None = None
) -> str:
    """sha256 of the run-profile settings that can change an output's bytes.

    Parameters
    ----------
    creation_options : mapping or None
        GeoTIFF/COG creation options.
    gdal_options : mapping or None
        GDAL configuration options.

    Returns
    -------
    str
        Hex digest of both mappings (keys upper-cased, sorted), without the options known to change
        only speed or logging (``GDAL_CACHEMAX``, ``NUM_THREADS``, ``GDAL_NUM_THREADS`` ...).

    Notes
    -----
    Window size, scheduler and workers are not included: the engine's result does not depend on
    them. Any other GDAL option is included, to be safe: changing it redoes the outputs.
    """

    def relevant(options: Mapping[str, str] | None) -> dict[str, str]:
        items = {str(k).upper(): str(v) for k, v in (options or {}).items()}
        return {k: v for k, v in sorted(items.items()) if k not in _SPEED_ONLY}

    data = {"creation_options": relevant(creation_options), "gdal": relevant(gdal_options)}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def provenance_tags(
    pipeline: Pipeline,
    steps: Sequence[Step],
    input_path: str | Path | None = None,
    *,
    profile_sha256: str | None = None,
    sources_sha256: str | None = None,
    product_files: Sequence[str] = (),
) -> dict[str, str]:
    """The metadata tags that record how an output was made.

    Parameters
    ----------
    pipeline : Pipeline
        The validated pipeline.
    steps : sequence of Step
        The engine steps built from it (their kernels and masks are described).
    input_path : path or None
        The scene; its size and modification time are recorded when it is a local file.
    profile_sha256 : str or None
        :func:`profile_digest` of the run's options (default: that of no options).
    sources_sha256 : str or None
        :func:`pipeline_sources_digest` of ``pipeline`` (default: computed here; pass it to fingerprint
        the pipeline's files once per run).
    product_files : sequence of str
        For a band of a product, every file of the product (its band files, the assets its masks may
        read, the STAC item JSON): their fingerprints join ``GEOMASK_SOURCES_SHA256``, so changing
        any of them redoes the product's outputs (:meth:`geomask.config.inputs.BandScene.files`).

    Returns
    -------
    dict
        ``GEOMASK_VERSION``, ``GEOMASK_PIPELINE`` (the pipeline file's stem, when loaded from a file),
        ``GEOMASK_PIPELINE_SHA256`` (sha256 of the pipeline's canonical JSON),
        ``GEOMASK_PROFILE_SHA256`` (:func:`profile_digest`),
        ``GEOMASK_KERNEL`` and ``GEOMASK_MASK`` (one description per step, joined by ``"; "``),
        ``GEOMASK_SOURCES_SHA256`` (the fingerprints of every file the pipeline names and of the
        input's sidecars: :mod:`geomask.fingerprint`; absent when one is remote or unreadable) and,
        for a local input, ``GEOMASK_INPUT_SIZE`` (bytes) and ``GEOMASK_INPUT_MTIME`` (ns since the epoch).

    Notes
    -----
    The pipeline hash covers the resolved paths, so moving the pipeline or its data changes it;
    ``output.overwrite`` is left out since it does not change the result.
    """
    if sources_sha256 is None:
        sources_sha256 = pipeline_sources_digest(pipeline)
    tags = {
        "VERSION": __version__,
        **({"PIPELINE": Path(pipeline.source.file).stem} if pipeline.source is not None else {}),
        "PIPELINE_SHA256": pipeline.digest(),
        "PROFILE_SHA256": profile_sha256 if profile_sha256 is not None else profile_digest(),
        "KERNEL": "; ".join(f"{s.op} {describe_kernels(s)}" for s in steps),
        "MASK": "; ".join(m.describe() if (m := step_mask(s)) is not None else "whole scene" for s in steps),
    }
    if input_path is not None:
        try:
            stat = os.stat(input_path)
        except OSError:  # a GDAL URL or a missing file (the engine reports the latter)
            pass
        else:
            tags["INPUT_SIZE"] = str(stat.st_size)
            tags["INPUT_MTIME"] = str(stat.st_mtime_ns)
    if sources_sha256:
        local = input_path is not None and not is_url(input_path)
        # with a product: its band files, assets and item too (and their sidecars; a URL: never current)
        files = [*(sidecars(input_path) if local else []), *product_files]  # type: ignore[arg-type]
        around = sources_digest(files) if local or product_files else ""
        if around is not None:
            tags["SOURCES_SHA256"] = hashlib.sha256(f"{sources_sha256}:{around}".encode()).hexdigest()
    return {TAG_PREFIX + key: value for key, value in tags.items()}


def pipeline_sources_digest(pipeline: Pipeline) -> str:
    """The fingerprint of every file ``pipeline`` names (:func:`geomask.config.source_files`), or ``""``.

    ``""`` when one is remote or unreadable: outputs made from it are then never current. See
    :func:`geomask.fingerprint.sources_digest` (content hash up to 64 MiB, else size and mtime).
    """
    return sources_digest(f.path for f in source_files(pipeline)) or ""


def resume_action(output: Path, expected: Mapping[str, str], *, overwrite: bool = False) -> ResumeAction:
    """Decide what a run does with the output of one scene.

    Parameters
    ----------
    output : Path
        The scene's output path.
    expected : mapping
        The tags this run would write (:func:`provenance_tags`).
    overwrite : bool
        Redo every scene, replacing whatever is at the output path.

    Returns
    -------
    {"write", "replace", "skip"}
        ``write``: nothing is there (or a directory, which the engine reports); ``replace``: a
        geomask output that is not current, or ``overwrite``; ``skip``: a current output.

    Raises
    ------
    OutputExistsError
        A file geomask did not write (no ``GEOMASK_VERSION`` tag, or unreadable) is at the output
        path and ``overwrite`` is false.

    Notes
    -----
    Current means that ``GEOMASK_VERSION``, ``GEOMASK_PIPELINE_SHA256``, ``GEOMASK_PROFILE_SHA256``,
    ``GEOMASK_SOURCES_SHA256``, ``GEOMASK_INPUT_SIZE`` and ``GEOMASK_INPUT_MTIME`` are all present in
    ``expected`` and equal in the file. An input that is not a local file has no size or time, and a
    remote mask file no fingerprint, so such an output is always redone.
    """
    if not output.is_file():
        return "write"
    if overwrite:
        return "replace"
    found = read_tags(output)
    if found is None or TAG_PREFIX + "VERSION" not in found:
        raise OutputExistsError(
            f"{output}: a file that geomask did not write (or that does not read) is at the output path; "
            "pass --overwrite (overwrite: true) to replace it, or choose another output.path"
        )
    if all(expected.get(k) is not None and found.get(k) == expected[k] for k in _CURRENT_KEYS):
        return "skip"
    return "replace"


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
        With a distributed ``options.scheduler`` (``local-cluster`` or ``tcp://HOST:PORT``), a client
        already connected to it (default: connect for this run and close at the end).

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

    With a distributed scheduler the windows of all scenes share one dask graph, a bounded number
    in flight at a time (:mod:`geomask.executors.distributed`); each output is still written by this process
    only, and renamed into place as soon as its last window is written.
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
    if is_distributed(options.scheduler):
        from geomask.executors import distributed as cluster  # imported only when a cluster is used

        plans = _plans(
            model,
            units,
            options,
            creation_options,
            (profile_sha256, sources_sha256),
            redo,
            continue_on_error,
        )
        if client is not None:
            return _product_items(
                model,
                cluster.run_scenes(
                    client, plans, options=options, observer=observer, continue_on_error=continue_on_error
                ),
            )
        with cluster.connect(options) as own:
            return _product_items(
                model,
                cluster.run_scenes(
                    own, plans, options=options, observer=observer, continue_on_error=continue_on_error
                ),
            )
    options = fit_options(options)  # once for the run (process_scene's own fit is then a no-op)
    reports: list[SceneReport] = []
    for input_path, output_path, band in units:
        notes: list[str] = []
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
                product_files=band.files() if band is not None else (),
            )
            with output_lock(output_path):  # one geomask process per output at a time
                remove_stale_partials(output_path)
                # s3:// outputs have no size or time to compare: always (re)written
                remote = is_url(output_path)
                action = "replace" if remote else resume_action(output_path, tags, overwrite=redo)
                if action == "skip":
                    report = SceneReport(str(input_path), str(output_path), "skipped", notes=notes)
                    observer.scene_finished(report)
                    reports.append(report)
                    continue
                with staged_output(output_path) as local_output:  # s3://: written locally, then uploaded
                    replace = action == "replace"
                    spec = build_output(model, local_output, creation_options, overwrite=replace, tags=tags)
                    report = process_scene(
                        input_path,
                        spec,
                        run_steps,
                        bands=_engine_bands(model, band),
                        nodata=model.nodata,
                        options=options,
                        validity=model.validity,
                        observer=_WithNotes(observer, notes, str(output_path) if remote else None),
                    )
                    if model.output.stac and not isinstance(model.input, StacInput):  # Items: see below
                        write_item(
                            local_output,
                            input_path,
                            run_steps,
                            nodata=model.nodata,
                            gdal=options.gdal_options,
                        )
                report.output = str(output_path)
        except GeomaskError as e:
            if not continue_on_error:
                raise
            report = SceneReport(str(input_path), str(output_path), "failed", error=str(e), notes=notes)
            observer.scene_finished(report)
        reports.append(report)
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
                product_files=band.files() if band is not None else (),
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
                grids = {href: inspect_scene(href).grid for href in band.files() if href != band.product.item}
            with_crs = [href for href, grid in grids.items() if grid.crs is not None]
            if with_crs and len(with_crs) < len(grids):
                lacking = next(href for href, grid in grids.items() if grid.crs is None)
                raise GridError(
                    f"product {band.product.id}: {lacking} has no CRS but {with_crs[0]} has one, so "
                    "their pixels cannot be matched; georeference it (gdal_edit.py -a_srs EPSG:XXXX)"
                )


class _WithNotes:
    """Forwards events to ``inner``, adding ``notes`` to the scene's report before it is shown."""

    def __init__(self, inner: Observer, notes: list[str], output: str | None = None) -> None:
        self.inner = inner
        self.notes = notes
        self.output = output  # the s3:// URL of an output staged locally

    def scene_started(self, scene: str, windows: int) -> None:
        self.inner.scene_started(scene, windows)

    def window_done(self, scene: str, count: int = 1) -> None:
        self.inner.window_done(scene, count)

    def scene_finished(self, report: SceneReport) -> None:
        report.notes.extend(self.notes)
        if self.output is not None:
            report.output = self.output
        self.inner.scene_finished(report)
