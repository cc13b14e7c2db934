"""Options shared by the commands, and the one place user errors become clean exits.

Every command body runs inside :func:`handle_errors`: a :class:`~geomask.errors.GeomaskError` is
printed as one line ``error: <message>`` on stderr and the command exits with the error's
``exit_code`` (2: fix the pipeline, input or arguments; 1: the run failed); any other exception is
a bug, printed as one line and exit 1. ``--debug`` adds the traceback. Warnings print as one line
``warning: <message>``.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from geomask.errors import GeomaskError, GeomaskWarning, RunInterrupted

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "DebugOption",
    "PipelineArgument",
    "QuietOption",
    "echo_error",
    "handle_errors",
    "interruptible",
    "one_line",
]

EXIT_OK = 0
_NOT_GEOREFERENCED = r"(Dataset has no geotransform|The given matrix is equal to Affine\.identity)"
EXIT_FAILED = 1
EXIT_USAGE = 2


PipelineArgument = Annotated[
    Path,
    typer.Argument(
        metavar="PIPELINE.yaml",
        help="Pipeline file (see `geomask schema` and README.md); its relative paths resolve against "
        "its own folder.",
        show_default=False,
    ),
]
DebugOption = Annotated[
    bool,
    typer.Option("--debug", help="On an error, print the full traceback as well as the one-line message."),
]
QuietOption = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="No progress bar and no summary table; only the result lines."),
]


def one_line(text: str) -> str:
    """``text`` with its whitespace (newlines included) collapsed, so a message stays on one line."""
    return " ".join(str(text).split())


def echo_error(message: str) -> None:
    """Print ``error: message`` on one line of stderr."""
    typer.echo(f"error: {one_line(message)}", err=True)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    prefix = "" if issubclass(category, GeomaskWarning) else f"{category.__name__}: "
    print(f"warning: {prefix}{one_line(str(message))}", file=sys.stderr)


@contextmanager
def interruptible(finished: Callable[[], Sequence[Any]], total: int) -> Iterator[None]:
    """Stop cleanly on Ctrl-C (SIGINT) or SIGTERM, saying what finished.

    Inside the block SIGTERM is handled like SIGINT: Python raises ``KeyboardInterrupt`` where the
    run is, so every ``finally`` runs (the scene in progress removes its temporary file, pending
    windows are dropped, worker pools shut down). The interrupt leaves the block as
    :class:`~geomask.errors.RunInterrupted` (exit 130 for SIGINT, 143 for SIGTERM) whose message
    counts the scenes that finished (their lines were printed as they finished).

    Parameters
    ----------
    finished : callable
        Returns the reports (objects with a ``status``) of the scenes finished so far.
    total : int
        How many scenes the run has.
    """
    received = [signal.SIGINT]

    def on_term(signum: int, frame: object) -> None:
        received[0] = signal.Signals(signum)
        raise KeyboardInterrupt

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_term) if main else None
    try:
        yield
    except KeyboardInterrupt:
        reports = list(finished())
        counts = {s: sum(r.status == s for r in reports) for s in ("done", "skipped", "failed")}
        detail = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        raise RunInterrupted(
            f"interrupted by {received[0].name}: {len(reports)} of {total} scene(s) finished"
            f"{f' ({detail}, listed above)' if detail else ''}; the scene in progress was stopped and "
            "its temporary file removed; run the same command again to do the rest (finished outputs "
            "are skipped)",
            exit_code=128 + int(received[0]),
        ) from None
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


@contextmanager
def handle_errors(debug: bool, *, writes: bool = True) -> Iterator[None]:
    """Run a command body, turning errors into one line and an exit code, and warnings into one line.

    Parameters
    ----------
    debug : bool
        Print the traceback of an error too.
    writes : bool
        The command writes rasters: libtiff's own error lines are silenced first (this loads
        GDAL, ~0.3 s; commands that only read YAML pass False).
    """
    if writes:
        from geomask.output.gdalcopy import quiet_libtiff_errors  # loads GDAL: only when writing

        quiet_libtiff_errors()  # a full disk: the one line below, not one more per strip
    # rasterize's scratch dataset (vector masks) sometimes warns that it has no geotransform when
    # run from several threads: noise about an internal buffer, not the user's files. Filtered for
    # the whole process, not only inside the block below: after Ctrl-C, window threads still
    # rasterizing until the process exits would print it below the one-line error.
    # (Matched by message, rasterio's NotGeoreferencedWarning, so that a command that never reads a
    # raster does not import rasterio for its warning class.)
    # No module= condition: a warning recorded by another thread's catch_warnings (vector reads) is
    # re-emitted with warn_explicit, whose module is then the file's path.
    warnings.filterwarnings("ignore", message=_NOT_GEOREFERENCED)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.simplefilter("always", GeomaskWarning)
        warnings.filterwarnings("ignore", message=_NOT_GEOREFERENCED)
        warnings.showwarning = _show_warning
        try:
            yield
        except (typer.Exit, typer.Abort):
            raise
        except GeomaskError as e:
            if debug:
                traceback.print_exc()
            echo_error(str(e))
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            echo_error("interrupted")
            raise typer.Exit(130) from None
        except OSError as e:
            if debug:
                traceback.print_exc()
            if e.errno != errno.ENAMETOOLONG:
                echo_error(
                    f"unexpected {type(e).__name__}: {e} (a bug: rerun with --debug and report the traceback)"
                )
                raise typer.Exit(EXIT_FAILED) from None
            # A path the OS refuses as too long, wherever it was opened: a usage error, said as such.
            from geomask.messages import name_too_long

            name = os.fsdecode(e.filename) if e.filename is not None else "a path"
            detail = (name_too_long(e.filename) if e.filename is not None else None) or "file name too long"
            echo_error(f"{name}: {detail}; shorten it")
            raise typer.Exit(2) from None
        except Exception as e:
            if debug:
                traceback.print_exc()
            echo_error(
                f"unexpected {type(e).__name__}: {e} (a bug: rerun with --debug and report the traceback)"
            )
            raise typer.Exit(EXIT_FAILED) from None
