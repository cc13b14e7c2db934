"""Tests of geomask.guard.RunFiles: the files of a run are recognised however their path is written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from geomask.guard import RunFiles


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """real/scene.tif, a folder symlink alias -> real, a file symlink real/link.tif -> scene.tif."""
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "scene.tif").write_bytes(b"x")
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    (tmp_path / "real" / "link.tif").symlink_to(tmp_path / "real" / "scene.tif")
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "real")
    return tmp_path


def test_paths_are_keyed_by_their_real_path(tree: Path) -> None:
    """A protected name (existing or not, such as a sidecar name) is found through a symlinked folder,
    ``..``, a relative path or a symlink to it; the key is ``realpath``'s (folders resolved once)."""
    files = RunFiles()
    files.add(tree / "real" / "scene.tif", "an input scene")
    files.add(tree / "alias" / "scene.tif.msk", "a sidecar name")  # does not exist
    files.add(tree / "alias" / "missing" / "x.tif", "in a missing folder")
    for path, role in [
        (tree / "alias" / "scene.tif", "an input scene"),
        (tree / "other" / ".." / "alias" / "scene.tif", "an input scene"),
        ("scene.tif", "an input scene"),
        (tree / "real" / "link.tif", "an input scene"),
        (tree / "real" / "scene.tif.msk", "a sidecar name"),
        ("scene.tif.msk", "a sidecar name"),
        (tree / "real" / "missing" / "x.tif", "in a missing folder"),
        (tree / "other" / "scene.tif", None),
        (tree / "real" / "scene.tif.aux.xml", None),
    ]:
        assert files.role(path) == role, path
    alias = tree / "alias"
    for path in [alias / "scene.tif.msk", "scene.tif", alias / "link.tif", alias / "..", alias / "."]:
        assert files._key(path) == os.path.normcase(os.path.realpath(path)), path
