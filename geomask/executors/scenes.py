"""The scenes of a local run, two small ones in flight at a time, seen by the observer in input order.

A small scene's cost in the driving thread (planning, opening the writer, GDAL's encoding as the file
closes, the read-back check) is as large as its windows' computing, and with a window as large as the
scene only one worker computes it. :func:`run_in_order` therefore runs each scene in a thread of its
own, the next small scene starting while the one before it finishes, so one's writing overlaps the
other's computing (measured on the 20-scene benchmark batch: see benchmarks/RESULTS.md). The two
share the cores: GDAL's ``NUM_THREADS`` for a small scene's output is capped to half of them
(:func:`geomask.output.writer.shared_encoding`), as GDAL waits for its compression threads, when a
file closes, without releasing Python's GIL. They are offset: a scene starts once the one before it
has computed its windows (:func:`windows_computed`), so one computes (Python, under the GIL) while
the other encodes (GDAL, without it); started together, they planned and computed at the same
moments and waited on each other's GIL (20-scene batch: 58 to 53 ms per scene).

What stays as with one scene at a time:

* The observer sees every scene's events in input order, from one scene at a time: the events of a
  scene that runs ahead are held and replayed once the scenes before it have finished.
* No output is committed before the scenes before it have finished: a scene that runs ahead waits,
  its last window written, until it is the first in line. When a scene fails (without
  ``continue_on_error``) or the run is interrupted, the scenes running ahead stop at their next window
  and leave nothing at their output paths.
* A large scene (:data:`SMALL_SCENE_BYTES` or more on disk, or a URL) runs alone: memory stays bounded
  by one scene's windows.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

from geomask.output.writer import shared_encoding
from geomask.progress import Observer
from geomask.spec import SceneReport

__all__ = [
    "SMALL_SCENE_BYTES",
    "SceneStopped",
    "all_computed",
    "is_small",
    "run_in_order",
    "windows_computed",
]

SMALL_SCENE_BYTES = 256 * 2**20
"""A local input file smaller than this (bytes) may run beside the scene before it."""

T = TypeVar("T")


class SceneStopped(Exception):
    """Raised inside a scene running ahead when the run stops (an earlier scene failed, Ctrl-C)."""


def is_small(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a local file under :data:`SMALL_SCENE_BYTES`."""
    text = os.fspath(path)
    if "://" in text or text.startswith("/vsi"):
        return False
    try:
        return os.path.getsize(text) < SMALL_SCENE_BYTES
    except OSError:
        return False


class _Held:
    """The observer of a scene running ahead: holds its events until :meth:`attach`, then forwards them.

    Also where a scene running ahead learns that the run stopped (each event checks), and where it
    waits, its last window written, until it is first in line (so it commits in input order).
    """

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._lock = threading.Lock()
        self._events: list[tuple[str, tuple[Any, ...]]] = []
        self._target: Observer | None = None
        self._first = threading.Event()
        self.computed = threading.Event()  # every window computed (or the scene ended): see _beside
        self._windows = -1
        self._done = 0

    def attach(self, target: Observer) -> None:
        """Replay the held events to ``target`` and forward the next ones (from the scene's thread)."""
        with self._lock:
            for name, args in self._events:
                getattr(target, name)(*args)
            self._events.clear()
            self._target = target
        self._first.set()

    def _forward(self, name: str, *args: Any) -> None:
        with self._lock:
            target = self._target
            if target is None:
                self._events.append((name, args))
                return
        getattr(target, name)(*args)

    def check(self) -> None:
        """Raise :class:`SceneStopped` if the run stopped."""
        if self._stop.is_set():
            raise SceneStopped("the run stopped")

    def scene_started(self, scene: str, windows: int) -> None:
        self.check()
        self._windows, self._done = windows, 0
        self._forward("scene_started", scene, windows)

    def window_done(self, scene: str, count: int = 1) -> None:
        self.check()
        self._forward("window_done", scene, count)
        self._done += count
        if self._done >= self._windows:  # every window written: commit only once first in line
            while not self._first.wait(0.05):
                self.check()
            self.check()

    def scene_finished(self, report: SceneReport) -> None:
        self._forward("scene_finished", report)


def run_in_order(
    items: Iterable[T],
    run_one: Callable[[T, Observer], SceneReport],
    observer: Observer,
    *,
    small: Callable[[T], bool],
) -> list[SceneReport]:
    """``run_one(item, observer)`` for every item, two small ones at a time; the reports in input order.

    ``run_one`` raises to stop the run (the first error in input order is raised, once every scene
    running has stopped); a scene that fails without stopping the run returns its failed report.
    """
    stop = threading.Event()
    reports: list[SceneReport] = []
    flight: deque[tuple[Future[SceneReport], _Held, bool]] = deque()

    def finish() -> None:
        future, held, _ = flight.popleft()
        held.attach(observer)
        reports.append(future.result())

    with ThreadPoolExecutor(2, thread_name_prefix="geomask-scene") as threads:
        try:
            for item in items:
                ahead = small(item)
                while flight and (len(flight) >= 2 or not ahead or not flight[-1][2]):
                    finish()
                held = _Held(stop)
                if ahead:
                    after = flight[-1][1].computed if flight else None
                    future = threads.submit(_beside, run_one, item, held, after)
                else:
                    future = threads.submit(_alone, run_one, item, held)
                flight.append((future, held, ahead))
            while flight:
                finish()
        except BaseException:
            stop.set()
            for future, _, _ in flight:
                future.cancel()
            wait([future for future, _, _ in flight])
            raise
    return reports


def _beside(
    run_one: Callable[[T, Observer], SceneReport], item: T, held: _Held, after: threading.Event | None
) -> SceneReport:
    """A small scene, which may run beside another: its output's encoding gets half the cores.

    It starts once the scene before it (``after``) has computed its windows: the two then do not
    plan and compute at the same moment (Python work, one at a time under the GIL) but one computes
    while the other encodes (GDAL, without the GIL), and keep that offset along the batch.
    """
    try:
        while after is not None and not after.wait(0.05):
            held.check()
        with shared_encoding(2), windows_computed(held.computed.set):
            return run_one(item, held)
    finally:
        held.computed.set()  # never leave the next scene waiting


def _alone(run_one: Callable[[T, Observer], SceneReport], item: T, held: _Held) -> SceneReport:
    """A large scene, which runs alone."""
    try:
        return run_one(item, held)
    finally:
        held.computed.set()


_COMPUTED: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "geomask_windows_computed", default=None
)


@contextlib.contextmanager
def windows_computed(callback: Callable[[], None]) -> Iterator[None]:
    """Within the block (this thread), :func:`geomask.process.process_scene` calls ``callback`` once
    the scene's last window is computed, before it is written."""
    token = _COMPUTED.set(callback)
    try:
        yield
    finally:
        _COMPUTED.reset(token)


def all_computed() -> None:
    """Say that this thread's scene has computed its windows (see :func:`windows_computed`)."""
    callback = _COMPUTED.get()
    if callback is not None:
        callback()
