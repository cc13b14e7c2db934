"""The output lock (geomask/lock.py): the folders it makes for an output are not left behind empty."""

from __future__ import annotations

from pathlib import Path

import pytest
from _fixtures_cli import make_project
from typer.testing import CliRunner

from geomask.cli import app
from geomask.errors import InputError
from geomask.lock import lock_path, output_lock


def test_folders_made_for_an_output_that_was_not_written_are_removed(tmp_path: Path) -> None:
    output = tmp_path / "out" / "a" / "b" / "x.tif"
    with pytest.raises(InputError), output_lock(output):
        assert output.parent.is_dir() and lock_path(output).exists()
        raise InputError("the scene failed before writing")
    assert not (tmp_path / "out").exists()


def test_folders_holding_a_file_stay(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    output = tmp_path / "out" / "a" / "x.tif"
    with output_lock(output):
        output.write_bytes(b"written")
    assert output.read_bytes() == b"written"
    other = tmp_path / "out" / "b" / "x.tif"
    with output_lock(other):
        pass
    assert not other.parent.exists() and (tmp_path / "out" / "keep.txt").exists()


def test_a_refused_run_leaves_no_output_folder(tmp_path: Path) -> None:
    """A run refused inside the lock (a missing scene here) exits with one line and makes no folder."""
    pipeline = make_project(tmp_path, output={"path": "out/deep/{stem}.tif"})
    (tmp_path / "scene.tif").write_text("not a GeoTIFF")
    result = CliRunner().invoke(app, ["run", str(pipeline), "-q", "--continue-on-error"])
    assert result.exit_code != 0
    assert not (tmp_path / "out").exists()
