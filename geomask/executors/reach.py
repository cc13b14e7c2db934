"""Before a batch starts on a cluster: can every worker see every path it will need?

Workers open the scenes and mask files and (distributed by scene) write the outputs themselves, with
their own file systems. A path that exists here but not on a worker (a laptop folder, a disk not
mounted on the compute nodes) would otherwise fail scene after scene, or only once the batch is
long under way. :func:`check_reachable` asks every connected worker, in one round trip, to look at
every local input, mask file and output folder, and reports the first problem as one line naming
the worker and the path. URLs and GDAL virtual paths (``s3://``, ``/vsis3/``) are not checked: the
tasks report those with the worker's address.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from geomask.errors import InputError, OutputError

__all__ = ["check_reachable", "unreachable"]

_SHOWN = 3
"""Problems a worker reports at most (the first is raised; the count says how many more)."""


def _local(path: str | os.PathLike[str]) -> bool:
    text = os.fspath(path)
    return "://" not in text and not text.startswith("/vsi")


def _folder_problem(output: Path) -> str | None:
    """Why ``output`` cannot be written here, or None: a file can be created (and is removed again)
    in its nearest existing folder."""
    folder = output.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder}: not a folder"
    try:  # a real file: access() says yes to root on a read-only mount
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".geomask-probe-"):
            pass
    except OSError as e:
        return f"{folder}: not writable ({e.strerror or e})"
    return None


def unreachable(
    inputs: Iterable[str | os.PathLike[str]],
    files: Iterable[str | os.PathLike[str]],
    outputs: Iterable[str | os.PathLike[str]],
) -> tuple[list[tuple[str, str]], int]:
    """The problems this process has with the paths: ``([(kind, message), ...], total)``.

    ``kind`` is ``input``, ``mask`` or ``output``; at most :data:`_SHOWN` are listed, ``total`` counts
    them all. Runs on every worker (:func:`check_reachable`); absolute paths expected.
    """
    found: list[tuple[str, str]] = []
    total = 0
    for kind, paths in (("input", inputs), ("mask", files)):
        for path in paths:
            if _local(path) and not os.path.isfile(path):
                total += 1
                if len(found) < _SHOWN:
                    found.append((kind, f"{path}: no such file"))
    folders = {Path(os.path.abspath(p)).parent: Path(os.path.abspath(p)) for p in outputs if _local(p)}
    for output in folders.values():
        problem = _folder_problem(output)
        if problem is not None:
            total += 1
            if len(found) < _SHOWN:
                found.append(("output", problem))
    return found, total


def check_reachable(
    client: Any,
    *,
    inputs: Iterable[str | os.PathLike[str]],
    files: Iterable[str | os.PathLike[str]],
    outputs: Iterable[str | os.PathLike[str]],
) -> None:
    """Check on every worker of ``client`` that the inputs, mask files and output folders are there.

    Parameters
    ----------
    client : distributed.Client
        Connected; the workers connected now are checked.
    inputs, files, outputs : iterables of paths
        Scenes, files the pipeline names (masks, class rasters) and output paths, absolute (or
        relative to this process's working directory: made absolute here). Only those this process
        can see are checked: one missing here too is reported by the run as usual.

    Raises
    ------
    InputError
        A worker cannot find an input or a mask file (exit 2).
    OutputError
        An output folder is not writable on a worker (exit 1).
    """
    # Only what this process sees: a path missing here too is no matter of reach (the run reports it).
    here = [os.path.abspath(p) for p in inputs if _local(p) and os.path.isfile(p)]
    masks = [os.path.abspath(p) for p in files if _local(p) and os.path.isfile(p)]
    folders = [
        os.path.abspath(p) for p in outputs if _local(p) and _folder_problem(Path(os.path.abspath(p))) is None
    ]
    absolute = [here, masks, folders]
    answers = client.run(unreachable, *absolute, on_error="return")
    for worker, answer in sorted(answers.items()):
        if isinstance(answer, BaseException) or not answer[0]:
            continue  # a worker that could not answer: its tasks will say what is wrong
        (kind, message), total = answer[0][0], answer[1]
        more = f" ({total - 1} more problems there)" if total > 1 else ""
        text = (
            f"{message} on dask worker {worker}{more}: every worker must see the inputs, the mask files and "
            "the output folders under the same paths (a shared file system or an object store)"
        )
        if kind == "output":
            raise OutputError(text)
        raise InputError(text)
