"""geomask preview: panels made the same way from full-resolution pixels, a changes panel, mask outlines.

The oracles are computed here with numpy from the full-resolution input, output and class rasters:
a panel pixel covers a block of f x f scene pixels, and it is "changed" (or "selected") when any pixel
of its block is.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from _fixtures_cli import SCENE_TRANSFORM, make_project
from conftest import write_raster
from numpy.typing import NDArray
from PIL import Image
from scipy import ndimage
from typer.testing import CliRunner

import geomask
from geomask.cli import app
from geomask.preview import CHANGED, GAP, HEADER, OUTLINE, render_preview

SHAPE = (48, 64)  # the scene of make_project (rows, cols)


def _panels(png: Path, f: int) -> list[NDArray[np.uint8]]:
    """before, after, changes, mask of a quicklook of the SHAPE scene decimated by ``f``."""
    h, w = math.ceil(SHAPE[0] / f), math.ceil(SHAPE[1] / f)
    image = np.asarray(Image.open(png).convert("RGB"))
    assert image.shape == (HEADER + h, 4 * w + 3 * GAP, 3)
    return [image[HEADER:, i * (w + GAP) : i * (w + GAP) + w] for i in range(4)]


def _block_any(mask: NDArray[np.bool_], f: int) -> NDArray[np.bool_]:
    """Per f x f block (the last ones cut by the scene edge): does it hold a True pixel."""
    h, w = math.ceil(mask.shape[0] / f), math.ceil(mask.shape[1] / f)
    out = np.zeros((h, w), bool)
    for r in range(h):
        for c in range(w):
            out[r, c] = mask[r * f : (r + 1) * f, c * f : (c + 1) * f].any()
    return out


def _outline(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The mask's pixels with a 4-neighbour outside it (the scene edge is not a boundary)."""
    padded = np.pad(mask, 1, mode="edge")
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def _is(panel: NDArray[np.uint8], colour: tuple[int, int, int]) -> NDArray[np.bool_]:
    return np.asarray((panel == colour).all(axis=2))


def _changed(pipeline: Path) -> NDArray[np.bool_]:
    """Full-resolution pixels where any band of the run's output differs from the input."""
    with (
        rasterio.open(pipeline.parent / "scene.tif") as a,
        rasterio.open(pipeline.parent / "out" / "scene.denoised.tif") as b,
    ):
        return np.asarray((a.read() != b.read()).any(axis=0))


@pytest.mark.parametrize("run_first", [True, False])
def test_unchanged_blocks_are_identical_and_the_changes_panel_is_exact(
    tmp_path: Path, run_first: bool
) -> None:
    pipeline = make_project(tmp_path, kernel={"name": "box", "size": 5}, bands=[1])
    if run_first:
        geomask.run_pipeline(pipeline)
    png = tmp_path / "ql.png"
    result = CliRunner().invoke(app, ["preview", str(pipeline), "-o", str(png), "--size", "16"])
    assert result.exit_code == 0, result.output
    if not run_first:
        geomask.run_pipeline(pipeline)  # the oracle: the pixels a run writes
    f = 4  # ceil(64 / 16)
    footprint = _block_any(_changed(pipeline), f)
    assert 0.05 < footprint.mean() < 0.8
    before, after, changes, _ = _panels(png, f)
    assert (before[~footprint] == after[~footprint]).all()
    inside = footprint & ~_is(before, OUTLINE)  # outlines are drawn the same on both
    assert inside.sum() >= 10
    assert (before[inside] != after[inside]).any(axis=1).mean() > 0.9
    np.testing.assert_array_equal(_is(changes, CHANGED), footprint)


def test_computed_after_equals_the_output(tmp_path: Path) -> None:
    """Without an output, the engine computes "after" at full resolution: the same panels as from the run."""
    pipeline = make_project(tmp_path, kernel={"name": "gaussian", "sigma": 1.5}, bands=[2])
    computed = np.asarray(Image.open(render_preview(pipeline, tmp_path / "computed.png", size=64)))
    geomask.run_pipeline(pipeline)
    read = np.asarray(Image.open(render_preview(pipeline, tmp_path / "read.png", size=64)))
    assert computed.shape == read.shape
    np.testing.assert_array_equal(computed[HEADER:], read[HEADER:])
    assert (computed[:HEADER] != read[:HEADER]).any()  # the labels say which


def test_a_stale_output_is_not_shown_as_after(tmp_path: Path) -> None:
    """An output made by another version of the pipeline is not what this pipeline would write."""
    geomask.run_pipeline(make_project(tmp_path, kernel={"name": "box", "size": 7}))
    pipeline = make_project(tmp_path, kernel={"name": "box", "size": 3})
    stale = np.asarray(Image.open(render_preview(pipeline, tmp_path / "stale.png", size=64)))
    geomask.run_pipeline(pipeline, overwrite=True)
    fresh = np.asarray(Image.open(render_preview(pipeline, tmp_path / "fresh.png", size=64)))
    np.testing.assert_array_equal(stale[HEADER:], fresh[HEADER:])
    assert (stale[:HEADER] != fresh[:HEADER]).any()  # "after (computed)", then "after (output)"


def test_change_in_a_band_not_shown_still_marks_the_changes_panel(tmp_path: Path) -> None:
    pipeline = make_project(tmp_path, kernel={"name": "box", "size": 3}, bands=[2])  # band 1 is shown
    geomask.run_pipeline(pipeline)
    before, after, changes, _ = _panels(render_preview(pipeline, tmp_path / "ql.png", size=32), 2)
    np.testing.assert_array_equal(before, after)
    footprint = _block_any(_changed(pipeline), 2)
    assert footprint.any()
    np.testing.assert_array_equal(_is(changes, CHANGED), footprint)


def test_a_single_changed_pixel_shows(tmp_path: Path) -> None:
    x0, y0 = SCENE_TRANSFORM @ (37, 21)  # the box of pixel (row 21, col 37)
    x1, y1 = SCENE_TRANSFORM @ (38, 22)
    pipeline = make_project(
        tmp_path,
        mask={"bbox": [x0 + 1, y1 + 1, x1 - 1, y0 - 1]},
        kernel={"name": "box", "size": 3},
    )
    geomask.run_pipeline(pipeline)
    changed = _changed(pipeline)
    assert np.argwhere(changed).tolist() == [[21, 37]]
    _, _, changes, mask = _panels(render_preview(pipeline, tmp_path / "ql.png", size=16), 4)
    expected = np.zeros((12, 16), bool)
    expected[21 // 4, 37 // 4] = True
    np.testing.assert_array_equal(_is(changes, CHANGED), expected)
    np.testing.assert_array_equal(_is(mask, (255, 255, 255)) | _is(mask, OUTLINE), expected)


def _classes(folder: Path) -> NDArray[np.uint8]:
    """Class raster on the scene's grid: 1 background, 2 and 3 side by side, a ragged 2 elsewhere."""
    classes = np.ones(SHAPE, np.uint8)
    classes[5:30, 6:30] = 2
    classes[5:30, 30:50] = 3  # touches class 2: their shared edge is outlined for kernels_by only
    classes[36:45, 9:23] = 2
    classes[40, 40] = 2  # one pixel
    write_raster(folder / "classes.tif", classes, transform=SCENE_TRANSFORM, nodata=0)
    return classes


@pytest.mark.parametrize("per_class", [False, True], ids=["raster-mask", "kernels_by"])
def test_outlines_of_a_class_raster_mask(tmp_path: Path, per_class: bool) -> None:
    classes = _classes(tmp_path)
    overrides: dict[str, Any] = {"mask": {"raster": "classes.tif", "values": [2, 3]}}
    if per_class:
        overrides |= {
            "kernel": None,
            "kernels_by": {"kernels": {"2": {"name": "box"}, "3": {"name": "box", "size": 5}}},
        }
    pipeline = make_project(tmp_path, **overrides)
    f = 3  # ceil(64 / 22)
    before, after, changes, mask = _panels(render_preview(pipeline, tmp_path / "ql.png", size=22), f)
    regions = [classes == 2, classes == 3] if per_class else [np.isin(classes, [2, 3])]
    expected = np.logical_or.reduce([_outline(_block_any(r, f)) for r in regions])
    selected = _block_any(np.isin(classes, [2, 3]), f)
    assert expected.sum() > 20
    for panel in (before, after, mask):  # a grey scene: no yellow but the outlines
        np.testing.assert_array_equal(_is(panel, OUTLINE), expected)
    np.testing.assert_array_equal(_is(mask, (255, 255, 255)), selected & ~expected)
    assert not _is(changes, OUTLINE).any()


def test_outline_of_a_grown_expression_mask(tmp_path: Path) -> None:
    """Every mask form is outlined the same way: here an expression under the mask algebra."""
    pipeline = make_project(tmp_path, mask={"grow": 2, "mask": {"expression": "b1 > 4980"}})
    with rasterio.open(tmp_path / "scene.tif") as ds:
        seeds = ds.read(1) > 4980
    offsets = np.arange(-2, 3)
    grown = ndimage.binary_dilation(seeds, offsets[:, None] ** 2 + offsets[None, :] ** 2 <= 4)
    expected = _outline(_block_any(grown, 2))
    assert seeds.sum() >= 3 and expected.sum() > 10
    before, _, _, mask = _panels(render_preview(pipeline, tmp_path / "ql.png", size=32), 2)
    np.testing.assert_array_equal(_is(before, OUTLINE), expected)
    np.testing.assert_array_equal(_is(mask, OUTLINE), expected)


def test_panels_are_stretched_means_of_the_valid_pixels(tmp_path: Path) -> None:
    """Each panel pixel: the mean of its block's valid pixels, stretched 2-98 %; black where none is valid."""
    pipeline = make_project(tmp_path)
    with rasterio.open(tmp_path / "scene.tif", "r+") as ds:
        data = ds.read()
        data[:, :, :9] = 0  # nodata: blocks of columns 0-7 all nodata, 8-11 partly
        data[:, 40:, 28:] = 0
        data[:, 41, 30] = 7  # the one valid pixel of its block
        ds.write(data)
    before, _, _, _ = _panels(render_preview(pipeline, tmp_path / "ql.png", size=16), 4)
    means = np.full((12, 16), np.nan)
    for r in range(12):
        for c in range(16):
            block = data[0, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4]
            if (block != 0).any():
                means[r, c] = block[block != 0].mean()
    lo, hi = np.nanpercentile(means, [2, 98])
    expected = np.clip(np.nan_to_num((means - lo) / (hi - lo)) * 255, 0, 255).round().astype(np.uint8)
    expected[np.isnan(means)] = 0
    assert np.isnan(means[:, :2]).all() and means[10, 7] == 7
    shown = ~_is(before, OUTLINE)
    assert shown.mean() > 0.8
    np.testing.assert_array_equal(before[..., 0][shown], expected[shown])
    np.testing.assert_array_equal(before[..., 2][shown], expected[shown])  # grey


def test_decimated_size(tmp_path: Path) -> None:
    pipeline = make_project(tmp_path)
    png = render_preview(pipeline, tmp_path / "small.png", size=20)
    # 64 x 48 pixels, decimated by ceil(64 / 20) = 4: panels of 16 x 12
    assert Image.open(png).size == (4 * 16 + 3 * GAP, HEADER + 12)


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


def test_computed_after_honours_the_alpha_band(tmp_path: Path) -> None:
    """An RGBA scene: the computed "after" leaves the alpha band and the transparent pixels alone, as
    the run does (the same panels as from the run's output)."""
    from rasterio.enums import ColorInterp

    pipeline = make_project(tmp_path, kernel={"name": "gaussian", "sigma": 1.5}, mask=None)
    with rasterio.open(tmp_path / "scene.tif") as ds:
        profile = {**ds.profile, "count": 4, "dtype": "uint8", "nodata": None}
    rng = np.random.default_rng(3)
    data = rng.integers(0, 256, size=(4, *SHAPE), dtype=np.uint8)
    data[3] = np.where(rng.random(SHAPE) < 0.3, 0, 255)
    with rasterio.open(tmp_path / "scene.tif", "w", **profile) as ds:
        ds.write(data)
        ds.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    computed = np.asarray(Image.open(render_preview(pipeline, tmp_path / "computed.png", size=64)))
    geomask.run_pipeline(pipeline)
    with rasterio.open(tmp_path / "out" / "scene.denoised.tif") as ds:
        assert np.array_equal(ds.read(4), data[3])  # the run: alpha copied
    read = np.asarray(Image.open(render_preview(pipeline, tmp_path / "read.png", size=64)))
    np.testing.assert_array_equal(computed[HEADER:], read[HEADER:])
