"""Temporary names beside the output, the sweep of a killed run's temporaries, the atomic rename,
and outputs staged locally before their upload to ``s3://``.

Nothing is ever written at an output path but a finished, checked file: the writer works on
``NAME.geomask-PID-RANDOM.partial`` beside it and :func:`move_into_place` renames that file over
the output at the end (``os.replace``: atomic on one file system).
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import rasterio
import rasterio.shutil
from rasterio._err import CPLE_BaseError
from rasterio.errors import RasterioError
from rasterio.windows import Window

from geomask.errors import ConfigError, GeomaskWarning, OutputError
from geomask.io import ALLOWED_DRIVERS, gdal_message

__all__ = [
    "PARTIAL_SUFFIX",
    "move_into_place",
    "partial_path",
    "remove_quietly",
    "remove_stale_partials",
    "remove_temporaries",
    "staged_output",
]

PARTIAL_SUFFIX = ".partial"


def partial_path(final: Path) -> Path:
    """A unique temporary name beside ``final``: ``NAME.geomask-PID-RANDOM.partial``."""
    return final.with_name(f"{final.name}.geomask-{os.getpid()}-{uuid.uuid4().hex[:8]}{PARTIAL_SUFFIX}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # no such process (an absurd PID included)
        return False
    except OSError:  # another user's process, or no way to tell: keep its file
        return True
    return True


def remove_stale_partials(final: Path, *, any_pid: bool = False) -> list[Path]:
    """Remove the temporary files a killed earlier run left beside ``final``.

    Parameters
    ----------
    final : Path
        An output path.
    any_pid : bool
        Remove them whatever PID they name. Only for the holder of ``final``'s output lock
        (:func:`geomask.lock.output_lock`): it is the only writer, so every temporary file there is
        stale, even one whose PID is that of a live process on another host (a dask worker).

    Returns
    -------
    list of Path
        The files removed: ``NAME.geomask-PID-RANDOM.partial`` beside ``final`` whose PID is not a
        running process, and the files GDAL named after them (``...partial.ovr.tmp``, the
        overviews of a COG conversion; ``...partial.msk.ovr.tmp``; ``...partial.aux.xml``).

    Notes
    -----
    A file whose PID is alive (or whose liveness cannot be checked) is kept: it may belong to a run
    in progress. PIDs are those of this machine, so a folder shared with another host may keep
    files of runs killed there, and a reused PID keeps a stale file until that process ends.
    """
    if "://" in str(final):  # a URL: nothing local to clean
        return []
    pattern = re.compile(
        re.escape(final.name) + r"\.geomask-(\d+)-[0-9a-f]+" + re.escape(PARTIAL_SUFFIX) + r"(\..+)?"
    )
    removed = []
    for candidate in glob.glob(glob.escape(str(final)) + ".geomask-*" + PARTIAL_SUFFIX + "*"):
        path = Path(candidate)
        match = pattern.fullmatch(path.name)
        if match is None or (not any_pid and _pid_alive(int(match.group(1)))):
            continue
        try:
            path.unlink()
        except OSError:  # gone already, or not ours to remove: the run goes on without it
            continue
        removed.append(path)
    return removed


def remove_quietly(path: Path) -> None:
    """Remove ``path`` if possible, never raising."""
    # Best effort on the way out of an error: never replace that error with another one
    # (a read-only folder answers EROFS even for a file that is not there).
    with contextlib.suppress(OSError):
        path.unlink()


def remove_temporaries(path: Path) -> None:
    """Remove the temporary ``path`` and the files GDAL named after it (``path.ovr.tmp`` ...)."""
    with contextlib.suppress(OSError):
        for candidate in [path, *path.parent.glob(glob.escape(path.name) + ".*")]:
            with contextlib.suppress(OSError):
                candidate.unlink()


def move_into_place(ready: Path, final: Path) -> None:
    """Rename the finished temporary file ``ready`` to ``final`` (atomic, replacing it).

    Raises
    ------
    OutputError
        The rename failed (naming ``final`` and the system's reason).
    """
    try:
        os.replace(ready, final)
    except OSError as e:
        raise OutputError(f"{final}: cannot move the finished file into place ({e})") from e


@contextlib.contextmanager
def staged_output(final: str | os.PathLike[str]) -> Iterator[Path]:
    """A local path to write an output to; for an ``s3://`` URL, uploaded when the block succeeds.

    Parameters
    ----------
    final : path or ``s3://bucket/key``
        The output location.

    Yields
    ------
    Path
        ``final`` itself for a local path. For a URL: a file in a new temporary folder, uploaded to
        the URL once the block ends without error; then the folder is removed. Other files written
        there (a STAC Item) are not uploaded: a warning names them.

    Raises
    ------
    OutputError
        The upload failed (missing bucket, refused credentials, unreachable endpoint), naming the URL.

    Notes
    -----
    The upload goes through GDAL's ``/vsis3/`` (credentials and endpoint from the AWS environment
    variables). S3 makes an object visible only when its upload completes (a single PUT, or a
    multipart upload GDAL aborts on error), so a failed upload leaves no partial object.
    """
    from geomask.urls import gdal_path, is_url, writable_url

    text = os.fspath(final)
    if not is_url(text):
        yield Path(text)
        return
    if not writable_url(text):
        raise ConfigError(f"{text}: outputs can be local paths or s3://bucket/key URLs only")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="geomask-upload-") as folder:
        name = text.rstrip("/").rsplit("/", 1)[-1]
        local = Path(folder) / name
        yield local
        prefix = text[: len(text) - len(name)]
        _upload(local, gdal_path(text), text)
        others = sorted(p.name for p in Path(folder).iterdir() if p != local)
        if others:
            warnings.warn(
                f"{prefix}: only the raster is uploaded; {', '.join(others)} stayed local and was removed "
                "(write STAC Items of s3:// outputs with a local output, then copy)",
                GeomaskWarning,
                stacklevel=3,
            )


def _upload(path: Path, target: str, url: str) -> None:
    """Copy a finished local file to a GDAL virtual file system path (GDAL's CPLCopyFile, via
    ``rasterio.shutil.copyfiles``: the bytes as they are)."""
    try:
        rasterio.shutil.copyfiles(str(path), target)
        # GDAL only logs some failed PUTs: the object must now open as the raster we wrote.
        with rasterio.open(target, sharing=False, driver=ALLOWED_DRIVERS[0]) as ds:
            ds.read(1, window=Window(0, 0, min(ds.width, 16), min(ds.height, 16)))
    except (RasterioError, CPLE_BaseError, OSError) as e:
        raise OutputError(
            f"{url}: upload failed ({gdal_message(e)}); check the bucket, AWS credentials and endpoint "
            "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_S3_ENDPOINT)"
        ) from e
