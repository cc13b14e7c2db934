"""Warning filters and recording for the calling thread only, safe with any number of threads.

``warnings.catch_warnings`` saves the process-wide ``warnings.filters`` on enter and puts it back on
exit: two threads inside at once can leave one thread's temporary filter installed for good, and
``record=True`` records the warnings of every thread. geomask runs masks in scene and window threads,
so it uses these instead:

- :func:`ignored` ignores some warning categories in this thread (``simplefilter("ignore", ...)``);
- :func:`raised` turns them into exceptions in this thread (``simplefilter("error", ...)``);
- :func:`recorded` collects every warning of this thread into a list instead of showing it
  (``catch_warnings(record=True)`` with ``simplefilter("always")``);
- :data:`LIBRARY_CATCHES` is a lock for calls into libraries that use ``catch_warnings`` themselves.

Notes
-----
How: three filters, one per action, sit at the front of ``warnings.filters`` while any thread is
inside one of these blocks (inserted by the first, removed by the last, under one lock). Their
category is a class whose ``issubclass`` answers for the asking thread only: it matches a warning
only in a thread that is inside a block naming that category. Other threads' warnings pass those
filters untouched, whatever their category. While a thread records, ``warnings.showwarning`` is
wrapped: the recording thread's warnings go to its list, any other thread's to the function that was
there before. Once no thread is inside a block, ``warnings.filters`` and ``warnings.showwarning`` are
what they were (unless other code changed them meanwhile).
Cost: about 2 microseconds per block (1.3 for ``catch_warnings`` with a ``simplefilter``), measured
with 20000 blocks in a loop on one thread.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal

__all__ = ["LIBRARY_CATCHES", "ignored", "raised", "recorded"]

_Action = Literal["ignore", "error", "always"]

LIBRARY_CATCHES = threading.RLock()
"""Held around calls into libraries that use ``warnings.catch_warnings`` themselves, from several
threads: rasterio's in-memory datasets (``rasterize``, ``shapes``: ``simplefilter("ignore")`` around
their set-up) and ``shapely.is_valid``. Their saves and restores of ``warnings.filters`` then never
interleave, so none leaves its filter installed. (``rasterize`` holds the GIL anyway: the lock costs no
parallelism.) It cannot stop such a library's filter from applying to another thread's warning
emitted during those microseconds."""

_LOCK = threading.Lock()
_LOCAL = threading.local()  # .scopes: this thread's open blocks, innermost last; .log: its record
_users = 0  # threads inside a block, all actions together (under _LOCK)
_recorders = 0  # threads inside recorded() (under _LOCK)
_shown_before: Callable[..., Any] | None = None  # warnings.showwarning when recording began


def _action_for(category: type) -> str | None:
    """The action this thread's innermost block naming ``category`` (or a base of it) asks for."""
    for action, categories in reversed(getattr(_LOCAL, "scopes", ())):
        if issubclass(category, categories):
            return action
    return None


class _ThisThread(type):
    """Metaclass of the filters' categories: a warning class is their subclass only in a thread
    whose innermost block naming it asks for that filter's action."""

    action: str

    def __subclasscheck__(cls, subclass: type) -> bool:
        return _action_for(subclass) == cls.action

    def __repr__(cls) -> str:
        return f"<geomask: this thread's {cls.action} filter>"


def _category(action: str) -> type:
    return _ThisThread(f"ThisThread_{action}", (Warning,), {"action": action})


_FILTERS = tuple((action, None, _category(action), None, 0) for action in ("ignore", "error", "always"))


def _registries_stale() -> None:
    """Forget which warnings were already shown once (as every change of ``warnings.filters`` does),
    so that an ``error`` or ``always`` block sees a warning another thread showed before."""
    mutated = getattr(warnings, "_filters_mutated", None)
    if mutated is not None:
        mutated()


def _show(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning`` while some thread records: its warnings to its list, others as before."""
    log = getattr(_LOCAL, "log", None)
    if log is not None:
        log.append(warnings.WarningMessage(message, category, filename, lineno, file, line))
    elif _shown_before is not None:
        _shown_before(message, category, filename, lineno, file, line)


def _ours_first(filters: list[Any]) -> bool:
    """Whether ``filters`` starts with the three filters of this module."""
    first = filters[:3]
    return len(first) == 3 and first[0] is _FILTERS[0] and first[1] is _FILTERS[1] and first[2] is _FILTERS[2]


def _without_ours(filters: list[Any]) -> list[Any]:
    """``filters`` less the three of this module, wherever they are."""
    return [f for f in filters if f is not _FILTERS[0] and f is not _FILTERS[1] and f is not _FILTERS[2]]


def _enter(record: bool) -> None:
    global _users, _recorders, _shown_before
    with _LOCK:
        filters = warnings.filters
        if not _ours_first(filters):
            # The first block, or other code changed the filters since: ours go (back) to the front.
            # In place, so that a catch_warnings of another thread restores its own list, not ours.
            filters[:] = [*_FILTERS, *_without_ours(filters)]
        _users += 1
        if record:
            if warnings.showwarning is not _show:
                _shown_before = warnings.showwarning
                warnings.showwarning = _show
            _recorders += 1


def _exit(record: bool) -> None:
    global _users, _recorders
    with _LOCK:
        if record:
            _recorders -= 1
            # Unless other code replaced it meanwhile (theirs stays). _shown_before is kept: a
            # catch_warnings that saved _show while a thread recorded puts it back when it ends, and
            # _show must then still show the warnings as before.
            if _recorders == 0 and warnings.showwarning is _show:
                warnings.showwarning = _shown_before
        _users -= 1
        if _users == 0:
            filters = warnings.filters
            if _ours_first(filters):
                del filters[:3]
            else:
                filters[:] = _without_ours(filters)
        # No registry reset: our filters never store a warning as shown ("ignore", "error" and
        # "always" do not), so removing them changes nothing another thread will see.


class _Block:
    """One thread's block: pushes its (action, categories) on enter, pops it on exit."""

    __slots__ = ("_action", "_categories", "_log", "_outer_log")

    def __init__(self, action: _Action, categories: tuple[type[Warning], ...]) -> None:
        self._action = action
        self._categories = categories
        self._log: list[warnings.WarningMessage] | None = None
        self._outer_log: list[warnings.WarningMessage] | None = None

    def __enter__(self) -> list[warnings.WarningMessage]:
        scopes = getattr(_LOCAL, "scopes", None)
        if scopes is None:
            scopes = _LOCAL.scopes = []
        record = self._action == "always"
        if record:
            self._log = []
            self._outer_log = getattr(_LOCAL, "log", None)
        _enter(record)
        if self._action != "ignore":
            _registries_stale()  # an error/always block must see warnings another thread showed once
        scopes.append((self._action, self._categories))
        if record:
            _LOCAL.log = self._log
        return self._log if self._log is not None else []

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        _LOCAL.scopes.pop()
        record = self._action == "always"
        if record:
            _LOCAL.log = self._outer_log
        _exit(record)


def ignored(*categories: type[Warning]) -> _Block:
    """A block in which this thread ignores warnings of ``categories`` (and their subclasses).

    Other threads' warnings of the same categories are shown as usual.
    """
    return _Block("ignore", categories or (Warning,))


def raised(*categories: type[Warning]) -> _Block:
    """A block in which this thread's warnings of ``categories`` are raised as exceptions."""
    return _Block("error", categories or (Warning,))


def recorded() -> _Block:
    """A block in which every warning of this thread is appended to the list it yields, never shown.

    Like ``catch_warnings(record=True)`` with ``simplefilter("always")``, for this thread only: other
    threads' warnings are shown as usual (not recorded). Re-emit the records with
    ``warnings.warn_explicit`` to show them.
    """
    return _Block("always", (Warning,))
