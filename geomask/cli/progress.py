"""The command line's observer: a rich progress bar over scenes and windows, and one line per scene.

With ``geomask run --progress lines`` the bar is replaced by machine-readable lines on stderr, one
each time the overall percentage grows by a whole percent (and at the end of each scene)::

    progress: 37.5% scene 1/2 windows 3/4

for programs that run geomask as a subprocess (the QGIS provider reads them).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import typer

from geomask.cli.options import one_line
from geomask.spec import SceneReport

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

__all__ = ["CliObserver", "collision_warning", "progress_line", "scene_line"]


def progress_line(scene: int, scenes: int, done: int, windows: int) -> str:
    """The ``--progress lines`` line: overall percentage, then the scene (1-based) and its windows."""
    fraction = (scene - 1 + (done / windows if windows else 1.0)) / max(scenes, 1)
    return f"progress: {100 * fraction:.1f}% scene {scene}/{scenes} windows {done}/{windows}"


def scene_line(report: SceneReport) -> str:
    """One line for a finished scene: status, input, output, pixel counts and notes (kernel sizes
    in map units, as converted to pixels)."""
    if report.status == "failed":
        return f"failed  {report.input}: {one_line(report.error or 'unknown error')}"
    notes = "".join(f"; {note}" for note in report.notes)
    if report.status == "skipped":
        return f"skipped {report.input} -> {report.output} (up to date){notes}"
    return (
        f"done    {report.input} -> {report.output}: {report.pixels_selected:,} pixels selected, "
        f"{report.pixels_changed:,} changed ({report.seconds:.1f} s){notes}"
    )


def collision_warning(report: SceneReport) -> str | None:
    """The warning for a scene whose computed pixels equal the output's nodata (None: there are none)."""
    if report.status != "done" or not report.nodata_collisions:
        return None
    return (
        f"warning: {report.input}: {report.nodata_collisions:,} computed pixels equal the output nodata "
        f"({report.output_nodata}) and will read as nodata; set output.nodata to a value the results "
        "cannot take (e.g. output.dtype: float32 with output.nodata: nan)"
    )


def _never_a_terminal() -> bool:
    """True when stdout is certainly not a terminal for rich: not a TTY, and neither ``FORCE_COLOR``
    nor ``TTY_COMPATIBLE`` set (which rich would let override the check)."""
    if "FORCE_COLOR" in os.environ or "TTY_COMPATIBLE" in os.environ:
        return False
    isatty = getattr(sys.stdout, "isatty", None)
    try:
        return isatty is None or not isatty()
    except ValueError:  # a closed stdout
        return True


class CliObserver:
    """Prints a line per finished scene; shows progress bars when asked and stdout is a terminal.

    Use it as a context manager around the run so the bars are removed at the end. rich is imported
    only when bars may be shown: with ``progress=False`` (``--quiet``), ``lines=True`` or a stdout
    that is not a terminal, the run does without it (~15 ms of start-up).

    Parameters
    ----------
    scenes : int
        How many scenes the run has (an overall bar is shown for more than one).
    progress : bool
        Show bars (still only when stdout is a terminal).
    console : Console or None
        Where bars go (default: stdout).
    lines : bool
        Instead of bars, print :func:`progress_line` lines on stderr (whatever stdout is), each
        time the overall percentage grows by a whole percent and when a scene ends.
    """

    def __init__(
        self, scenes: int, *, progress: bool = True, console: Console | None = None, lines: bool = False
    ) -> None:
        self.console = console
        self._lines = lines
        self._scenes = scenes
        self._scene_number = 0
        self._done = 0
        self._windows = 0
        self._percent = -1
        self.reports: list[SceneReport] = []
        self._progress: Progress | None = None
        self._overall: TaskID | None = None
        self._scene: TaskID | None = None
        self.enabled = False
        if progress and not lines and (console is not None or not _never_a_terminal()):
            self._start_bars(scenes)

    def _start_bars(self, scenes: int) -> None:
        """Make the rich progress display (bars only when the console is a terminal)."""
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = self.console or Console()
        self.enabled = self.console.is_terminal
        if not self.enabled:
            return
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        if scenes > 1:
            self._overall = self._progress.add_task("scenes", total=scenes)

    def __enter__(self) -> CliObserver:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def scene_started(self, scene: str, windows: int) -> None:
        """Start a windows bar for ``scene``."""
        if self._progress is not None:
            if self._scene is not None:
                self._progress.remove_task(self._scene)
            self._scene = self._progress.add_task(f"{Path(scene).name} windows", total=windows)
        self._scene_number += 1
        self._done, self._windows = 0, windows
        self._emit(force=True)

    def window_done(self, scene: str, count: int = 1) -> None:
        """Advance the windows bar."""
        if self._progress is not None and self._scene is not None:
            self._progress.advance(self._scene, count)
        self._done += count
        self._emit()

    def _emit(self, *, force: bool = False) -> None:
        """Print a progress line (``lines`` mode) when the whole percentage grew, or when forced."""
        if not self._lines:
            return
        scene = max(self._scene_number, 1)
        windows = self._windows
        percent = int(100 * (scene - 1 + (self._done / windows if windows else 1.0)) / max(self._scenes, 1))
        if force or percent > self._percent:
            self._percent = max(percent, self._percent)
            print(progress_line(scene, self._scenes, self._done, windows), file=sys.stderr, flush=True)

    def scene_finished(self, report: SceneReport) -> None:
        """Print the scene's line and advance the scenes bar."""
        self.reports.append(report)
        if self._progress is not None:
            if self._scene is not None:
                self._progress.remove_task(self._scene)
                self._scene = None
            if self._overall is not None:
                self._progress.advance(self._overall, 1)
        self._scene_number = max(self._scene_number, len(self.reports))
        self._done = self._windows = 0
        if report.status != "failed":
            self._emit(force=True)
        line = scene_line(report)
        if self._progress is not None:
            self._progress.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            typer.echo(line, err=report.status == "failed")
        warning = collision_warning(report)
        if warning is not None:
            typer.echo(warning, err=True)
