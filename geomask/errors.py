"""The exception hierarchy of geomask.

Every error geomask raises on purpose derives from :class:`GeomaskError`. Each
subclass also inherits the matching builtin (``ValueError``, ``OSError``,
``RuntimeError``) so callers that already catch those keep working. Recognise
errors by class, never by message text.

``exit_code`` is what the command line returns for an uncaught error of that
class: 2 for invalid input or usage (the user must change something before a
rerun can succeed), 1 for a run that failed.

Every exception class of the package is defined here, internal ones included (each says who
catches it), and so are the warnings (:class:`GeomaskWarning` and its subclasses).
"""

from __future__ import annotations

import errno as errno_codes
from dataclasses import dataclass

__all__ = [
    "At",
    "ConfigError",
    "CopyFailed",
    "GeomaskError",
    "GeomaskWarning",
    "GridError",
    "InputError",
    "KernelError",
    "LayoutMismatch",
    "MaskError",
    "NoOverlapWarning",
    "OutsideProjectionWarning",
    "OutputError",
    "OutputExistsError",
    "OutputLockedError",
    "Position",
    "Problem",
    "RepairedGeometryWarning",
    "WorkersCappedWarning",
    "RunError",
    "RunInterrupted",
    "SchedulerLost",
    "YamlError",
]


class GeomaskError(Exception):
    """Root of every geomask error."""

    exit_code: int = 1


class ConfigError(GeomaskError, ValueError):
    """A pipeline, profile or argument is invalid (bad key, type or value)."""

    exit_code = 2


class KernelError(ConfigError):
    """A kernel is unknown or its parameters or weights are invalid."""


class InputError(GeomaskError, ValueError):
    """An input file (scene, vector, class raster) is missing, unreadable or unsuitable."""

    exit_code = 2


class GridError(InputError):
    """A raster grid cannot be used: no CRS where one is needed, rotated transform, bad size."""


class MaskError(InputError):
    """A mask source cannot be rendered on the scene's grid."""


class OutputError(GeomaskError, OSError):
    """The output cannot be written: exists, not writable, disk full, failed check."""

    exit_code = 1


class RunError(GeomaskError, RuntimeError):
    """The run failed while computing (a corrupt tile, a lost scheduler)."""

    exit_code = 1


class OutputExistsError(OutputError):
    """The output path already exists and ``overwrite`` was not asked for (usage: exit 2)."""

    exit_code = 2


class OutputLockedError(OutputError):
    """Another geomask process is writing the same output (its lock file is held): exit 1.

    Nothing was changed; rerun once that process has finished (its finished outputs are then
    skipped as current).
    """


class RunInterrupted(RunError):
    """The run was stopped by Ctrl-C (SIGINT) or SIGTERM; ``exit_code`` is 128 + the signal number.

    Outputs finished before the signal are kept; the scene in progress leaves nothing at its output
    path (its temporary file is removed), so rerunning the same command does the rest.
    """

    exit_code = 130

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class SchedulerLost(RunError):
    """The client lost its dask scheduler: every scene stops, even with ``continue_on_error``."""


# --- configuration files ---------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Position:
    """A place in a file, both numbers 1-based."""

    line: int
    column: int


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file, printable as ``FILE:LINE:COL: key.path: message``.

    Attributes
    ----------
    file : str
        The file as the user named it.
    position : Position or None
        Where the problem is; None when it concerns the whole file.
    key : str
        The dotted key path (``steps[0].kernel.sigma``), empty for the whole document.
    message : str
        What is wrong and what to do.
    """

    file: str
    position: Position | None
    key: str
    message: str

    def __str__(self) -> str:
        where = (
            self.file if self.position is None else f"{self.file}:{self.position.line}:{self.position.column}"
        )
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class KernelBuildError(RunError):
    """The C kernels could not be built (no C compiler, or it failed); see :mod:`geomask.loops`."""


class YamlError(ConfigError):
    """A file that is not acceptable YAML, or data that do not fit a schema.

    The message is the first problem; :attr:`problems` holds all of them, in file order.
    """

    def __init__(self, problems: list[Problem]) -> None:
        if not problems:
            raise ValueError("YamlError needs at least one problem")
        self.problems = sorted(problems, key=_problem_order)
        first = str(self.problems[0])
        more = len(self.problems) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        super().__init__(first + suffix)


def _problem_order(problem: Problem) -> tuple[int, int]:
    pos = problem.position
    return (pos.line, pos.column) if pos is not None else (0, 0)


class At(ValueError):
    """A model-level problem that belongs to one key (so the message can point at its line).

    Raised inside the config models' validators only: pydantic turns it into a validation error,
    and :func:`geomask.config._report.problems_from` places its message at ``key``. Not a
    :class:`GeomaskError`: it never leaves the validation.
    """

    def __init__(self, key: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.key = key


# --- internal signals of the output writer (caught and reported as OutputError) ----------------


class LayoutMismatch(GeomaskError):
    """The two files' tiles are not interchangeable (the caller then re-encodes the tiles)."""


class CopyFailed(OutputError):
    """GDAL's copy failed; ``message`` is GDAL's last error, ``errno`` the C errno (0 if none)."""

    def __init__(self, message: str, gdal_class: int, errno: int) -> None:
        super().__init__(message)
        self.gdal_class = gdal_class
        self.errno = errno

    @property
    def no_space(self) -> bool:
        """The copy failed because the disk is full (ENOSPC, or EFBIG/EDQUOT: no room for the file)."""
        return self.errno in (errno_codes.ENOSPC, errno_codes.EDQUOT, errno_codes.EFBIG)


# --- warnings (a user can filter them by class) ----------------------------------------------


class GeomaskWarning(UserWarning):
    """Root of geomask's warnings."""


class NoOverlapWarning(GeomaskWarning):
    """A mask source does not overlap the scene: the scene passes through unchanged."""


class RepairedGeometryWarning(GeomaskWarning):
    """Invalid geometries were repaired with ``shapely.make_valid``."""


class WorkersCappedWarning(GeomaskWarning):
    """More workers were asked for than the machine can hold: fewer were started (the pixels are the same)."""


class OutsideProjectionWarning(GeomaskWarning):
    """Geometries reach beyond the area where a CRS transformation is defined: clipped or dropped."""


class KernelBuildWarning(GeomaskWarning):
    """The C kernels could not be built: the numba build of the same loops is used (same pixels;
    its first run on a machine compiles for 15-20 s)."""
