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
from geomask.output.writer import OutputFile, encoding_profile, shared_encoding


def _writer(src, final, tags=None, **kwargs):
    return OutputFile(
        final,
        inspect_scene(src),
        block_size=16,
        compress="deflate",
        creation_options={},
        tags=tags or {},
        **kwargs,
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


def _tiled_scene(make_raster):
    data = np.arange(32 * 32, dtype="uint16").reshape(1, 32, 32)
    return make_raster(data, block=16, compress="deflate"), data


def test_every_tile_written_gets_its_tags_without_reopening(make_raster, tmp_path, monkeypatch):
    """Tile copy possible but every tile written: nothing to copy, so the tags are written as the
    file closes (no reopening to rewrite its directory)."""
    src, data = _tiled_scene(make_raster)
    final = tmp_path / "out.tif"

    def reopened(*args, **kwargs):
        raise AssertionError("the finished file was reopened to add its tags")

    monkeypatch.setattr("geomask.output.writer.write_tags", reopened)
    with _writer(src, final, tags={"GEOMASK_X": "1"}) as out:
        assert out.copy_tile == 16
        out.write(data + 1, Window(0, 0, 32, 32))
        out.commit()
    with rasterio.open(final) as ds:
        assert ds.tags()["GEOMASK_X"] == "1"
        assert np.array_equal(ds.read(), data + 1)


def test_copied_tiles_still_get_the_tags_after_the_copy(make_raster, tmp_path):
    src, data = _tiled_scene(make_raster)
    final = tmp_path / "out.tif"
    with _writer(src, final, tags={"GEOMASK_X": "1"}) as out:
        out.write(data[:, :16, :16] + 1, Window(0, 0, 16, 16))
        out.commit()
    expected = data.copy()
    expected[:, :16, :16] += 1
    with rasterio.open(final) as ds:
        assert ds.tags()["GEOMASK_X"] == "1"
        assert np.array_equal(ds.read(), expected)


@pytest.mark.parametrize(
    ("threads", "scenes", "cores", "expected"),
    [
        ("ALL_CPUS", 2, 2, "1"),
        ("ALL_CPUS", 2, 16, "8"),
        ("2", 2, 2, "1"),
        ("2", 2, 16, "2"),
        ("8", 1, 2, "8"),
        ("ALL_CPUS", 2, 1, "1"),
    ],
)
def test_encoding_profile_caps_num_threads_to_the_scenes_share(threads, scenes, cores, expected):
    profile = {"compress": "deflate", "num_threads": threads}
    capped = encoding_profile(profile, scenes, cores)
    assert {str(k).upper(): v for k, v in capped.items()}["NUM_THREADS"] == expected
    assert capped["compress"] == "deflate"
    assert profile["num_threads"] == threads  # not modified in place


def test_encoding_profile_leaves_other_profiles_alone():
    assert encoding_profile({"compress": "deflate"}, 2, 2) == {"compress": "deflate"}
    assert encoding_profile({"NUM_THREADS": "many"}, 2, 2) == {"NUM_THREADS": "many"}


def test_shared_encoding_writes_the_same_bytes(make_raster, tmp_path):
    """Within shared_encoding (two scenes in flight) the output's NUM_THREADS is capped: same file."""
    src, data = _tiled_scene(make_raster)
    paths = []
    for name, shared in (("alone.tif", 1), ("beside.tif", 2)):
        final = tmp_path / name
        options = {"NUM_THREADS": "ALL_CPUS"}
        with (
            shared_encoding(shared),
            OutputFile(
                final,
                inspect_scene(src),
                block_size=16,
                compress="deflate",
                creation_options=options,
                tags={},
            ) as out,
        ):
            out.write(data + 1, Window(0, 0, 32, 32))
            out.commit()
        paths.append(final)
    assert paths[0].read_bytes() == paths[1].read_bytes()
