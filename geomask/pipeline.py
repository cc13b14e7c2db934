"""Run a pipeline: every scene of a pipeline file through the engine, with provenance tags.

This is the library behind ``geomask run``: :func:`run_pipeline` loads and validates the pipeline
(:mod:`geomask.config`), builds the engine's steps once, expands the inputs (paths, globs, lists)
into (input, output) pairs, checks that no two scenes share an output, then calls
:func:`geomask.engine.process_scene` for each scene in turn. Nothing here prints; progress goes to
the observer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from geomask import __version__
from geomask.config import Pipeline, load_pipeline
from geomask.engine import OutputSpec, RunOptions, SceneReport, Step, process_scene
from geomask.errors import GeomaskError
from geomask.progress import NullObserver, Observer

__all__ = ["provenance_tags", "run_pipeline"]

TAG_PREFIX = "GEOMASK_"
"""Prefix of the GDAL metadata tags geomask writes on its outputs."""


def provenance_tags(
    pipeline: Pipeline, steps: Sequence[Step], input_path: str | Path | None = None
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

    Returns
    -------
    dict
        ``GEOMASK_VERSION``, ``GEOMASK_PIPELINE_SHA256`` (sha256 of the pipeline's canonical JSON),
        ``GEOMASK_KERNEL`` and ``GEOMASK_MASK`` (one description per step, joined by ``"; "``) and,
        for a local input, ``GEOMASK_INPUT_SIZE`` (bytes) and ``GEOMASK_INPUT_MTIME`` (ns since the epoch).

    Notes
    -----
    The pipeline hash covers the resolved paths, so moving the pipeline or its data changes it;
    ``output.overwrite`` is left out since it does not change the result.
    """
    tags = {
        "VERSION": __version__,
        "PIPELINE_SHA256": pipeline.digest(),
        "KERNEL": "; ".join(f"{s.op} {s.kernel.describe()}" for s in steps),
        "MASK": "; ".join(s.mask.describe() if s.mask is not None else "whole scene" for s in steps),
    }
    if input_path is not None:
        try:
            stat = os.stat(input_path)
        except OSError:  # a GDAL URL or a missing file (the engine reports the latter)
            pass
        else:
            tags["INPUT_SIZE"] = str(stat.st_size)
            tags["INPUT_MTIME"] = str(stat.st_mtime_ns)
    return {TAG_PREFIX + key: value for key, value in tags.items()}


def run_pipeline(
    pipeline: str | os.PathLike[str] | Pipeline,
    *,
    overwrite: bool = False,
    options: RunOptions | None = None,
    observer: Observer | None = None,
    creation_options: Mapping[str, str] | None = None,
    continue_on_error: bool = False,
) -> list[SceneReport]:
    """Run a pipeline on every scene it names.

    Parameters
    ----------
    pipeline : path or Pipeline
        A pipeline YAML file (relative paths inside resolve against its folder) or a validated model.
    overwrite : bool
        Replace existing outputs (also when the pipeline's ``output.overwrite`` is false).
    options : RunOptions or None
        Window size, scheduler, workers, GDAL options (default: :class:`~geomask.engine.RunOptions`).
    observer : Observer or None
        Receives progress events; nothing is printed.
    creation_options : mapping or None
        Extra GeoTIFF/COG creation options for every output (from a run profile).
    continue_on_error : bool
        Record a scene that fails with a :class:`~geomask.errors.GeomaskError` as ``status="failed"``
        and go on with the next one, instead of raising.

    Returns
    -------
    list of SceneReport
        One per scene, in input order.

    Raises
    ------
    ConfigError
        The pipeline is invalid (every problem in ``.problems`` when it came from a file), a kernel is
        invalid, or two scenes would write the same output; raised before any scene runs.
    InputError, OutputError, RunError
        From the first failing scene, unless ``continue_on_error``. Nothing is left at the output
        path of a scene that fails; the outputs of scenes finished before it are kept.
    """
    model = pipeline if isinstance(pipeline, Pipeline) else load_pipeline(pipeline)
    observer = observer or NullObserver()
    steps = model.to_steps()
    scenes = model.scenes()
    reports: list[SceneReport] = []
    for input_path, output_path in scenes:
        spec = OutputSpec(
            path=output_path,
            format=model.output.format,
            compress=model.output.compress,
            creation_options=dict(creation_options or {}),
            overwrite=overwrite or model.output.overwrite,
            tags=provenance_tags(model, steps, input_path),
        )
        try:
            report = process_scene(
                input_path,
                spec,
                steps,
                bands=model.bands,
                nodata=model.nodata,
                options=options or RunOptions(),
                observer=observer,
            )
        except GeomaskError as e:
            if not continue_on_error:
                raise
            report = SceneReport(str(input_path), str(output_path), "failed", error=str(e))
            observer.scene_finished(report)
        reports.append(report)
    return reports
