"""Outputs never replace what is not theirs: inputs, mask files, the pipeline, other outputs.

Every command that writes a file (``run`` outputs and ``--report``, ``mask -o``, ``preview -o``)
checks its path first with :func:`check_output` against the files of the run (:func:`run_files`):
its scenes, the files its masks read (and their sidecars), the pipeline and profile files and the
outputs of the same run. Such a path is refused whatever ``--overwrite`` says. An existing file that
geomask did not write needs ``--overwrite``; geomask recognises its own files by what it writes in
them (``GEOMASK_*`` tags in a GeoTIFF, ``geomask_version`` in a JSON report, a ``Software: geomask``
text chunk in a PNG).

Paths are compared after resolving symlinks and ``..``, and existing files by device and inode too,
so a symlink or a hard link to an input is recognised.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from geomask.config import Pipeline, source_files
from geomask.config.inputs import products
from geomask.errors import ConfigError, OutputError, OutputExistsError
from geomask.fingerprint import sidecar_names
from geomask.lock import output_name_problem
from geomask.urls import is_url

__all__ = [
    "PNG_SOFTWARE",
    "RunFiles",
    "check_output",
    "check_output_items",
    "check_run_outputs",
    "is_geomask_item",
    "is_geomask_png",
    "is_geomask_report",
    "is_geomask_tiff",
    "output_items",
    "run_files",
]

PNG_SOFTWARE = "geomask"
"""Start of the ``Software`` text chunk of the PNGs geomask writes (``geomask 1.2.3``)."""

_REPORT_LIMIT = 16 * 2**20
"""A JSON file larger than this is not read to see whether it is a geomask report (it is not)."""


def _key(path: str | os.PathLike[str]) -> str:
    return os.path.normcase(os.path.realpath(path))


class RunFiles:
    """The files a command must not replace, each with what it is (for the message).

    Local paths are keyed by their real path (symlinks and ``..`` resolved) and, when they exist,
    by (device, inode); URLs by their text.
    """

    def __init__(self) -> None:
        self._paths: dict[str, str] = {}
        self._ids: dict[tuple[int, int], str] = {}
        self._folders: dict[str, str] = {}

    def _key(self, path: str | os.PathLike[str]) -> str:
        """:func:`_key` of ``path``, resolving each folder once: a batch protects ~30 sidecar names
        per scene, all in the scenes' folder, and a full ``realpath`` of each cost ~15 ms per check
        of a 20-scene batch. A final name that is a symlink, ``..`` or ``.`` is resolved in full; the
        result is the same as ``realpath``'s (which resolves the folder, then the name only when it
        is a symlink). POSIX only: Windows' ``realpath`` asks the file system for the final path."""
        text = os.fspath(path)
        folder, name = os.path.split(text)
        if os.name != "posix" or not isinstance(text, str) or name in ("", ".", "..") or os.path.islink(text):
            return _key(text)
        real = self._folders.get(folder)
        if real is None:
            real = self._folders[folder] = os.path.realpath(folder or os.curdir)
        return os.path.normcase(os.path.join(real, name))

    def add(self, path: str | os.PathLike[str], role: str) -> None:
        """Protect ``path``; ``role`` says what it is, e.g. ``"an input scene of the pipeline"``."""
        if is_url(path):
            self._paths.setdefault(os.fspath(path), role)
            return
        self._paths.setdefault(self._key(path), role)
        try:
            stat = os.stat(path)
        except OSError:
            return
        self._ids.setdefault((stat.st_dev, stat.st_ino), role)

    def role(self, path: str | os.PathLike[str]) -> str | None:
        """What ``path`` is among the protected files, or None when it is none of them."""
        if is_url(path):
            return self._paths.get(os.fspath(path))
        found = self._paths.get(self._key(path))
        if found is not None:
            return found
        try:
            stat = os.stat(path)
        except OSError:
            return None
        return self._ids.get((stat.st_dev, stat.st_ino))


def run_files(
    pipeline: Pipeline,
    scenes: Iterable[tuple[str | os.PathLike[str], str | os.PathLike[str]]],
    *,
    outputs: bool = True,
    profile: str | os.PathLike[str] | None = None,
) -> RunFiles:
    """The files of a pipeline's run: scenes, mask files and sidecars, pipeline, profile, outputs.

    Parameters
    ----------
    pipeline : Pipeline
        The validated pipeline (its file, when loaded from one, is included).
    scenes : iterable of (input, output)
        :meth:`Pipeline.scenes`.
    outputs : bool
        Include the outputs (and their STAC items with ``output.stac``).
    profile : path or None
        The run profile file.
    """
    files = RunFiles()
    pairs = list(scenes)
    for scene, _ in pairs:
        files.add(scene, "an input scene of the pipeline")
        _add_sidecars(files, scene, "an input scene")
    for found in source_files(pipeline):
        files.add(found.path, f"the {found.what} of the pipeline")
        _add_sidecars(files, found.path, f"the {found.what} of the pipeline")
    for product in products(pipeline):  # band files not run (mask assets) and the STAC item
        for asset in (*product.bands.values(), *product.assets.values()):
            files.add(asset.href, f"a band file of product {product.id}")
            _add_sidecars(files, asset.href, f"a band file of product {product.id}")
        if product.item is not None:
            files.add(product.item, f"the STAC item of product {product.id}")
    if pipeline.source is not None:
        files.add(pipeline.source.file, "the pipeline file")
    if profile is not None:
        files.add(profile, "the run profile")
    if outputs:
        for _, output in pairs:
            files.add(output, "an output of this run")
        for item in output_items(pipeline, pairs):
            files.add(item, "a STAC item of this run")
    return files


def _add_sidecars(files: RunFiles, path: str | os.PathLike[str], what: str) -> None:
    """Protect the sidecars of ``path``: existing ones, and the names GDAL would read as one (a file
    written at ``scene.tif.msk`` or ``scene.tif.aux.xml`` would change how the scene is read)."""
    if is_url(path):
        return
    names = sidecar_names(path)
    existing = {name for name in names if os.path.isfile(name)}  # sidecars(path), names made once
    for name in names:
        role = f"a file of {what}" if name in existing else f"a name GDAL reads as a sidecar of {what}"
        files.add(name, role)


def output_items(
    pipeline: Pipeline, scenes: Iterable[tuple[str | os.PathLike[str], str | os.PathLike[str]]]
) -> list[Path]:
    """Where a run with ``output.stac`` writes its output Items (``ID.json`` beside each product's
    first output, :func:`geomask.stac_output.product_item_path`); [] without ``output.stac``."""
    if not pipeline.output.stac:
        return []
    from geomask.stac_output import product_item_path

    def key(path: str | os.PathLike[str]) -> str:
        return os.fspath(path) if is_url(path) else _key(path)

    by_input = {key(scene): output for scene, output in scenes}
    items = []
    for product in products(pipeline):
        if product.item is None:
            continue
        outputs = {
            name: by_input[key(asset.href)]
            for name, asset in product.bands.items()
            if key(asset.href) in by_input
        }
        if outputs and not any(is_url(o) for o in outputs.values()):
            items.append(product_item_path(product.id, outputs))
    return items


def check_output(
    path: str | os.PathLike[str],
    protected: RunFiles,
    *,
    flag: str,
    overwrite: bool,
    ours: Callable[[Path], bool],
) -> None:
    """Refuse to write ``path`` when it is a protected file, or a file geomask did not write.

    Parameters
    ----------
    path : path
        Where the command would write.
    protected : RunFiles
        The files of the run (:func:`run_files`).
    flag : str
        How the user named the path, for the message (``--report``, ``-o``, ``output.path``).
    overwrite : bool
        Whether ``--overwrite`` was given: lets a file geomask did not write be replaced, never a
        protected one.
    ours : callable
        Whether an existing file is one geomask wrote (:func:`is_geomask_tiff`, ...).

    Raises
    ------
    ConfigError
        ``path`` is an input, a mask file, the pipeline or profile, or another output of the run
        (exit 2, whatever ``overwrite``).
    OutputError
        ``path`` is a directory.
    OutputExistsError
        A file geomask did not write is at ``path`` and ``overwrite`` is false (exit 2).
    """
    role = protected.role(path)
    if role is not None:
        raise ConfigError(
            f"{flag} {os.fspath(path)}: is {role}, which geomask never replaces (not even with --overwrite); "
            "choose another path"
        )
    if is_url(path):
        return
    problem = output_name_problem(path)  # its temporary would fail mid-write as "cannot write"
    if problem is not None:
        raise ConfigError(f"{flag} {problem}")
    file = Path(path)
    if file.is_dir():
        raise OutputError(f"{flag} {file}: is a directory; give a file name")
    if (file.exists() or file.is_symlink()) and not overwrite and not ours(file):
        raise OutputExistsError(
            f"{flag} {file}: a file that geomask did not write is there; pass --overwrite to replace it, "
            "or choose another path"
        )


def is_geomask_tiff(path: Path) -> bool:
    """Whether ``path`` is a GeoTIFF geomask wrote (a run output or a mask: ``GEOMASK_*`` tags)."""
    from geomask.output.check import read_tags

    tags = read_tags(path)
    return tags is not None and any(k.startswith("GEOMASK_") for k in tags)


def is_geomask_report(path: Path) -> bool:
    """Whether ``path`` is a JSON report geomask wrote (an object with ``geomask_version``)."""
    try:
        if path.stat().st_size > _REPORT_LIMIT:
            return False
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and "geomask_version" in document


def is_geomask_item(path: Path) -> bool:
    """Whether ``path`` is a STAC Item geomask wrote (``processing:software`` names geomask)."""
    try:
        if path.stat().st_size > _REPORT_LIMIT:
            return False
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    properties = document.get("properties") if isinstance(document, dict) else None
    software = properties.get("processing:software") if isinstance(properties, dict) else None
    return isinstance(software, dict) and "geomask" in software


def check_output_items(
    pipeline: Pipeline,
    scenes: Iterable[tuple[str | os.PathLike[str], str | os.PathLike[str]]],
    *,
    overwrite: bool,
) -> None:
    """Refuse, before any scene runs, an output STAC Item path (``output.stac``) holding a file
    geomask did not write, unless ``overwrite``; or a folder.

    Raises
    ------
    OutputExistsError
        A file geomask did not write is there and ``overwrite`` is false (exit 2).
    OutputError
        The path is a directory.
    """
    for item in output_items(pipeline, list(scenes)):
        check_output(item, RunFiles(), flag="output.stac:", overwrite=overwrite, ours=is_geomask_item)


def is_geomask_png(path: Path) -> bool:
    """Whether ``path`` is a PNG geomask wrote (a ``Software`` text chunk starting ``geomask``)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            software = image.info.get("Software") if image.format == "PNG" else None
    except (OSError, UnidentifiedImageError, ValueError):
        return False
    return isinstance(software, str) and software.startswith(PNG_SOFTWARE)


def check_run_outputs(
    pipeline: Pipeline,
    scenes: Iterable[tuple[str | os.PathLike[str], str | os.PathLike[str]]],
    *,
    profile: str | os.PathLike[str] | None = None,
) -> None:
    """Refuse a run whose output would replace an input, a mask file, the pipeline or profile file,
    or the output of another scene (after resolving symlinks), before any scene runs.

    Raises
    ------
    ConfigError
        Naming the output and what it is (exit 2, whatever ``--overwrite`` says).
    """
    pairs = list(scenes)
    inputs = run_files(pipeline, pairs, outputs=False, profile=profile)
    written = RunFiles()
    for scene, output in pairs:
        role = inputs.role(output) or written.role(output)
        if role is not None:
            raise ConfigError(
                f"output.path: {os.fspath(output)} (for {os.fspath(scene)}) is {role}, which geomask never "
                "replaces (not even with --overwrite); choose another output.path"
            )
        written.add(output, f"the output of {os.fspath(scene)} too")
    for item in output_items(pipeline, pairs):
        role = inputs.role(item) or written.role(item)
        if role is not None:
            raise ConfigError(
                f"output.stac: the output STAC item {item} is {role}, which geomask never replaces "
                "(not even with --overwrite); write the outputs to another folder (output.path)"
            )
