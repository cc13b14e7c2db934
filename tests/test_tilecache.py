"""The decoded tiles shared by the window tasks of a process (geomask.engine.tilecache)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from conftest import write_raster

from geomask import kernels
from geomask.convolve import masked_convolve
from geomask.engine.tilecache import CACHE, TileCache, read_tiled, shareable
from geomask.errors import RunError
from geomask.masks import ArraySource
from geomask.process import process_scene
from geomask.spec import OutputSpec, RunOptions, Step

TILE = 32


def _scene(path: Path, shape=(3, 160, 192), seed=0) -> tuple[Path, np.ndarray]:
    data = (np.random.default_rng(seed).random(shape) * 5000).astype("uint16")
    return write_raster(path, data, block=TILE, compress="deflate", predictor=2), data


def test_a_tile_asked_by_two_threads_at_once_is_decoded_once() -> None:
    cache = TileCache(1 << 20)
    calls: list[int] = []
    barrier = threading.Barrier(2)

    def decode() -> np.ndarray:
        calls.append(1)
        time.sleep(0.1)  # the other thread asks meanwhile
        return np.arange(10)

    got: list[np.ndarray] = []

    def ask() -> None:
        barrier.wait()
        got.append(cache.get("k", decode))

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and cache.decoded == 1
    assert got[0] is got[1] and not got[0].flags.writeable


def test_the_least_recently_used_tiles_leave_first_within_the_byte_budget() -> None:
    cache = TileCache(3 * 800)  # three tiles of 100 float64
    for k in range(3):
        cache.get(k, lambda: np.zeros(100))
    cache.get(0, lambda: np.ones(100))  # kept: 0 is now the most recent
    cache.get(3, lambda: np.zeros(100))  # 1 leaves
    assert cache.decoded == 4
    assert cache.get(0, lambda: np.ones(100))[0] == 0  # still the first decode
    cache.get(1, lambda: np.zeros(100))
    assert cache.decoded == 5


def test_a_failed_decode_is_not_kept_and_raises() -> None:
    cache = TileCache(1 << 20)

    def fail() -> np.ndarray:
        raise RunError("cannot decode")

    with pytest.raises(RunError):
        cache.get("k", fail)
    assert cache.get("k", lambda: np.zeros(3)).sum() == 0


def test_read_tiled_equals_a_plain_read_at_any_index_sets(tmp_path: Path) -> None:
    src, data = _scene(tmp_path / "s.tif", shape=(3, 100, 90))  # partial edge tiles
    rows = np.array([0, 1, 2, 31, 32, 33, 60, 97, 98, 99], dtype=np.int64)  # runs across tiles
    cols = np.concatenate([np.arange(28, 70), np.array([88, 89])]).astype(np.int64)
    with rasterio.open(src) as ds:
        got = read_tiled(ds, str(src), (TILE, TILE), rows, cols)
    assert np.array_equal(got, data[:, rows][:, :, cols])


def test_a_run_decodes_each_input_tile_once(tmp_path: Path) -> None:
    """Targets along window edges: each window reads halo rows of its neighbours' tiles, which
    those windows also compute; through the cache every tile is decoded once, pixels unchanged."""
    src, data = _scene(tmp_path / "s.tif")
    mask = np.zeros(data.shape[1:], dtype=bool)
    mask[60:70, 10:180] = True  # across the windows' edge at row 64, several tiles wide
    mask[100:140, 62:66] = True  # across the windows' edge at column 64
    kernel = kernels.get("gaussian", sigma=1.0)
    out = tmp_path / "out.tif"
    spec = OutputSpec(out, creation_options={"PREDICTOR": "2"}, block_size=TILE, overwrite=True)
    CACHE.clear()
    before = CACHE.decoded
    process_scene(src, spec, [Step(kernel, ArraySource(mask))], options=RunOptions(window_size=2 * TILE))
    rows, cols = np.nonzero(mask)
    needed = {
        (r // TILE, c // TILE)
        for r0, c0 in zip(rows, cols, strict=True)
        for r in (r0 - 2, r0 + 2)
        for c in (c0 - 2, c0 + 2)
    }
    # Plus tile (0, 0): the header check's decode (inspect_scene), now kept in the cache.
    assert CACHE.decoded - before == len(needed | {(0, 0)})
    with rasterio.open(out) as ds:
        assert np.array_equal(ds.read(), masked_convolve(data, kernel, mask))


def test_a_file_rewritten_between_runs_is_read_anew(tmp_path: Path) -> None:
    src, _ = _scene(tmp_path / "s.tif", seed=1)
    with rasterio.open(src) as ds:
        read_tiled(ds, str(src), (TILE, TILE), np.arange(64), np.arange(64))
    src, data = _scene(tmp_path / "s.tif", seed=2)  # the same path, other pixels
    with rasterio.open(src) as ds:
        got = read_tiled(ds, str(src), (TILE, TILE), np.arange(64), np.arange(64))
    assert np.array_equal(got, data[:, :64, :64])


def test_only_local_tiled_files_are_shared() -> None:
    assert shareable("/data/scene.tif", (512, 512))
    assert not shareable("/vsis3/bucket/scene.tif", (512, 512))
    assert not shareable("https://host/scene.tif", (512, 512))
    assert not shareable("/data/striped.tif", (1, 8192))  # one-row strips


def _plan(src: Path, out: Path, mask: np.ndarray, creation=None, **options: object):  # type: ignore[no-untyped-def]
    from geomask.engine.plan import plan_scene

    creation = {"PREDICTOR": "2"} | (creation or {})
    spec = OutputSpec(out, creation_options=creation, block_size=TILE, overwrite=True)
    step = Step(kernels.get("gaussian", sigma=1.0), ArraySource(mask))
    return plan_scene(src, spec, [step], options=RunOptions(window_size=2 * TILE, **options))  # type: ignore[arg-type]


def test_the_header_checks_first_tile_is_the_one_the_window_reads(tmp_path: Path) -> None:
    """Planning decodes the first tile (the check that the pixels read) and keeps it: the window that
    needs it does not decode it again, and the output equals the reference."""
    src, data = _scene(tmp_path / "s.tif")
    mask = np.zeros(data.shape[1:], dtype=bool)
    mask[5:20, 5:40] = True  # tiles (0, 0) and (0, 1)
    CACHE.clear()
    before = CACHE.decoded
    plan = _plan(src, tmp_path / "out.tif", mask)
    assert CACHE.decoded - before == 1  # the check's decode, kept
    from geomask.executors.local import run_windows

    with plan:
        for result in run_windows(plan.job, plan.windows, RunOptions(window_size=2 * TILE)):
            plan.write(result)
        plan.commit()
    assert CACHE.decoded - before == 2  # tile (0, 1) only: (0, 0) was served from the check's decode
    kernel = kernels.get("gaussian", sigma=1.0)
    with rasterio.open(tmp_path / "out.tif") as ds:
        assert np.array_equal(ds.read(), masked_convolve(data, kernel, mask))


@pytest.mark.parametrize("case", ["band-interleaved", "processes"])
def test_the_first_tile_is_kept_only_where_the_windows_read_it(tmp_path: Path, case: str) -> None:
    """Band-interleaved (one block per band: the check decodes band 1's only) or windows in other
    processes (their own caches): the check decodes as before and nothing is kept."""
    if case == "band-interleaved":
        data = (np.random.default_rng(1).random((3, 96, 96)) * 5000).astype("uint16")
        src = write_raster(
            tmp_path / "s.tif", data, block=TILE, compress="deflate", predictor=2, interleave="band"
        )
        options: dict[str, object] = {"creation": {"INTERLEAVE": "BAND"}}
    else:
        src, data = _scene(tmp_path / "s.tif")
        options = {"scheduler": "processes"}
    mask = np.zeros(data.shape[1:], dtype=bool)
    mask[5:20, 5:20] = True
    CACHE.clear()
    before = CACHE.decoded
    plan = _plan(src, tmp_path / "out.tif", mask, **options)
    assert plan.job.copy_tile == TILE  # tile copy on: the windows would read through a cache
    assert CACHE.decoded == before


def test_a_first_tile_that_does_not_decode_is_the_same_input_error(tmp_path: Path) -> None:
    """The check keeping the first tile reports a corrupt first tile as the default check does."""
    from geomask.engine.tilecache import FirstTile
    from geomask.errors import InputError
    from geomask.io import inspect_scene

    src, _ = _scene(tmp_path / "s.tif")
    with rasterio.open(src) as ds:
        offset = int(ds.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1))
    raw = bytearray(src.read_bytes())
    raw[offset : offset + 64] = b"\xff" * 64
    src.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="first block") as default:
        inspect_scene(src)
    first = FirstTile(str(src))
    with pytest.raises(InputError, match="first block") as kept:
        inspect_scene(src, read_first=first)
    assert str(kept.value) == str(default.value)
    assert first.tile is None
