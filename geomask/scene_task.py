"""One scene's output from start to finish: the unit of work of a batch, here or on a dask worker.

:func:`write_scene` is what a run does for one scene once its steps and provenance tags are known:
take the output's lock, sweep the temporary files a killed earlier writer left, decide again under
the lock whether the output is current (skip), then read, filter and write the output to a
temporary file beside it (an ``s3://`` output: a local file, uploaded at the end), commit it
atomically and write its STAC Item. A :class:`SceneTask` holds everything that needs, and
pickles: the local loop of :func:`geomask.pipeline.run_pipeline` calls :func:`write_scene` in this
process; a batch distributed by scene (:mod:`geomask.executors.scene_tasks`) sends the task to a dask
worker, which calls it there and returns only the :class:`~geomask.spec.SceneReport`.

Idempotent: running a task twice (dask reruns the tasks of a worker that died) takes the lock,
removes what the first attempt left and writes the same bytes, or finds the output current and
reports it skipped.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from geomask.executors.local import WindowPool
from geomask.lock import output_lock
from geomask.output.staging import remove_stale_partials, staged_output
from geomask.process import process_scene
from geomask.progress import NullObserver, Observer
from geomask.provenance import resume_action
from geomask.spec import OutputSpec, RunOptions, SceneReport, Step, Validity
from geomask.urls import is_url

__all__ = ["SceneTask", "absolute_paths", "write_scene"]


def absolute_paths(value: Any) -> Any:
    """``value`` with every relative local ``path`` field of its dataclasses made absolute.

    Steps and their mask sources (nested in tuples too) name their files as the pipeline resolved
    them, relative to this process's working directory when the pipeline was given by a relative
    path; a dask worker has its own. Unchanged objects are returned as they are; URLs and GDAL
    virtual paths stay as they are.
    """
    if isinstance(value, (list, tuple)):
        items = [absolute_paths(v) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return type(value)(items)
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return value
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(value):
        if not f.init:
            continue
        current = getattr(value, f.name)
        if f.name == "path" and isinstance(current, (str, Path)):
            text = os.fspath(current)
            if "://" not in text and not text.startswith("/vsi") and not os.path.isabs(text):
                changes[f.name] = type(current)(os.path.abspath(text))
            continue
        new = absolute_paths(current)
        if new is not current:
            changes[f.name] = new
    return dataclasses.replace(value, **changes) if changes else value


@dataclass
class SceneTask:
    """Everything one scene's writer needs (picklable: no open file, no model).

    Attributes
    ----------
    input_path : path or GDAL URL
        The scene, as the writer opens it (absolute on a dask worker).
    output_path : path or ``s3://`` URL
        The final output location.
    output : OutputSpec
        Format, compression, creation options and provenance ``tags`` (its ``path`` and
        ``overwrite`` are set by :func:`write_scene`).
    steps : list of Step
        The engine's steps, bound to this scene's grid when kernel sizes are in map units.
    bands, nodata, validity
        As :func:`geomask.process.process_scene` (a product's band file: its one band).
    options : RunOptions
        How the writer computes its windows (a local scheduler).
    redo : bool
        Replace a current output too (``--overwrite``).
    stac : bool
        Write a STAC Item beside the output.
    any_pid : bool
        Under the lock, remove every temporary file beside the output, whatever PID it names (set on a
        dask worker: a killed writer may have run on another host).
    display, display_output : str
        The input and output as the user named them, for the report (default: the paths).
    notes : list of str
        Added to the report.
    """

    input_path: str | os.PathLike[str]
    output_path: str | os.PathLike[str]
    output: OutputSpec
    steps: Sequence[Step]
    bands: Sequence[int] | None = None
    nodata: float | Literal["auto"] | None = "auto"
    validity: Validity = "honour"
    options: RunOptions = field(default_factory=RunOptions)
    redo: bool = False
    stac: bool = False
    any_pid: bool = False
    display: str = ""
    display_output: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def tags(self) -> Mapping[str, str]:
        """The provenance tags the output gets."""
        return self.output.tags


def write_scene(
    task: SceneTask,
    observer: Observer | None = None,
    *,
    pool: WindowPool | Callable[[], WindowPool] | None = None,
) -> SceneReport:
    """Write one scene's output under its lock; skip it when the output is current.

    Parameters
    ----------
    task : SceneTask
        The scene, its steps and its output.
    observer : Observer or None
        Receives the scene's events (a skipped scene: ``scene_finished`` only).
    pool : WindowPool, callable or None
        The run's window pool, shared by its scenes (:func:`geomask.executors.local.window_pool`), or
        a function returning it, called only when the output is to be written (a skipped scene
        starts no pool); None: one for this scene. Not part of the task: a pool stays in its process.

    Returns
    -------
    SceneReport
        ``done`` or ``skipped``, with the input and output as the user named them.

    Raises
    ------
    OutputLockedError
        Another geomask process holds the output's lock.
    OutputExistsError, InputError, ConfigError, OutputError, RunError
        As :func:`geomask.process.process_scene`; nothing is left at the output path.
    """
    observer = observer or NullObserver()
    display, output_path = task.display or str(task.input_path), task.output_path
    shown_output = task.display_output or str(output_path)
    with output_lock(Path(output_path)) as locked:  # one writer per output at a time
        remove_stale_partials(Path(output_path), any_pid=task.any_pid and locked)
        # s3:// outputs have no size or time to compare: always (re)written
        remote = is_url(output_path)
        action = "replace" if remote else resume_action(Path(output_path), task.tags, overwrite=task.redo)
        if action == "skip":
            report = SceneReport(display, shown_output, "skipped", notes=list(task.notes))
            observer.scene_finished(report)
            return report
        with staged_output(output_path) as local_output:  # s3://: written locally, then uploaded
            spec = dataclasses.replace(task.output, path=local_output, overwrite=action == "replace")
            report = process_scene(
                task.input_path,
                spec,
                task.steps,
                bands=task.bands,
                nodata=task.nodata,
                options=task.options,
                validity=task.validity,
                observer=_WithNotes(observer, task.notes, display, shown_output),
                pool=pool() if callable(pool) else pool,
            )
            if task.stac:
                from geomask.stac import write_item  # pystac: only when Items are asked for

                write_item(
                    local_output,
                    task.input_path,
                    task.steps,
                    nodata=task.nodata,
                    gdal=task.options.gdal_options,
                )
    report.input, report.output = display, shown_output
    return report


class _WithNotes:
    """Forwards events to ``inner``, adding ``notes`` to the scene's report before it is shown."""

    def __init__(self, inner: Observer, notes: list[str], display: str, output: str) -> None:
        self.inner = inner
        self.notes = notes
        self.display = display  # the input as the user named it
        self.output = output  # the final output (the s3:// URL of an output staged locally)

    def scene_started(self, scene: str, windows: int) -> None:
        self.inner.scene_started(self.display, windows)

    def window_done(self, scene: str, count: int = 1) -> None:
        self.inner.window_done(self.display, count)

    def scene_finished(self, report: SceneReport) -> None:
        report.notes.extend(self.notes)
        report.input, report.output = self.display, self.output
        self.inner.scene_finished(report)
