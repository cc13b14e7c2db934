"""Tests of geomask.threadwarnings: warning filters and records that hold for the calling thread only.

The concurrent tests run geomask's real code paths (vector reads and burner, reprojection, kmeans,
CRS names) in several threads while other threads emit warnings, with the interpreter switching
threads every microsecond; they check that ``warnings.filters`` is what it was afterwards and that
every warning of the other threads was shown once, by the thread that emitted it.
"""

from __future__ import annotations

import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import scipy.cluster.vq  # noqa: F401  (imported here: its import adds filters, not a geomask block)
import shapely
from pyproj import Transformer
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

from geomask.errors import MaskError
from geomask.masks.kmeans import _fit
from geomask.masks.reproject import _clip_to_valid_area
from geomask.masks.vector import BoundVectorMask, VectorSource
from geomask.messages import crs_name
from geomask.threadwarnings import ignored, raised, recorded

PROBES = (UserWarning, RuntimeWarning, DeprecationWarning, NotGeoreferencedWarning)
"""Categories the other threads emit: each is ignored, raised or recorded by some geomask block."""


class _Shown:
    """A ``warnings.showwarning`` that keeps (text, thread) of every warning shown."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def __call__(
        self, message: Warning | str, category: type, filename: str, lineno: int, *rest: object
    ) -> None:
        self.seen.append((str(message), threading.get_ident()))


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Threads switched every microsecond (not every 5 ms): the races show within a few hundred calls."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def _concurrently(
    work: Callable[[int], None], *, others_intact: bool, workers: int = 4, calls: int = 30
) -> None:
    """Run ``work(i)`` ``calls`` times in each of ``workers`` threads while 2 other threads emit warnings
    of every category in :data:`PROBES`; assert the filters are intact, and (``others_intact``) that the
    other threads' warnings were all shown, each by its own thread."""
    shown = _Shown()
    emitted: list[tuple[str, int]] = []
    failures: list[BaseException] = []
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = shown
        before = list(warnings.filters)
        done = threading.Event()

        def emit(n: int) -> None:
            ident, i = threading.get_ident(), 0
            while not done.is_set() or i < 50:
                text = f"probe {n}.{i}"
                emitted.append((text, ident))
                try:
                    warnings.warn(text, PROBES[i % len(PROBES)], stacklevel=1)
                except Warning as e:  # raised by another thread's filter
                    failures.append(e)
                i += 1
                time.sleep(0)

        def run() -> None:
            try:
                for i in range(calls):
                    work(i)
            except BaseException as e:
                failures.append(e)

        emitters = [threading.Thread(target=emit, args=(n,)) for n in range(2)]
        runners = [threading.Thread(target=run) for _ in range(workers)]
        for thread in emitters + runners:
            thread.start()
        for thread in runners:
            thread.join()
        done.set()
        for thread in emitters:
            thread.join()
        after = list(warnings.filters)
        show_after = warnings.showwarning
    assert not failures, failures[:3]
    assert after == before, "a filter of a geomask block was left installed (or one was lost)"
    assert show_after is shown
    probes = sorted(s for s in shown.seen if s[0].startswith("probe "))
    assert set(probes) <= set(emitted), "a warning was shown by a thread that did not emit it"
    if not others_intact:
        return
    missing = sorted(set(emitted) - set(probes))
    assert probes == sorted(emitted), f"{len(missing)} of {len(emitted)} warnings lost or re-attributed"


def _burn(i: int) -> None:
    """The block burner (ignores NotGeoreferencedWarning for the block at the grid origin)."""
    geoms = np.array([shapely.box(2, 3, 40 + i * 1e-6, 37)], dtype=object)  # new blocks each call
    BoundVectorMask(geoms, (48, 48), block_size=16).render(Window(0, 0, 48, 48))


def _crs_name(i: int) -> None:
    """crs_name of a CRS without a code (ignores every warning of PROJ string export)."""
    assert crs_name("+proj=ortho +lat_0=10 +lon_0=20 +ellps=WGS84").startswith("+proj=ortho")


_TO_GEOS = Transformer.from_crs("EPSG:4326", "+proj=geos +h=35785831 +lon_0=0 +sweep=y", always_xy=True)


def _clip(i: int) -> None:
    """The valid-area clip of reprojection (ignores rasterio's DeprecationWarning)."""
    assert _clip_to_valid_area(shapely.box(60, -10, 100, 10), _TO_GEOS).size


def _kmeans(i: int) -> None:
    """kmeans fitting (raises scipy's UserWarning about an empty cluster)."""
    rng = np.random.default_rng(i)
    assert _fit(rng.normal(size=(300, 2)), 3, i, "scene.tif").shape == (3, 2)


def _read_garbage(folder: Path) -> Callable[[int], None]:
    """A vector read that fails at list_layers (its recorded warnings are dropped)."""
    path = folder / "garbage.gpkg"
    path.write_bytes(b"not a geopackage" * 64)

    def read(i: int) -> None:
        with pytest.raises(MaskError):
            VectorSource(path)._read(str(path))

    return read


@pytest.mark.usefixtures("fast_switching")
@pytest.mark.parametrize("path", ["crs_name", "kmeans", "read_garbage"])
def test_concurrent_geomask_blocks_leave_filters_and_other_threads_warnings_alone(
    path: str, tmp_path: Path
) -> None:
    # Reads that fail at list_layers only (the recorded block): a read that goes on to the features
    # runs geopandas' and pyogrio's own catch_warnings, which race like rasterio's (not geomask's).
    work = {"crs_name": _crs_name, "kmeans": _kmeans, "read_garbage": _read_garbage(tmp_path)}
    _concurrently(work[path], others_intact=True, calls=10 if path == "crs_name" else 30)


@pytest.mark.usefixtures("fast_switching")
@pytest.mark.parametrize("path", ["burner", "clip"])
def test_concurrent_rasterio_calls_leave_filters_alone(path: str) -> None:
    """rasterize and shapes: rasterio's in-memory dataset wraps its set-up in ``catch_warnings`` with
    ``simplefilter("ignore")``; under LIBRARY_CATCHES those never interleave, so the filters are intact.
    (While one is set up, rasterio's filter still ignores the other threads' warnings: not checked.)"""
    _concurrently({"burner": _burn, "clip": _clip}[path], others_intact=False)


# ---------------------------------------------------------------- the helpers on one thread


def test_ignored_ignores_only_its_categories() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ignored(DeprecationWarning):
            warnings.warn("hidden", DeprecationWarning, stacklevel=1)
            warnings.warn("shown", UserWarning, stacklevel=1)
        warnings.warn("shown after", DeprecationWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["shown", "shown after"]


def test_ignored_overrides_an_error_filter_and_raised_raises() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with ignored(UserWarning):
            warnings.warn("hidden", UserWarning, stacklevel=1)
    with warnings.catch_warnings(), pytest.raises(UserWarning, match="raised"):
        warnings.simplefilter("ignore")
        with raised(UserWarning):
            warnings.warn("raised", UserWarning, stacklevel=1)


def test_raised_sees_a_warning_already_shown_once() -> None:
    """A warning shown once ("default") at a place is still raised there later inside raised()."""

    def warn() -> None:
        warnings.warn("same place", UserWarning, stacklevel=1)

    with warnings.catch_warnings(record=True):
        warnings.simplefilter("default")
        warn()
        with raised(UserWarning), pytest.raises(UserWarning):
            warn()


def test_recorded_keeps_this_threads_warnings_and_nests() -> None:
    with warnings.catch_warnings(record=True) as outside:
        warnings.simplefilter("ignore")  # recorded() records what the filters would ignore
        with recorded() as caught:
            warnings.warn("one", UserWarning, stacklevel=1)
            with ignored(RuntimeWarning):
                warnings.warn("ignored", RuntimeWarning, stacklevel=1)
            with recorded() as inner:
                warnings.warn("inner", UserWarning, stacklevel=1)
            warnings.warn("two", RuntimeWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["one", "two"]
    assert [str(w.message) for w in inner] == ["inner"]
    assert caught[0].category is UserWarning and caught[0].filename == __file__
    assert outside == []


def test_an_interleaved_enter_and_exit_restores_the_filters() -> None:
    """A enters, B enters, A exits, B exits (the order that left catch_warnings' copy installed), with a
    third thread warning while both are inside: filters and showwarning are as before, its warning shown."""
    order = [threading.Event() for _ in range(4)]
    shown = _Shown()

    def a() -> None:
        with ignored(UserWarning):
            order[0].set()
            order[1].wait()
        order[2].set()

    def b() -> None:
        order[0].wait()
        with recorded() as caught:
            order[1].set()
            order[2].wait()
            warnings.warn("mine", UserWarning, stacklevel=1)
            order[3].wait()
        assert [str(w.message) for w in caught] == ["mine"]

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = shown
        before = list(warnings.filters)
        threads = [threading.Thread(target=a), threading.Thread(target=b)]
        for thread in threads:
            thread.start()
        order[2].wait()
        warnings.warn("other thread", UserWarning, stacklevel=1)
        order[3].set()
        for thread in threads:
            thread.join()
        assert warnings.filters == before and warnings.showwarning is shown
    assert shown.seen == [("other thread", threading.get_ident())]


def test_cost_of_a_block_is_a_few_microseconds() -> None:
    """The burner enters one block per mask block: a block must stay cheap (about 2 us here)."""
    start = time.perf_counter()
    for _ in range(5000):
        with ignored(NotGeoreferencedWarning):
            pass
    assert (time.perf_counter() - start) / 5000 < 50e-6
