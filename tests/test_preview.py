"""geomask preview: the quicklook PNG's size, and before/after panels that differ only inside the ROI."""

from __future__ import annotations

import numpy as np
import pytest
from _fixtures_cli import ROI_PIXELS, make_project
from PIL import Image
from scipy import ndimage
from typer.testing import CliRunner

import geomask
from geomask.cli import app
from geomask.preview import GAP, HEADER, render_preview


def _panels(png, w, h):
    image = np.asarray(Image.open(png).convert("RGB"))
    assert image.shape == (HEADER + h, 3 * w + 2 * GAP, 3)
    return [image[HEADER:, i * (w + GAP) : i * (w + GAP) + w] for i in range(3)]


def _roi(shape, f):
    col0, row0, col1, row1 = ROI_PIXELS
    mask = np.zeros(shape, bool)
    mask[row0 // f : row1 // f, col0 // f : col1 // f] = True
    return mask


@pytest.mark.parametrize("run_first", [True, False])
def test_panels_differ_inside_the_roi_only(tmp_path, run_first):
    pipeline = make_project(tmp_path, kernel={"name": "box", "size": 5}, bands=[1])
    if run_first:
        geomask.run_pipeline(pipeline)
    png = tmp_path / "ql.png"
    result = CliRunner().invoke(app, ["preview", str(pipeline), "-o", str(png)])
    assert result.exit_code == 0, result.output
    before, after, mask = _panels(png, 64, 48)  # the 64 x 48 scene, not decimated
    roi = _roi((48, 64), 1)
    differs = (before != after).any(axis=2)
    assert differs[ndimage.binary_erosion(roi, iterations=2)].mean() > 0.5
    assert not differs[~ndimage.binary_dilation(roi, iterations=1)].any()
    assert (mask[ndimage.binary_erosion(roi, iterations=2)] == 255).all()
    outside = mask[~ndimage.binary_dilation(roi, iterations=1)]
    assert ((outside == 0).all(axis=1) | (outside == (255, 255, 0)).all(axis=1)).all()  # black or outline
    yellow = (before == (255, 255, 0)).all(axis=2)
    assert yellow[
        ndimage.binary_dilation(roi, iterations=1) & ~ndimage.binary_erosion(roi, iterations=1)
    ].any()


def test_decimated_size(tmp_path):
    pipeline = make_project(tmp_path)
    png = render_preview(pipeline, tmp_path / "small.png", size=20)
    # 64 x 48 pixels, decimated by ceil(64 / 20) = 4: panels of 16 x 12
    assert Image.open(png).size == (3 * 16 + 2 * GAP, HEADER + 12)


@pytest.mark.parametrize(
    ("target", "role"),
    [
        ("scene.tif", "an input scene"),
        ("roi.geojson", "the vector file"),
        ("pipeline.yaml", "the pipeline file"),
        ("out/scene.denoised.tif", "an output of this run"),
    ],
)
def test_preview_never_replaces_a_file_of_the_pipeline(tmp_path, target, role):
    pipeline = make_project(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "scene.denoised.tif").write_bytes(b"output")
    files = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    result = CliRunner().invoke(app, ["preview", str(pipeline), "-o", str(tmp_path / target), "--overwrite"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and role in result.stderr, result.stderr
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == files


def test_preview_replaces_its_own_png_and_needs_overwrite_for_another(tmp_path):
    pipeline = make_project(tmp_path)
    png = tmp_path / "ql.png"
    for _ in range(2):  # its own quicklook is replaced
        assert CliRunner().invoke(app, ["preview", str(pipeline), "-o", str(png)]).exit_code == 0
    assert Image.open(png).info["Software"].startswith("geomask ")
    Image.new("RGB", (4, 4)).save(png)
    result = CliRunner().invoke(app, ["preview", str(pipeline), "-o", str(png)])
    assert result.exit_code == 2 and "did not write" in result.stderr and "--overwrite" in result.stderr
    assert Image.open(png).size == (4, 4)
    assert CliRunner().invoke(app, ["preview", str(pipeline), "-o", str(png), "--overwrite"]).exit_code == 0
    assert Image.open(png).size != (4, 4)
