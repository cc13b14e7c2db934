"""One writer per output across processes: an advisory lock file beside each output.

Two ``geomask run`` processes started on the same pipeline would otherwise both decide that an
output is missing, both compute it and race to rename their temporary files into place. Before a
scene's output is looked at, :func:`output_lock` takes an exclusive lock on ``NAME.geomask.lock``
beside the output (created if needed, holding the owner's PID for the message). A second process
that finds the lock held does not wait: it raises :class:`~geomask.errors.OutputLockedError`
naming the PID, so that scene fails (exit 1) and nothing of the first run is touched; a rerun
after the first process has finished skips the outputs it completed.

The lock is ``flock(2)``, held by the kernel for the open file: it is released when the process
ends in any way, SIGKILL included, so there are no stale locks to detect and a reused PID cannot
keep one alive. The lock file is removed on release; a file left by a killed process is simply
locked again by the next run.

Notes
-----
``flock`` is advisory and local to one kernel: two machines writing the same folder on a network
file system are only protected where the file system forwards ``flock`` (Linux NFS does, as
POSIX locks; so do CephFS, GPFS and Lustre mounted with ``-o flock``; a Lustre client mounted with
``localflock`` or without it does not). A dask worker that writes an output (a batch distributed
by scene) takes this lock itself, on the machine it runs on: where the shared file system forwards
``flock``, the lock holds across the cluster's hosts, and a worker killed with its host gone keeps
it until the file server drops that client (NFSv4: its lease, 90 s by default). The holder of the
lock is the only writer of that output, so it may remove every temporary file beside the output
whatever PID it names (:func:`geomask.output.staging.remove_stale_partials` with ``any_pid``). On
systems without :mod:`fcntl` (Windows), and for outputs that are URLs or GDAL
virtual paths (``/vsis3/...``), no lock is taken.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from geomask.errors import ConfigError, OutputError, OutputLockedError
from geomask.messages import name_too_long

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_SUFFIX", "LONGEST_TEMPORARY", "lock_path", "output_lock", "output_name_problem"]

LONGEST_TEMPORARY = ".geomask-4194304-ffffffff.partial.msk.ovr.tmp"
"""The longest name a run writes beside ``NAME``, as a suffix: the temporary output
(:func:`geomask.output.staging.partial_path`, ``NAME.geomask-PID-RANDOM.partial``, PID up to Linux's
pid_max) and the mask overviews GDAL names after it during a COG conversion."""


def output_name_problem(output: str | os.PathLike[str]) -> str | None:
    """Why the files a run writes beside ``output`` would have names too long, or None.

    ``output`` itself may fit while its temporary (``NAME.geomask-PID-RANDOM.partial``, up to
    ``len(LONGEST_TEMPORARY)`` bytes longer) does not: that failed mid-run as "cannot write".
    """
    file = Path(output)
    too_long = name_too_long(file.with_name(file.name + LONGEST_TEMPORARY))
    if too_long is None:
        return None
    return (
        f"{output}: {too_long} with the suffix of the temporary files written beside it "
        f"(up to {len(LONGEST_TEMPORARY)} bytes, e.g. {LONGEST_TEMPORARY}); choose a shorter output path"
    )


LOCK_SUFFIX = ".geomask.lock"
"""Suffix of the lock file beside an output: ``NAME.geomask.lock``."""


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")
"""A URL (``s3://``, ``https://``; also as a Path makes it, ``s3:/``): no local lock."""


def lock_path(output: Path) -> Path:
    """The lock file of ``output``: ``NAME.geomask.lock`` in the same folder."""
    return output.with_name(output.name + LOCK_SUFFIX)


def _holder(fd: int, wait: float = 0.5) -> str:
    """The PID recorded in an open lock file, as text for a message ('' if none is there).

    The holder writes its PID right after it takes the lock, so a run that finds the lock held
    within that moment polls for up to ``wait`` seconds before it gives up on naming it.
    """
    deadline = time.monotonic() + wait
    while True:
        with contextlib.suppress(OSError):
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            if text.isdigit():
                return f" (pid {text})"
        if time.monotonic() >= deadline:
            return ""
        time.sleep(0.01)


@contextlib.contextmanager
def output_lock(output: Path) -> Iterator[bool]:
    """Hold the lock of ``output`` for the duration of the block.

    Parameters
    ----------
    output : Path
        A local output path; its folder is created if missing (as the run would).

    Yields
    ------
    bool
        True when a lock is held; False where none can be taken (Windows, a URL or GDAL virtual path).

    Raises
    ------
    OutputLockedError
        Another process holds the lock (exit 1): ``another geomask run (pid N) is writing OUTPUT``.
    OutputError
        The folder or the lock file cannot be created (not writable, a file in the way).

    Notes
    -----
    The lock is not re-entrant: taking it twice in one process fails like a second process.
    """
    text = str(output)
    if fcntl is None or text.startswith("/vsi") or _URL.match(text):  # Windows, or not a local file
        yield False
        return
    problem = output_name_problem(output)
    if problem is not None:
        raise ConfigError(problem)
    created = _make_folder(output.parent)
    try:
        with _held(output):
            yield True
    finally:
        for folder in created:  # deepest first: a run that wrote nothing leaves no empty folder
            with contextlib.suppress(OSError):  # not empty (an output, another run's lock): kept
                folder.rmdir()


def _make_folder(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; the ones created, deepest first.

    Raises
    ------
    OutputError
        A folder cannot be created (not writable, a file in the way).
    """
    missing = []
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{folder}: cannot create the output directory ({e.strerror or e})") from e
    return missing


@contextlib.contextmanager
def _held(output: Path) -> Iterator[None]:
    """The lock file of ``output`` created and locked for the block (its folder exists)."""
    path = lock_path(output)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:  # another run removed the empty folder it had made: make it again
            _make_folder(output.parent)
            continue
        except OSError as e:
            too_long = name_too_long(path) if e.errno == errno.ENAMETOOLONG else None
            if too_long is not None:
                raise ConfigError(
                    f"{output}: {too_long} (with the {LOCK_SUFFIX} suffix of its lock file); "
                    "choose a shorter output path"
                ) from e
            raise OutputError(
                f"{output}: cannot create the lock file {path.name} ({e.strerror or e}); "
                "the output folder must be writable"
            ) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise OutputLockedError(
                f"{output}: another geomask run{holder} is writing this output; wait for it to finish "
                "and rerun (its finished outputs are skipped), or give this run another output.path"
            ) from None
        except OSError as e:
            os.close(fd)
            raise OutputError(f"{output}: cannot lock {path.name} ({e.strerror or e})") from e
        # A previous holder may have removed the file between our open and our lock: then the lock
        # is on a file no longer at ``path``; start over with the current one.
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        with contextlib.suppress(OSError):  # the PID is only for the message (a full disk is reported later)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield True
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)
