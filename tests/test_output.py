"""The output writer (geomask.output): temporary file, commit, misuse, and its error classes."""

from __future__ import annotations

import errno

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from geomask.errors import CopyFailed, OutputError, RunError
from geomask.io import inspect_scene
from geomask.output.staging import partial_path, remove_stale_partials
from geomask.output.writer import OutputFile


def _writer(src, final, **kwargs):
    return OutputFile(
        final, inspect_scene(src), block_size=16, compress="deflate", creation_options={}, tags={}, **kwargs
    )


def test_output_file_removed_without_commit(make_raster, tmp_path):
    src = make_raster(np.zeros((8, 8), "uint8"))
    final = tmp_path / "out.tif"
    with (
        pytest.raises(RuntimeError),
        OutputFile(
            final, inspect_scene(src), block_size=16, compress="deflate", creation_options={}, tags={}
        ),
    ):
        assert list(tmp_path.glob("out.tif.geomask-*.partial"))
        raise RuntimeError("interrupted")
    assert not final.exists()
    assert not list(tmp_path.glob("*.partial"))


def test_output_file_commit_renames(make_raster, tmp_path):
    src = make_raster(np.ones((8, 8), "uint8"))
    final = tmp_path / "out.tif"
    info = inspect_scene(src)
    with OutputFile(
        final, info, block_size=16, compress="deflate", creation_options={}, tags={"A": "1"}
    ) as out:
        out.write(np.full((1, 8, 8), 7, "uint8"), rasterio.windows.Window(0, 0, 8, 8))
        out.commit()
    with rasterio.open(final) as ds:
        assert ds.read().min() == 7 and ds.tags()["A"] == "1"
    assert not list(tmp_path.glob("*.partial"))


def test_output_to_unwritable_place(make_raster, tmp_path):
    src = make_raster(np.ones((8, 8), "uint8"))
    final = tmp_path / "missing-dir" / "deeper" / "out.tif"
    (tmp_path / "missing-dir").write_text("a file where a folder should be")
    with (
        pytest.raises(OutputError, match=r"out\.tif"),
        OutputFile(
            final, inspect_scene(src), block_size=16, compress="deflate", creation_options={}, tags={}
        ),
    ):
        pass


def test_write_outside_the_with_block_is_a_run_error(make_raster, tmp_path):
    """A caller bug (writing before entering, or after commit) raises RunError, not an assert."""
    src = make_raster(np.ones((8, 8), "uint8"))
    out = _writer(src, tmp_path / "out.tif")
    with pytest.raises(RunError, match="outside its with-block"):
        out.write(np.ones((1, 8, 8), "uint8"), Window(0, 0, 8, 8))
    with pytest.raises(RunError, match="commit outside the with-block"):
        out.commit()
    with out:
        out.write(np.ones((1, 8, 8), "uint8"), Window(0, 0, 8, 8))
        out.commit()
        with pytest.raises(RunError, match="commit outside the with-block"):
            out.commit()
    assert (tmp_path / "out.tif").exists()


def test_no_tile_copy_after_creation_is_a_run_error(make_raster, tmp_path):
    src = make_raster(np.ones((64, 64), "uint8"), block=16, compress="deflate")
    with _writer(src, tmp_path / "out.tif") as out, pytest.raises(RunError, match="no_tile_copy after"):
        out.no_tile_copy()
    assert not list(tmp_path.glob("out.tif*"))


def test_copy_failed_is_an_output_error_with_its_errno():
    """GDAL's failed copy is an OutputError (an OSError) carrying the C errno: disk full by number."""
    full = CopyFailed("_tiffWriteProc: write error", 3, errno.ENOSPC)
    assert isinstance(full, OutputError) and isinstance(full, OSError)
    assert full.errno == errno.ENOSPC and full.no_space and str(full) == "_tiffWriteProc: write error"
    assert not CopyFailed("no driver", 0, 0).no_space


def test_stale_partials_of_dead_processes_are_removed(tmp_path):
    final = tmp_path / "out.tif"
    mine = partial_path(final)
    mine.write_bytes(b"in progress")
    dead = final.with_name(f"{final.name}.geomask-999999999-0123abcd.partial")
    dead.write_bytes(b"left by a killed run")
    (tmp_path / (dead.name + ".ovr.tmp")).write_bytes(b"overviews")
    removed = remove_stale_partials(final)
    assert sorted(p.name for p in removed) == sorted([dead.name, dead.name + ".ovr.tmp"])
    assert mine.exists()
