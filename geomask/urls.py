"""Remote locations: ``s3://bucket/key`` and ``http(s)://...`` inputs and outputs.

Pure text handling (no GDAL import), so the configuration layer can use it. Remote files are
read through GDAL's virtual file systems (``/vsis3/``, ``/vsicurl/``), which rasterio and pyogrio
select from the URL themselves; credentials and endpoint come from the standard AWS environment
variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_S3_ENDPOINT``, ``AWS_HTTPS``,
``AWS_VIRTUAL_HOSTING`` ...), as for any GDAL tool.

URLs are kept as text everywhere: :class:`pathlib.Path` would fold ``s3://`` into ``s3:/``.
"""

from __future__ import annotations

import os
import re
from pathlib import PurePosixPath
from urllib.parse import urlsplit

__all__ = ["REMOTE_SCHEMES", "gdal_path", "is_url", "url_parts", "writable_url"]

REMOTE_SCHEMES: tuple[str, ...] = ("s3", "http", "https")
"""URL schemes geomask reads; ``s3`` is also written."""

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def is_url(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is a URL (``scheme://...``) rather than a local path.

    Parameters
    ----------
    location : str or path
        A path or URL as written in a pipeline.

    Returns
    -------
    bool
        True for any ``scheme://`` text (``s3://``, ``https://``, ``gs://`` ...); GDAL's own
        ``/vsi...`` paths are local-looking paths and return False.
    """
    return isinstance(location, str) and _SCHEME.match(location) is not None


def writable_url(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is a URL geomask can write an output to (``s3://bucket/key``)."""
    return is_url(location) and str(location).lower().startswith("s3://")


def gdal_path(location: str | os.PathLike[str]) -> str:
    """The GDAL virtual file system path of a URL (``/vsis3/bucket/key``, ``/vsicurl/https://...``).

    Local paths (and ``/vsi...`` paths) are returned unchanged, as text.
    """
    text = os.fspath(location)
    if not is_url(text):
        return text
    scheme = text.split("://", 1)[0].lower()
    if scheme == "s3":
        return "/vsis3/" + text[len("s3://") :]
    if scheme in ("http", "https"):
        return "/vsicurl/" + text
    return text


def url_parts(location: str) -> PurePosixPath:
    """The path part of a URL as a :class:`~pathlib.PurePosixPath` (for ``{stem}``, ``{name}``, ``{parent}``).

    ``s3://bucket/data/a.tif`` gives ``/bucket/data/a.tif``; the query string is dropped.
    """
    parts = urlsplit(location)
    return PurePosixPath("/" + parts.netloc + parts.path)


def location(text: str | os.PathLike[str]) -> os.PathLike[str] | str:
    """A local path as a :class:`~pathlib.Path`, a URL unchanged as text (``Path`` would fold ``//``)."""
    from pathlib import Path

    return os.fspath(text) if is_url(text) else Path(text)


def template_fields(scene: str | os.PathLike[str]) -> dict[str, str]:
    """The ``{stem}``, ``{name}`` and ``{parent}`` of an input path or URL, for ``output.path`` templates.

    ``{parent}`` is the name of the folder that holds the input, taken from its absolute path, so it is
    the same from any working directory (``data/a.tif`` run from inside ``data/`` gives ``data``, not
    an empty name). For a URL it is the last folder of its path (``s3://bucket/x/a.tif``: ``x``).
    """
    text = os.fspath(scene)
    path = url_parts(text) if is_url(text) else PurePosixPath(os.path.abspath(text))
    return {"stem": path.stem, "name": path.name, "parent": path.parent.name}
