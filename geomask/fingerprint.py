"""Fingerprints of the files an output is made from, for provenance and resume.

A rerun skips a scene only when nothing that shaped its output changed. Besides the pipeline and
profile (hashed as settings) and the scene (its size and modification time), that is every file the
pipeline names (:func:`geomask.config.source_files`: vector masks, class rasters, nested or as
``support``) and the files GDAL reads with them: a shapefile's ``.dbf``/``.shx``/``.prj``/``.cpg``,
a raster's ``.aux.xml``, world file or external mask, a GeoPackage's ``-wal``.

A file up to :data:`HASH_LIMIT` bytes is fingerprinted by its content (sha256), so an edit within the
same second, or one that keeps the size and modification time, still counts; a larger one by its size
and modification time in nanoseconds (reading gigabytes on every rerun would cost more than the run).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from geomask.urls import is_url

__all__ = ["HASH_LIMIT", "file_fingerprint", "sidecar_names", "sidecars", "sources_digest"]

HASH_LIMIT = 64 * 2**20
"""Files up to this many bytes are fingerprinted by content; larger ones by (size, mtime_ns)."""

_SIBLING_SUFFIXES = (
    ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx",  # shapefile parts
    ".tfw", ".tifw", ".tiffw", ".wld",  # world files
)  # fmt: skip
_APPENDED = (".aux.xml", ".msk", ".ovr", "-wal")
"""Sidecars named by appending to the whole file name (``roi.tif.aux.xml``); ``roi.gpkg-wal`` holds the
edits of a GeoPackage (SQLite) not yet written into the file while an editor such as QGIS has it open."""


def sidecars(path: str | os.PathLike[str]) -> list[Path]:
    """The existing files GDAL/OGR may read together with ``path``, sorted.

    ``a.shp`` gives ``a.dbf``, ``a.shx``, ``a.prj`` ...; ``a.tif`` gives ``a.tif.aux.xml``,
    ``a.tfw``, ``a.tif.msk`` ... when they exist (lower- or upper-case suffixes). ``path`` itself is
    not included. A few ``stat`` calls, no folder listing (folders may hold many scenes).
    """
    return [name for name in sidecar_names(path) if os.path.isfile(name)]


def sidecar_names(path: str | os.PathLike[str]) -> list[Path]:
    """Every name GDAL/OGR would read as a sidecar of ``path``, existing or not, sorted.

    What :func:`sidecars` looks for; a file written at one of these names would change how ``path``
    is read (a GeoTIFF at ``scene.tif.msk`` becomes the scene's mask band), so outputs avoid them.
    """
    file = Path(path)
    names = {file.stem + s for s in _SIBLING_SUFFIXES} | {file.name + s for s in _APPENDED}
    names |= {file.stem + s.upper() for s in _SIBLING_SUFFIXES} | {file.name + s.upper() for s in _APPENDED}
    names.discard(file.name)
    return sorted(file.with_name(n) for n in names)


def file_fingerprint(path: str | os.PathLike[str]) -> str | None:
    """``sha256:HEX`` of a file's content up to :data:`HASH_LIMIT` bytes, else ``stat:SIZE:MTIME_NS``.

    Returns None for a URL or a file that cannot be read (no fingerprint: an output made from it is
    never current).
    """
    if is_url(path):
        return None
    try:
        stat = os.stat(path)
        if stat.st_size > HASH_LIMIT:
            return f"stat:{stat.st_size}:{stat.st_mtime_ns}"
        with open(path, "rb") as f:
            return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None


def sources_digest(paths: Iterable[str | os.PathLike[str]]) -> str | None:
    """sha256 over the fingerprints of ``paths`` and their :func:`sidecars`, or None when one has none.

    Parameters
    ----------
    paths : iterable of path
        The files an output is made from (duplicates are counted once).

    Returns
    -------
    str or None
        A hex digest that changes when any file (or sidecar) changes, appears or disappears; None
        when a path is a URL or unreadable, so that an output made from it is always redone.
    """
    entries: dict[str, str] = {}
    for path in paths:
        if is_url(path):
            return None
        for file in (Path(path), *sidecars(path)):
            key = os.path.realpath(file)
            if key in entries:
                continue
            fingerprint = file_fingerprint(file)
            if fingerprint is None:
                return None
            entries[key] = fingerprint
    text = json.dumps(sorted(entries.items()), separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
