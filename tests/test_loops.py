"""The two builds of the masked-filter loops (geomask.loops): C (built on first use) and numba.

The pixels of both are checked against scipy by test_convolve.py (C, the default); here they are
checked against each other, and the choice between them, the on-disk cache and the fallback."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from _fixtures_cli import make_project
from hypothesis import given, settings
from hypothesis import strategies as st
from test_convolve import _kernel_arg, _must_raise, cases

from geomask import _c, kernels, loops
from geomask._c import compiler as c_build
from geomask.convolve import masked_convolve
from geomask.errors import ConfigError, KernelBuildError, KernelBuildWarning

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def use(monkeypatch):
    """use(name): run the loops with GEOMASK_KERNELS=name from now on (restored after the test)."""

    def switch(name: str) -> None:
        monkeypatch.setenv("GEOMASK_KERNELS", name)
        loops.backend.cache_clear()

    yield switch
    loops.backend.cache_clear()


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty library cache, and no library loaded in this process."""
    monkeypatch.setenv("GEOMASK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(_c, "_LIBS", {})
    loops.backend.cache_clear()
    yield tmp_path / "cache"
    loops.backend.cache_clear()


def _run_both(case, use) -> list[tuple[np.ndarray, np.ndarray]]:
    results = []
    for name in ("c", "numba"):
        use(name)
        kw = case.call_kwargs()
        new = masked_convolve(case.array, _kernel_arg(case), case.mask, **kw)
        inplace = case.array.copy()
        masked_convolve(inplace, _kernel_arg(case), case.mask, out=inplace, threads=2, **kw)
        results.append((new, inplace))
    return results


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(case=cases(with_support=True).filter(lambda c: c.array.dtype.name in ("float32", "uint16", "int8")))
def test_c_and_numba_give_the_same_bits(case, use):
    # numba compiles once per pixel type (15-20 s): three types cover float, unsigned and signed.
    if _must_raise(case):
        return
    (c_new, c_in), (n_new, n_in) = _run_both(case, use)
    u = f"u{case.array.dtype.itemsize}"
    for got, want in ((c_new, n_new), (c_in, n_in), (c_new, c_in)):
        assert np.array_equal(got.view(u), want.view(u)), case.recipe


@settings(max_examples=200, deadline=None)
@given(
    dtype=st.sampled_from(["uint8", "uint16", "float32", "float64"]),
    bands=st.integers(1, 3),
    shape=st.tuples(st.integers(1, 40), st.integers(1, 4200)),
    tile=st.tuples(st.integers(1, 17), st.integers(1, 2100)),
    gaps=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_changed_counts_per_tile_equal_numba_and_numpy(dtype, bands, shape, tile, gaps, seed):
    """C's per-tile changed counts (chunked rows, a contiguous-columns path and a gathered one) equal
    numba's per-pixel loop and a numpy count: a pixel counts once when any band differs bit-wise."""
    from geomask._nb import cells

    rng = np.random.default_rng(seed)
    h, w = shape
    extra = 5 if gaps else 0
    before = rng.integers(0, 4, size=(bands, h + 3, w + extra + 2)).astype(dtype)
    rows = np.sort(rng.choice(h + 3, size=h, replace=False)) if gaps else np.arange(1, h + 1)
    cols = np.sort(rng.choice(w + extra + 2, size=w, replace=False)) if gaps else np.arange(2, w + 2)
    after = before[:, rows][:, :, cols].copy()
    after[rng.random(after.shape) < 0.2] += 1
    u = np.dtype(f"u{before.dtype.itemsize}")
    b, a = before.view(u), after.view(u)
    th, tw = tile
    c = _c.count_changed(b, rows, cols, a, th, tw)
    nb = cells.count_changed(b, rows, cols, a, th, tw)
    differs = (b[:, rows][:, :, cols] != a).any(axis=0)
    padded = np.zeros((-(-h // th) * th, -(-w // tw) * tw), dtype=np.int64)
    padded[:h, :w] = differs
    oracle = padded.reshape(-(-h // th), th, -(-w // tw), tw).sum(axis=(1, 3))
    np.testing.assert_array_equal(c, oracle)
    np.testing.assert_array_equal(nb, oracle)


def test_unknown_choice_is_refused(use):
    use("fortran")
    with pytest.raises(ConfigError, match="GEOMASK_KERNELS='fortran' is not one of auto, c, numba"):
        masked_convolve(np.zeros((5, 5), np.uint8), "box", None)


def test_numba_choice_uses_numba(use):
    use("numba")
    assert loops.backend("uint8").__name__ == "geomask._nb"
    use("auto")
    assert loops.backend("uint8").__name__ == "geomask._c"


def test_a_library_is_built_once_and_reused(fresh_cache):
    first = c_build.build("int16")
    stamp = first.stat().st_mtime_ns
    assert first.parent == fresh_cache and first.name.startswith("kernels-int16-")
    assert c_build.build("int16") == first and first.stat().st_mtime_ns == stamp
    assert [p.name for p in fresh_cache.iterdir()] == [first.name]  # no temporary left


def test_the_library_name_follows_source_compiler_and_type(fresh_cache, monkeypatch):
    path, cmd = c_build.library_path("uint8")
    assert "-ffp-contract=off" in cmd and "-DGM_T=uint8_t" in cmd
    assert c_build.library_path("int8")[0] != path
    monkeypatch.setenv("CC", "gcc -DGEOMASK_TEST_FLAG")
    assert c_build.library_path("uint8")[0] != path


def test_builds_at_once_give_one_good_library(fresh_cache):
    # dask workers starting together build the same library: renamed into place, never half-written.
    paths: list[Path] = []
    threads = [threading.Thread(target=lambda: paths.append(c_build.build("uint32"))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(paths)) == 1 and len(paths) == 3
    assert [p.name for p in fresh_cache.iterdir()] == [paths[0].name]
    a = np.arange(64, dtype=np.uint32).reshape(8, 8)
    assert masked_convolve(a, "box", np.ones((8, 8), bool)).dtype == np.uint32


def test_no_working_compiler_falls_back_to_numba_with_a_warning(fresh_cache, monkeypatch, use):
    monkeypatch.setenv("CC", "false")  # a "compiler" that always fails
    use("auto")
    with pytest.warns(KernelBuildWarning, match="the C compiler false failed.*using numba's build"):
        assert loops.backend("int8").__name__ == "geomask._nb"
    use("c")
    with pytest.raises(KernelBuildError, match="the C compiler false failed"):
        loops.backend("int8")


def test_no_compiler_on_the_path_is_said(fresh_cache, monkeypatch):
    monkeypatch.setenv("PATH", str(fresh_cache))  # nothing there
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setattr("sysconfig.get_config_var", lambda name: None)
    with pytest.raises(KernelBuildError, match="no C compiler found"):
        c_build.build("int8")


def test_cli_says_in_one_line_when_c_is_required_but_cannot_be_built(tmp_path):
    env = {
        **os.environ,
        "GEOMASK_KERNELS": "c",
        "CC": "false",
        "GEOMASK_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPATH": str(ROOT),
    }
    pipeline = make_project(tmp_path)
    out = tmp_path / "out" / "scene.denoised.tif"
    done = subprocess.run(
        [sys.executable, "-m", "geomask", "run", str(pipeline)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "the C compiler false failed" in lines[0], done.stderr
    assert "Traceback" not in done.stderr and not out.exists()


@given(st.integers(0, 3))
@settings(max_examples=1, deadline=None)
def test_c_kernels_free_what_they_allocate(seed):
    # Every scratch buffer is malloc'd and freed per call: many calls leave the process's memory flat.
    psutil = pytest.importorskip("psutil", reason="psutil (the test extra) measures the process's memory")
    rng = np.random.default_rng(seed)
    a = rng.random((300, 260)).astype(np.float32)
    mask = rng.random(a.shape) < 0.05
    mask[100:140, 30:200] = True
    cases_ = [kernels.get("box"), kernels.get("gaussian", sigma=1.5), kernels.from_matrix(rng.random((3, 5)))]
    cases_.append(kernels.get("median"))

    def run_all(n: int) -> None:
        for _ in range(n):
            for kernel in cases_:
                masked_convolve(a, kernel, mask, threads=1)
                work = a.copy()
                masked_convolve(work, kernel, mask, threads=1, out=work, nodata=0.5)

    run_all(5)
    before = psutil.Process().memory_info().rss
    run_all(60)
    grown = psutil.Process().memory_info().rss - before
    assert grown < 8 << 20, f"{grown / 2**20:.1f} MiB more after 480 calls"


def test_a_library_that_does_not_load_falls_back_to_numba(fresh_cache, use):
    # A cache folder on a noexec mount, or a damaged file: loading fails, numba's build runs instead.
    path, _ = c_build.library_path("int8")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a shared library")
    use("auto")
    with pytest.warns(KernelBuildWarning, match="could not load the C kernels"):
        assert loops.backend("int8").__name__ == "geomask._nb"
