"""Progress reporting: the observer the engine calls, so library code never prints.

The engine calls an :class:`Observer` from the thread that drives a scene (never
from window workers), one scene at a time and in input order: ``scene_started``
once per scene with the number of windows, ``window_done`` as windows finish,
and ``scene_finished`` with the scene's report. (In a batch two small scenes may
run at once, each in a thread of its own; the later one's events are held and
delivered after the earlier one's: :mod:`geomask.executors.scenes`.) An observer must be cheap and must
not raise; :class:`NullObserver` does nothing and is the default. The command
line supplies a rich progress bar (``geomask.cli._progress``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from geomask.spec import SceneReport

__all__ = ["NullObserver", "Observer"]


@runtime_checkable
class Observer(Protocol):
    """Receives progress events from a run.

    Notes
    -----
    Calls arrive in order for one scene: ``scene_started``, any number of
    ``window_done``, then ``scene_finished``. A scene that fails raises out of
    the engine without ``scene_finished``; the pipeline layer, when it goes on
    after a failure or skips a scene, sends ``scene_finished`` with a report whose
    status says so (possibly without ``scene_started``). ``scene`` is the input
    path as a string.
    """

    def scene_started(self, scene: str, windows: int) -> None:
        """A scene begins; ``windows`` is how many windows it will go through."""

    def window_done(self, scene: str, count: int = 1) -> None:
        """``count`` more windows of ``scene`` are finished (computed or skipped)."""

    def scene_finished(self, report: SceneReport) -> None:
        """A scene ended (done, failed or skipped); ``report`` says how."""


class NullObserver:
    """An observer that ignores every event."""

    def scene_started(self, scene: str, windows: int) -> None:
        """Ignore the event."""

    def window_done(self, scene: str, count: int = 1) -> None:
        """Ignore the event."""

    def scene_finished(self, report: SceneReport) -> None:
        """Ignore the event."""
