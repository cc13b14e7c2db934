"""A GDAL ``CreateCopy`` (COG conversion) that Ctrl-C and SIGTERM can stop, with tags added on the way.

Why: ``rasterio.shutil.copy`` calls ``GDALCreateCopy`` without a progress callback, as one C call.
Converting a large scene to COG (overviews, then the tiles) takes many seconds during which Python
cannot act on a signal: Ctrl-C waited for the end, and a SIGKILL then left ``.partial.ovr.tmp``
files. Neither rasterio nor rio-cogeo exposes GDAL's progress callback for a copy, so this module
calls the same ``GDALCreateCopy`` of the GDAL that rasterio loaded (through :mod:`ctypes`) with a
progress function that returns "stop" once asked to. The copy runs in a helper thread; the calling
thread waits for it in short steps, so a ``KeyboardInterrupt`` (SIGINT, or SIGTERM as the CLI maps
it) reaches the caller at once, which asks the copy to stop and waits for GDAL to give up (the next
progress call, a fraction of a second) before it re-raises. GDAL removes its overview temporaries
when a copy is stopped; the caller removes the destination.

Tags: ``tags`` are set on the source dataset in memory only (PAM disabled for the copy, so no
``.aux.xml`` is written), so the intermediate file never carries them and the copy does.

GDAL's error messages during the copy (e.g. one ``_tiffWriteProc`` line per strip on a full disk)
are not printed: the last one is returned in :class:`~geomask.errors.CopyFailed` with its GDAL
error class and the C ``errno`` left by the failed write.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Mapping

import rasterio._base

from geomask.errors import CopyFailed

__all__ = ["create_copy", "quiet_libtiff_errors"]

_GA_READONLY = 0
_CPLE_USER_INTERRUPT = 9

_PROGRESS = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_double, ctypes.c_char_p, ctypes.c_void_p)


def _load() -> ctypes.CDLL:
    # dlsym on an extension module of rasterio also searches the libraries it depends on: this is
    # the libgdal rasterio uses (bundled in its wheel, or the system's), whatever its file name.
    lib = ctypes.CDLL(rasterio._base.__file__, use_errno=True)
    vp, cp = ctypes.c_void_p, ctypes.c_char_p
    signatures: dict[str, tuple[object, list[object]]] = {
        "GDALAllRegister": (None, []),
        "GDALOpen": (vp, [cp, ctypes.c_int]),
        "GDALGetDriverByName": (vp, [cp]),
        "GDALCreateCopy": (vp, [vp, cp, vp, ctypes.c_int, ctypes.POINTER(cp), _PROGRESS, vp]),
        "GDALClose": (ctypes.c_int, [vp]),
        "GDALSetMetadataItem": (ctypes.c_int, [vp, cp, cp, cp]),
        "CPLSetThreadLocalConfigOption": (None, [cp, cp]),
        "CPLPushErrorHandler": (None, [vp]),
        "CPLPopErrorHandler": (None, []),
        "CPLErrorReset": (None, []),
        "CPLGetLastErrorNo": (ctypes.c_int, []),
        "CPLGetLastErrorMsg": (cp, []),
        "TIFFSetErrorHandler": (vp, [vp]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    return lib


_lib: ctypes.CDLL | None = None


def _gdal() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        _lib = _load()
    return _lib


def _copy(
    src: str,
    dst: str,
    driver: str,
    options: list[str],
    tags: Mapping[str, str],
    stop: threading.Event,
    result: list[CopyFailed | None],
) -> None:
    """The copy itself, in the helper thread (GDAL's error state and handlers are per thread)."""
    lib = _gdal()
    lib.GDALAllRegister()  # what rasterio does on its first open (a no-op once done)

    @_PROGRESS
    def progress(done: float, message: bytes | None, data: object) -> int:
        return 0 if stop.is_set() else 1

    lib.CPLPushErrorHandler(ctypes.cast(lib.CPLQuietErrorHandler, ctypes.c_void_p))
    lib.CPLSetThreadLocalConfigOption(b"GDAL_PAM_ENABLED", b"NO")
    lib.CPLErrorReset()
    ctypes.set_errno(0)
    failure: CopyFailed | None = None
    try:
        source = lib.GDALOpen(os.fsencode(src), _GA_READONLY)
        if not source:
            failure = _last_error(lib, f"cannot open {src}")
            return
        try:
            for key, value in tags.items():
                lib.GDALSetMetadataItem(source, key.encode(), value.encode(), None)
            handle = lib.GDALGetDriverByName(driver.encode())
            if not handle:
                failure = CopyFailed(f"GDAL has no {driver} driver", 0, 0)
                return
            array = (ctypes.c_char_p * (len(options) + 1))(*[o.encode() for o in options], None)
            copied = lib.GDALCreateCopy(handle, os.fsencode(dst), source, 1, array, progress, None)
            if not copied:
                failure = _last_error(lib, "the copy failed")
                return
            if lib.GDALClose(copied) != 0:
                failure = _last_error(lib, "finishing the copy failed")
        finally:
            lib.GDALClose(source)
    finally:
        lib.CPLSetThreadLocalConfigOption(b"GDAL_PAM_ENABLED", None)
        lib.CPLPopErrorHandler()
        result.append(failure)


def _last_error(lib: ctypes.CDLL, fallback: str) -> CopyFailed:
    message = lib.CPLGetLastErrorMsg()
    text = message.decode("utf-8", "replace").strip() if message else ""
    return CopyFailed(text or fallback, int(lib.CPLGetLastErrorNo()), ctypes.get_errno())


def create_copy(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    driver: str,
    options: Mapping[str, object],
    tags: Mapping[str, str] | None = None,
) -> None:
    """Copy the raster ``src`` to a new file ``dst`` with GDAL's ``driver``, stoppable by Ctrl-C.

    Parameters
    ----------
    src : path
        A local raster GDAL opens (read only).
    dst : path
        The file to create (replaced if it exists).
    driver : str
        GDAL driver short name, e.g. ``COG``.
    options : mapping
        Creation options; keys are upper-cased, booleans written ``TRUE``/``FALSE``.
    tags : mapping, optional
        Dataset metadata items (default domain) the copy carries on top of ``src``'s; ``src`` itself
        is not changed.

    Raises
    ------
    geomask.errors.CopyFailed
        GDAL could not open ``src`` or write ``dst`` (its last error message, error class and the
        C errno). ``dst`` may be left partly written: the caller removes it.
    KeyboardInterrupt
        Raised in the calling thread during the copy (SIGINT, or SIGTERM where it is mapped to it):
        the copy is stopped first, then the interrupt re-raised. ``dst`` may be left: the caller
        removes it.

    Notes
    -----
    GDAL configuration options set with ``rasterio.Env`` apply (they are process-wide).
    """
    strings = [f"{k.upper()}={_text(v)}" for k, v in options.items()]
    stop = threading.Event()
    result: list[CopyFailed | None] = []
    worker = threading.Thread(
        target=_copy,
        args=(os.fspath(src), os.fspath(dst), driver, strings, dict(tags or {}), stop, result),
        name="geomask-gdal-copy",
        daemon=True,
    )
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.05)
    except BaseException:
        stop.set()
        while worker.is_alive():  # GDAL gives up at its next progress call
            with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C: still wait for it
                worker.join()
        raise
    if result and result[0] is not None:
        raise result[0]


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(value)


def quiet_libtiff_errors() -> None:
    """Stop libtiff printing write errors straight to stderr (``_tiffWriteProc: No space left ...``).

    GDAL reads and writes TIFFs through its own I/O functions, which report a failed ``write`` or
    ``seek`` with libtiff's process-wide error handler; that handler is libtiff's default, which
    prints one line per failed strip or tile to file descriptor 2, past Python and past GDAL's
    error handling. The failure itself still reaches GDAL (the write returns an error, reported
    as a ``CPLError`` and by rasterio as an exception): only the duplicate lines go. For a command
    line whose errors are one line each; a library caller keeps libtiff's default unless it calls
    this.
    """
    _gdal().TIFFSetErrorHandler(None)
