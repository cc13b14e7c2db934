"""Pipeline and run-profile files: strict pydantic models for the YAML, and their loaders.

A *pipeline* (``pipelines/*.yaml``) says what to compute: the input scene(s), the bands, the nodata
rule, one or more steps (a kernel applied inside a mask) and the output. A *profile*
(``configs/*.yaml``) says how to run it: scheduler, workers, window size, GDAL options and output
creation options. ``geomask schema`` prints the JSON Schema of both.

:func:`load_pipeline` reads a file with :func:`geomask.config.yamlsafe.load_yaml` (a guarded YAML
reader) and reports every problem as ``FILE:LINE:COL: key.path: message``: it raises
:class:`~geomask.errors.YamlError`, a :class:`~geomask.errors.ConfigError` whose message is
the first problem and whose ``.problems`` holds all of them.

Relative paths inside a file resolve against the file's folder.

The models live in :mod:`~geomask.config.fields` (field types), :mod:`~geomask.config.masks`,
:mod:`~geomask.config.kernels`, :mod:`~geomask.config.pipeline` and :mod:`~geomask.config.profile`;
:mod:`~geomask.config.paths` resolves paths and expands input globs. Importing this package or
validating a file loads no rasterio, dask or numba: :mod:`geomask.config.build`, which turns the
models into the engine's steps, output spec, run options and mask sources, is imported by the code
that runs them, never from here.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from geomask.config._report import problems_at, problems_from, show
from geomask.config.fields import Boundary, Compress, Op
from geomask.config.files import Source, SourceFile, source_files
from geomask.config.inputs import BandsInput
from geomask.config.kernels import KernelConfig, KernelsBy, MatrixKernel
from geomask.config.masks import (
    MASK_FORMS,
    AllMask,
    AnyMask,
    BboxMask,
    ExpressionMask,
    GrowMask,
    KMeansMask,
    NotMask,
    RasterMask,
    ShrinkMask,
    VectorMask,
)
from geomask.config.pipeline import OutputConfig, Pipeline, StepConfig, shape_problems
from geomask.config.profile import Profile
from geomask.config.stac_input import StacInput, stac_problems
from geomask.config.yamlsafe import Key, key_text, load_yaml
from geomask.errors import ConfigError, Position, Problem, YamlError
from geomask.templates import TEMPLATE_FIELDS
from geomask.urls import is_url

__all__ = [
    "MASK_FORMS",
    "TEMPLATE_FIELDS",
    "AllMask",
    "AnyMask",
    "BboxMask",
    "ExpressionMask",
    "GrowMask",
    "KMeansMask",
    "KernelsBy",
    "NotMask",
    "RasterMask",
    "ShrinkMask",
    "Source",
    "SourceFile",
    "Boundary",
    "Compress",
    "KernelConfig",
    "MatrixKernel",
    "Op",
    "OutputConfig",
    "Pipeline",
    "Position",
    "Problem",
    "Profile",
    "StepConfig",
    "VectorMask",
    "YamlError",
    "file_problems",
    "load_pipeline",
    "load_profile",
    "pipeline_problems",
    "source_files",
]

_M = TypeVar("_M", bound=BaseModel)


def load_pipeline(path: str | Path) -> Pipeline:
    """Read and validate a pipeline file.

    Parameters
    ----------
    path : str or Path
        The YAML file; relative paths inside it resolve against its folder.

    Returns
    -------
    Pipeline

    Raises
    ------
    ConfigError
        A :class:`~geomask.errors.YamlError` listing every problem (``.problems``), its message the
        first one, or a plain ConfigError when the file cannot be read.
    """
    return _load(Pipeline, path)


def load_profile(path: str | Path) -> Profile:
    """Read and validate a run profile file (see :func:`load_pipeline` for the errors)."""
    return _load(Profile, path)


def pipeline_problems(path: str | Path) -> list[Problem]:
    """Every problem with a pipeline file, including inputs and mask files that do not exist.

    Returns an empty list for a valid pipeline. Raises :class:`ConfigError` only when the file
    cannot be read at all.
    """
    try:
        pipeline = load_pipeline(path)
    except YamlError as e:
        return list(e.problems)
    return file_problems(pipeline)


def file_problems(pipeline: Pipeline) -> list[Problem]:
    """Inputs and mask files a loaded pipeline names that do not exist (see :func:`pipeline_problems`)."""
    source = pipeline.source
    if source is None:  # load_pipeline always records it
        raise ConfigError("no source positions recorded")
    problems: list[Problem] = []

    def check(key: Key, file: Path, what: str) -> None:
        if not file.exists():
            problems.append(Problem(source.file, source.value_position(key), key_text(key), f"{what} {file}"))

    if isinstance(pipeline.input, BandsInput):  # band files of one product
        for name, band_file in pipeline.input.bands.items():
            if not is_url(band_file):
                check(("input", "bands", name), Path(band_file), "no such band file:")
    for i, pattern in enumerate(pipeline.input if isinstance(pipeline.input, list) else []):
        key: Key = ("input", i) if ("input", i) in source.values else ("input",)
        if is_url(pattern):  # a URL is checked when it is read
            continue
        if glob.has_magic(pattern):
            if not glob.glob(pattern):
                problems.append(
                    Problem(
                        source.file, source.value_position(key), key_text(key), f"no file matches {pattern}"
                    )
                )
        else:
            check(key, Path(pattern), "no such file:")
    for found in source_files(pipeline):
        if not is_url(found.path):
            check(found.key, Path(found.path), f"no such {found.what}:")
    if not problems and isinstance(pipeline.input, StacInput):  # the STAC document, its items and assets
        problems += stac_problems(pipeline.input, source)
    if not problems:  # every input exists: expand output.path for each (placeholders, collisions)
        try:
            pipeline.scenes()
        except ConfigError as e:
            message = str(e).removeprefix("output.path: ")
            problems.append(
                Problem(source.file, source.value_position(("output", "path")), "output.path", message)
            )
    return problems


def _base_dir(path: str | Path) -> Path:
    """The folder relative paths in ``path`` resolve against: its own, or the working directory for a
    stream the system names (``/dev/stdin``, ``/dev/fd/63`` of ``<(...)``, ``/proc/self/fd/0``)."""
    if Path(os.path.abspath(path)).parts[1:2] in (("dev",), ("proc",)):
        return Path.cwd()
    return Path(path).parent


def _load(model: type[_M], path: str | Path) -> _M:
    data, source = load_yaml(path)
    if not isinstance(data, dict):
        raise YamlError(
            [Problem(source.file, source.value_position(()), "", f"expected a mapping, got {show(data)}")]
        )
    try:
        result = model.model_validate(data, context={"base_dir": _base_dir(path)})
    except ValidationError as e:
        problems = problems_from(e, data, source, model)
        if model is Pipeline:
            problems += problems_at(shape_problems(data), source, exclude=problems)
        raise YamlError(problems) from None
    if isinstance(result, Pipeline):
        result._source = source
    return result
