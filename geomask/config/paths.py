"""Paths in a pipeline: resolution against the YAML file's folder, input globbing, output pairing.

A path in a config file is relative to the file's folder (the ``base_dir`` of the validation
context); a URL (``s3://``, ``https://``) is kept as text. Globs in ``input`` are expanded when the
scenes are listed (:func:`scene_pairs`), not at validation, so a pipeline validates before its
inputs exist. Pure stdlib: nothing here reads a raster.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

from geomask.errors import ConfigError, InputError
from geomask.templates import expand_template
from geomask.urls import is_url, location

__all__ = ["resolve", "scene_pairs"]


def resolve(text: str, base: Path | None) -> str:
    """``text`` as a normalised local path, relative ones joined to ``base``; a URL unchanged.

    Parameters
    ----------
    text : str
        A path as written in the file (``~`` expanded) or a URL.
    base : Path or None
        The folder relative paths resolve against (the YAML file's); None leaves them relative to the
        working directory.
    """
    if is_url(text):  # s3://, https://: GDAL reads them; normpath would fold their //
        return text
    path = Path(text).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    parts = path.parts
    if ".." in parts:  # folded lexically, link/.. would name another file than the one GDAL opens
        last = len(parts) - 1 - parts[::-1].index("..")
        return os.path.normpath(os.path.join(os.path.realpath(Path(*parts[: last + 1])), *parts[last + 1 :]))
    return os.path.normpath(path)


def scene_pairs(patterns: list[str], template: str) -> list[tuple[Path, Path]]:
    """Every (input, output) pair: inputs in the order given (globs sorted), outputs from ``template``.

    Parameters
    ----------
    patterns : list of str
        The validated ``input`` entries: paths, globs or URLs.
    template : str
        ``output.path``, possibly with ``{stem}``, ``{name}`` or ``{parent}``.

    Raises
    ------
    InputError
        A glob matches no file.
    ConfigError
        Two inputs map to the same output, or an output would replace its input.
    """
    inputs: list[Path] = []
    for pattern in patterns:
        if not is_url(pattern) and glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern))
            if not matches:
                raise InputError(f"input: no file matches {pattern!r}: check the pattern")
            inputs.extend(Path(m) for m in matches)
        else:
            inputs.append(location(pattern))  # type: ignore[arg-type]  # a URL stays text
    pairs: list[tuple[Path, Path]] = []
    seen: dict[Path, Path] = {}
    for scene in dict.fromkeys(inputs):
        try:
            out = location(expand_template(template, scene))
        except ConfigError as e:
            raise ConfigError(f"output.path: {e}") from e
        if out in seen:
            raise ConfigError(
                f"output.path: {seen[out]} and {scene} would both be written to {out}: "
                "use {stem} or {name} in output.path"
            )
        if os.path.abspath(out) == os.path.abspath(scene):
            raise ConfigError(f"output.path: {out} is the input itself: choose another output path")
        seen[out] = scene
        pairs.append((scene, out))
    return pairs
