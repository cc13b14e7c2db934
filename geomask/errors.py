"""The exception hierarchy of geomask.

Every error geomask raises on purpose derives from :class:`GeomaskError`. Each
subclass also inherits the matching builtin (``ValueError``, ``OSError``,
``RuntimeError``) so callers that already catch those keep working. Recognise
errors by class, never by message text.

``exit_code`` is what the command line returns for an uncaught error of that
class: 2 for invalid input or usage (the user must change something before a
rerun can succeed), 1 for a run that failed.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "GeomaskError",
    "GridError",
    "InputError",
    "KernelError",
    "MaskError",
    "OutputError",
    "OutputExistsError",
    "OutputLockedError",
    "RunError",
    "RunInterrupted",
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
