"""The files a pipeline reads besides its scenes: one walk over the validated config.

A field of a config model that names a file geomask reads to make an output (a vector mask, a class
raster, and any file a later form adds) is annotated with :class:`Source`. :func:`source_files` walks
a validated model (a pipeline, a step, a mask section, however nested: ``any``/``all``/``not``/
``grow``/``shrink``, ``support``, ``kernels_by``) and yields every such file with the key it sits
at. Everything that must know the input files uses this one walk: ``geomask validate`` (the files
exist), provenance (their fingerprints decide whether an output is current) and the output guard
(no output may replace them). A new form plugs in by annotating its path field; nothing else
changes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from pydantic import BaseModel

__all__ = ["Source", "SourceFile", "source_files"]


@dataclass(frozen=True)
class Source:
    """Marks a config field as a file read to make an output (``Annotated[FilePath, Source("...")]``).

    ``what`` names the file for messages, e.g. ``"vector file"``.
    """

    what: str


class SourceFile(NamedTuple):
    """A file named by the config: its key path (``("steps", 0, "mask", "vector")``), the path as
    resolved at validation (a local path, or a URL as text) and what it is (``"vector file"``)."""

    key: tuple[str | int, ...]
    path: str
    what: str


def source_files(model: object, key: tuple[str | int, ...] = ()) -> Iterator[SourceFile]:
    """Every file annotated :class:`Source` in ``model`` and the models, lists and mappings it holds.

    Parameters
    ----------
    model : object
        A validated config model (a :class:`~geomask.config.Pipeline`, a step, a mask section), or a
        list/mapping of them; anything else yields nothing.
    key : tuple
        The key path of ``model`` itself (prefixed to the keys yielded).

    Yields
    ------
    SourceFile
        In field order, depth first; fields with their YAML name (``not``, not ``not_``).

    Notes
    -----
    A pipeline with single-step keys at the top level yields them at ``("mask", ...)``, one with
    ``steps:`` at ``("steps", i, ...)``: the keys of the YAML file.
    """
    if isinstance(model, BaseModel):
        for name, field in type(model).model_fields.items():
            value = getattr(model, name)
            if value is None:
                continue
            sub = (*key, field.alias or name)
            marker = next((m for m in field.metadata if isinstance(m, Source)), None)
            if marker is not None and not isinstance(value, BaseModel):  # a model: no file (an asset)
                yield SourceFile(sub, os.fspath(value), marker.what)
            else:
                yield from source_files(value, sub)
    elif isinstance(model, (list, tuple)):
        for i, item in enumerate(model):
            yield from source_files(item, (*key, i))
    elif isinstance(model, dict):
        for name, item in model.items():
            yield from source_files(item, (*key, name))
