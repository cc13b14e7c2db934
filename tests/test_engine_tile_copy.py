"""The engine with tile copy: unchanged tiles copied compressed from the input, the pixels unchanged.

The output must equal the whole-array ``masked_convolve`` reference byte for byte, whether its
tiles were computed, copied as compressed bytes, or (profile mismatch) re-encoded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from conftest import raw_tiles, write_raster
from hypothesis import given, settings
from hypothesis import strategies as st
from rio_cogeo.cogeo import cog_validate

from geomask import kernels, tiffraw
from geomask.convolve import masked_convolve
from geomask.masks import ArraySource
from geomask.process import process_scene
from geomask.spec import OutputSpec, RunOptions, Step

TILE = 32
SOURCE = {"block": TILE, "compress": "deflate", "predictor": 2, "interleave": "pixel"}
SAME = {"PREDICTOR": "2"}  # the output's creation options that match SOURCE


def _scene(tmp_path: Path, shape=(3, 150, 200), seed=0, dtype="uint16", **options) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(seed)
    data = (rng.random(shape) * 5000).astype(dtype)
    return write_raster(tmp_path / f"scene{seed}.tif", data, nodata=None, **(SOURCE | options)), data


def _mask(shape: tuple[int, int], boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    for r0, r1, c0, c1 in boxes:
        m[r0:r1, c0:c1] = True
    return m


def _run(src: Path, mask: np.ndarray, out: Path, creation=SAME, **options) -> tuple[np.ndarray, object]:
    kernel = kernels.get("gaussian", sigma=1.0)
    spec = OutputSpec(out, creation_options=creation, block_size=TILE, overwrite=True)
    opts = RunOptions(window_size=2 * TILE, workers=2) if not options else RunOptions(**options)
    report = process_scene(src, spec, [Step(kernel, ArraySource(mask))], options=opts)
    with rasterio.open(out) as ds:
        return ds.read(), report


def test_unchanged_tiles_are_the_inputs_bytes_and_the_pixels_the_reference(tmp_path: Path) -> None:
    src, data = _scene(tmp_path)
    mask = _mask(data.shape[1:], [(40, 60, 40, 70), (100, 140, 150, 190)])
    got, report = _run(src, mask, tmp_path / "out.tif")
    expected = masked_convolve(data, kernels.get("gaussian", sigma=1.0), mask)
    assert np.array_equal(got, expected)
    # Tiles holding no changed pixel are the input's compressed bytes; the others were re-encoded.
    layout = tiffraw.layout_of(src)
    assert layout is not None and layout == tiffraw.layout_of(tmp_path / "out.tif")
    src_raw, out_raw = raw_tiles(src), raw_tiles(tmp_path / "out.tif")
    down, across = layout.grid
    copied = 0
    for r in range(down):
        for c in range(across):
            ys, xs = slice(r * TILE, (r + 1) * TILE), slice(c * TILE, (c + 1) * TILE)
            changed = not np.array_equal(got[:, ys, xs], data[:, ys, xs])
            [i] = layout.indices(r, c)
            assert (out_raw[i] == src_raw[i]) or changed
            copied += not changed
    assert copied >= down * across - 6
    assert report.pixels_selected == int(mask.sum())
    assert report.windows_skipped > 0


def test_no_tile_copy_when_the_profile_differs_and_the_same_pixels(tmp_path: Path) -> None:
    src, data = _scene(tmp_path)
    mask = _mask(data.shape[1:], [(10, 20, 10, 20)])
    expected = masked_convolve(data, kernels.get("gaussian", sigma=1.0), mask)
    got, _ = _run(src, mask, tmp_path / "lzw.tif", creation={"COMPRESS": "LZW"})
    assert np.array_equal(got, expected)
    assert tiffraw.layout_of(tmp_path / "lzw.tif").compression == 5  # type: ignore[union-attr]
    off, _ = _run(src, mask, tmp_path / "off.tif", window_size=2 * TILE, copy_tiles=False)
    assert np.array_equal(off, expected)


def test_a_wrong_prediction_falls_back_to_re_encoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If GDAL writes another layout than profile_matches predicted, the tiles are re-encoded."""
    src, data = _scene(tmp_path)
    mask = _mask(data.shape[1:], [(70, 80, 5, 15)])
    monkeypatch.setattr(tiffraw, "profile_matches", lambda layout, profile: True)
    got, _ = _run(src, mask, tmp_path / "out.tif", creation={"PREDICTOR": "1"})
    assert np.array_equal(got, masked_convolve(data, kernels.get("gaussian", sigma=1.0), mask))
    assert tiffraw.layout_of(tmp_path / "out.tif").predictor == 1  # type: ignore[union-attr]


def test_cog_output_with_tile_copy(tmp_path: Path) -> None:
    src, data = _scene(tmp_path, shape=(3, 300, 260))
    mask = _mask(data.shape[1:], [(0, 40, 0, 50)])
    kernel = kernels.get("gaussian", sigma=1.0)
    out = tmp_path / "out.tif"
    spec = OutputSpec(out, format="COG", creation_options=SAME, block_size=TILE, overwrite=True)
    process_scene(src, spec, [Step(kernel, ArraySource(mask))], options=RunOptions(window_size=64))
    valid, errors, _ = cog_validate(out, strict=True)
    assert valid, errors
    with rasterio.open(out) as ds:
        assert np.array_equal(ds.read(), masked_convolve(data, kernel, mask))


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    window_tiles=st.integers(1, 3),
    dtype=st.sampled_from(["uint8", "int16", "float32"]),
    boxes=st.lists(st.tuples(st.integers(0, 90), st.integers(0, 120), st.integers(1, 30)), max_size=4),
    scheduler=st.sampled_from(["threads", "synchronous", "processes"]),
)
@pytest.mark.slow
def test_tile_copy_equals_the_reference(seed, window_tiles, dtype, boxes, scheduler) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        predictor = "3" if dtype == "float32" else "2"
        src, data = _scene(tmp_path, shape=(2, 100, 130), seed=seed, dtype=dtype, predictor=int(predictor))
        mask = _mask(data.shape[1:], [(r, r + s, c, c + s) for r, c, s in boxes])
        got, _ = _run(
            src,
            mask,
            tmp_path / "out.tif",
            creation={"PREDICTOR": predictor},
            window_size=window_tiles * TILE,
            scheduler=scheduler,
            workers=2,
        )
        expected = masked_convolve(data, kernels.get("gaussian", sigma=1.0), mask)
        assert np.array_equal(got.view(f"u{got.itemsize}"), expected.view(f"u{got.itemsize}"))


def test_a_run_that_changes_nothing_equals_the_input(tmp_path: Path) -> None:
    """No tile written by GDAL at all (its sparse file may then use 16-bit byte counts): still the input."""
    src, data = _scene(tmp_path, shape=(3, 300, 260))
    got, report = _run(src, np.zeros(data.shape[1:], dtype=bool), tmp_path / "out.tif")
    assert np.array_equal(got, data)
    assert report.windows_computed == 0


def _corrupt_tile(path: Path, tile_row: int, tile_col: int) -> None:
    """Overwrite the middle of one tile's compressed bytes, so that tile no longer decodes."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        layout = tiffraw._layout(tif)
        [i] = layout.indices(tile_row, tile_col)
        offset, count = tif.pages.first.dataoffsets[i], tif.pages.first.databytecounts[i]
    with open(path, "r+b") as f:
        f.seek(offset + count // 4)
        f.write(b"\xff" * (count // 2))


def test_a_window_decodes_only_its_tiles_with_targets(tmp_path: Path) -> None:
    """A window of 2 x 2 tiles whose targets lie in one tile, clear of its edges, decodes that tile
    alone: a tile of the window that does not decode is never read (it is copied as it is)."""
    src, data = _scene(tmp_path, shape=(3, 128, 128))
    _corrupt_tile(src, 1, 1)
    with rasterio.open(src) as ds, pytest.raises(rasterio.errors.RasterioIOError):
        ds.read(window=rasterio.windows.Window(TILE, TILE, TILE, TILE))  # the corrupt tile
    mask = _mask(data.shape[1:], [(8, 20, 6, 24)])  # tile (0, 0) only, 2 pixels of halo inside it
    out = tmp_path / "out.tif"
    kernel = kernels.get("gaussian", sigma=1.0)
    spec = OutputSpec(out, creation_options=SAME, block_size=TILE, overwrite=True)
    report = process_scene(
        src, spec, [Step(kernel, ArraySource(mask))], options=RunOptions(window_size=2 * TILE)
    )
    assert report.pixels_changed > 0
    expected = masked_convolve(data, kernel, mask)
    with rasterio.open(out) as ds:
        got = ds.read(window=rasterio.windows.Window(0, 0, 2 * TILE, TILE))
    assert np.array_equal(got, expected[:, :TILE, : 2 * TILE])
    [i] = tiffraw.layout_of(src).indices(1, 1)
    assert raw_tiles(out)[i] == raw_tiles(src)[i]


def test_two_steps_on_part_of_a_window_equal_the_reference(tmp_path: Path) -> None:
    """Two steps whose targets cover some tiles of 3 x 3-tile windows: computed tile by tile, each
    with the halos of both steps, the output equals the two whole-array steps in sequence."""
    src, data = _scene(tmp_path, shape=(3, 200, 230), seed=3)
    first = _mask(data.shape[1:], [(30, 33, 60, 70), (90, 130, 0, 31), (150, 170, 190, 230)])
    second = _mask(data.shape[1:], [(29, 40, 63, 66), (120, 128, 25, 40), (96, 97, 95, 97)])
    k1, k2 = kernels.get("gaussian", sigma=1.0), kernels.get("box", size=5)
    out = tmp_path / "out.tif"
    spec = OutputSpec(out, creation_options=SAME, block_size=TILE, overwrite=True)
    steps = [Step(k1, ArraySource(first)), Step(k2, ArraySource(second))]
    process_scene(src, spec, steps, options=RunOptions(window_size=3 * TILE, workers=2))
    expected = masked_convolve(masked_convolve(data, k1, first), k2, second)
    with rasterio.open(out) as ds:
        assert np.array_equal(ds.read(), expected)


def _write_plan(src: Path, mask: np.ndarray, out: Path, per_tile: bool) -> list[tuple[int, int, int, int]]:
    """Plan ``src`` with tile copy, compute its windows and write them (the writes' windows are
    returned). ``per_tile``: every changed tile written on its own (what :meth:`ScenePlan.write`
    did before whole-window writes), else through :meth:`ScenePlan.write`."""
    from geomask.engine.plan import plan_scene
    from geomask.executors.local import run_windows

    kernel = kernels.get("gaussian", sigma=1.0)
    spec = OutputSpec(out, creation_options=SAME, block_size=TILE, overwrite=True)
    options = RunOptions(window_size=2 * TILE, scheduler="synchronous")
    plan = plan_scene(src, spec, [Step(kernel, ArraySource(mask))], options=options)
    writes: list[tuple[int, int, int, int]] = []
    write = plan.writer.write

    def counted(data, window, mask=None):  # type: ignore[no-untyped-def]
        writes.append((int(window.row_off), int(window.col_off), int(window.height), int(window.width)))
        write(data, window, mask)

    plan.writer.write = counted  # type: ignore[method-assign]
    with plan:
        for result in run_windows(plan.job, plan.windows, options):
            if per_tile and result.tiles is not None and result.data is not None:
                t = TILE
                for tr, tc in zip(*np.nonzero(result.tiles), strict=True):
                    part = result.data[:, tr * t : (tr + 1) * t, tc * t : (tc + 1) * t]
                    w = result.window
                    at = rasterio.windows.Window(
                        w.col_off + tc * t, w.row_off + tr * t, part.shape[2], part.shape[1]
                    )
                    plan.writer.write(part, at)
            else:
                plan.write(result)
        plan.commit()
    return writes


def test_a_window_whose_tiles_all_changed_is_written_at_once_with_the_same_bytes(tmp_path: Path) -> None:
    """A window whose tiles all hold changed pixels is one write (no per-tile copies), and the file
    is byte for byte the one written tile by tile; a window with some unchanged tiles still writes
    only its changed tiles (the others are copied)."""
    src, data = _scene(tmp_path, shape=(3, 128, 128), seed=5)
    # Window (0, 0) (rows 0..63, cols 0..63): all 4 tiles changed; window (64, 64): 1 tile of 4.
    mask = _mask(data.shape[1:], [(10, 54, 10, 54), (70, 90, 70, 90)])
    whole = _write_plan(src, mask, tmp_path / "whole.tif", per_tile=False)
    tiles = _write_plan(src, mask, tmp_path / "tiles.tif", per_tile=True)
    assert whole == [(0, 0, 64, 64), (64, 64, TILE, TILE)]
    assert len(tiles) == 5
    assert (tmp_path / "whole.tif").read_bytes() == (tmp_path / "tiles.tif").read_bytes()
    expected = masked_convolve(data, kernels.get("gaussian", sigma=1.0), mask)
    with rasterio.open(tmp_path / "whole.tif") as ds:
        assert np.array_equal(ds.read(), expected)
