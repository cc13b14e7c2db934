"""Provenance and resume: the tags that record how an output was made, and whether it is current.

Every output carries provenance tags (:func:`provenance_tags`). Before a scene runs,
:func:`resume_action` compares the tags of an existing output with those the run would write: an
output made by the same geomask version, from the same pipeline and byte-relevant profile settings,
from the same source files (:func:`pipeline_sources_digest`, content or size+mtime fingerprints) and
from an input of the same size and modification time is *current* and the scene is skipped; an older
geomask output is replaced; a file geomask did not write (no tags, or unreadable) is an error unless
``overwrite``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from geomask import __version__
from geomask.config import Pipeline, source_files
from geomask.engine.bind import step_mask
from geomask.errors import OutputExistsError
from geomask.fingerprint import sidecars, sources_digest
from geomask.output.check import read_tags
from geomask.spec import (
    ResumeAction,
    Step,
    describe_kernels,
)
from geomask.urls import is_url

__all__ = [
    "TAG_PREFIX",
    "pipeline_sources_digest",
    "profile_digest",
    "provenance_tags",
    "resume_action",
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
