"""Options shared by the commands, and the one place user errors become clean exits.

Every command body runs inside :func:`handle_errors`: a :class:`~geomask.errors.GeomaskError` is
printed as one line ``error: <message>`` on stderr and the command exits with the error's
``exit_code`` (2: fix the pipeline, input or arguments; 1: the run failed); any other exception is
a bug, printed as one line and exit 1. ``--debug`` adds the traceback. Warnings print as one line
``warning: <message>``.
"""

from __future__ import annotations

import sys
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from geomask.errors import GeomaskError
from geomask.warnings import GeomaskWarning

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "DebugOption",
    "PipelineArgument",
    "QuietOption",
    "SchedulerChoice",
    "echo_error",
    "handle_errors",
    "one_line",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class SchedulerChoice(str, Enum):
    """The dask schedulers a run may use."""

    threads = "threads"
    processes = "processes"
    synchronous = "synchronous"


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
def handle_errors(debug: bool) -> Iterator[None]:
    """Run a command body, turning errors into one line and an exit code, and warnings into one line.

    Parameters
    ----------
    debug : bool
        Print the traceback of an error too.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.simplefilter("always", GeomaskWarning)
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
        except Exception as e:
            if debug:
                traceback.print_exc()
            echo_error(
                f"unexpected {type(e).__name__}: {e} (a bug: rerun with --debug and report the traceback)"
            )
            raise typer.Exit(EXIT_FAILED) from None
