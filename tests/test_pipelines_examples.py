"""The example pipelines in pipelines/: each validates, runs on data/, and equals a whole-array oracle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from _fixtures_cli import DATA, PIPELINES, shipped_pipelines
from numpy.typing import NDArray
from rasterio.windows import Window
from scipy import ndimage
from test_engine import assert_bits_equal
from typer.testing import CliRunner

from geomask import kernels
from geomask.cli import app
from geomask.config import Pipeline, load_pipeline, pipeline_problems
from geomask.convolve import masked_convolve
from geomask.grid import Grid
from geomask.masks import KMeansSource, MaskContext, RasterSource
from geomask.masks.algebra import disk
from geomask.pipeline import run_pipeline
from geomask.spec import RunOptions

SCENE = DATA / "RGB.byte.tif"
EXAMPLES = shipped_pipelines()


def _redirected(path: Path, folder: Path) -> Pipeline:
    model = load_pipeline(path)
    output = model.output.model_copy(update={"path": folder / Path(model.output.path).name})
    return model.model_copy(update={"output": output})


def _scene() -> tuple[NDArray[np.uint8], Grid, float]:
    with rasterio.open(SCENE) as ds:
        return ds.read(), Grid(ds.crs, ds.transform, ds.height, ds.width), ds.nodata


def _run(name: str, folder: Path, window_size: int = 256) -> NDArray[Any]:
    model = _redirected(PIPELINES / name, folder)
    [report] = run_pipeline(model, options=RunOptions(window_size=window_size, align_windows=False))
    assert report.status == "done" and report.pixels_changed > 0
    with rasterio.open(model.output.path) as ds:
        return ds.read()


def test_at_least_three_documented_examples() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"roi_denoise.yaml", "class_sharpen.yaml", "index_smooth.yaml"} <= names
    for path in EXAMPLES:
        text = path.read_text()
        assert text.startswith("#") and "geomask run pipelines/" in text, path.name
        assert pipeline_problems(path) == [], path.name
        assert runner.invoke(app, ["validate", str(path)]).exit_code == 0


runner = CliRunner()


@pytest.mark.slow
def test_class_sharpen_equals_the_per_class_oracle(tmp_path: Path) -> None:
    data, grid, nodata = _scene()
    context = MaskContext(grid, str(SCENE), nodata)
    expected = data.copy()
    for value, amount in ((3, 1.0), (4, 0.4)):
        source = RasterSource(DATA / "landcover.tif", values=[value])
        region = source.bind(context).render(Window(0, 0, grid.width, grid.height))
        filtered = masked_convolve(
            data, kernels.get("sharpen", amount=amount), region, mode="nearest", nodata=nodata, support=region
        )
        expected[:, region] = filtered[:, region]
    assert_bits_equal(_run("class_sharpen.yaml", tmp_path, 200), expected)


def test_index_smooth_equals_two_whole_array_steps(tmp_path: Path) -> None:
    data, _, nodata = _scene()
    red, green = data[0].astype(np.float64), data[1].astype(np.float64)
    valid = (data[:2] != nodata).all(axis=0)  # the bands the expression reads
    with np.errstate(all="ignore"):
        index = (green - red) / (green + red)
    vegetated = valid & np.isfinite(index) & (index > 0.1)
    first = masked_convolve(data, kernels.get("median", size=3), vegetated, nodata=nodata, support=vegetated)
    # step 2's expression reads the scene as stored (masks never see earlier steps' results)
    edge = ndimage.binary_dilation(vegetated, structure=disk(2)) & ~vegetated
    expected = masked_convolve(first, kernels.get("gaussian", sigma=0.8), edge, nodata=nodata)
    assert_bits_equal(_run("index_smooth.yaml", tmp_path, 173), expected)


@pytest.mark.slow
def test_kmeans_smooth_equals_the_oracle(tmp_path: Path) -> None:
    data, grid, nodata = _scene()
    source = KMeansSource(4, [1], bands=[1, 2, 3], sample=20000, seed=0)
    mask = source.bind(MaskContext(grid, str(SCENE), nodata)).render(Window(0, 0, grid.width, grid.height))
    assert 0.1 * mask.size < mask.sum() < 0.6 * mask.size
    expected = masked_convolve(data, kernels.get("gaussian", sigma=1.5), mask, nodata=nodata, support=mask)
    assert_bits_equal(_run("kmeans_smooth.yaml", tmp_path, 300), expected)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_write_their_mask(path: Path, tmp_path: Path) -> None:
    # {stem}: a product pipeline has one scene per band, each with its own mask
    result = runner.invoke(app, ["mask", str(path), "-o", str(tmp_path / "{stem}.mask.tif")])
    assert result.exit_code == 0, result.output
    masks = sorted(tmp_path.glob("*.mask.tif"))
    assert masks
    for out in masks:
        with rasterio.open(out) as ds:
            assert ds.read(1).any()


def test_landcover_counts_in_the_data_readme() -> None:
    """data/README.md lists how many scene pixels each toy class selects."""
    _, grid, nodata = _scene()
    context = MaskContext(grid, str(SCENE), nodata)
    text = (DATA / "README.md").read_text()
    for value, name in ((1, "dark"), (2, "green"), (3, "bright"), (4, "other")):
        mask = RasterSource(DATA / "landcover.tif", values=[value]).bind(context)
        count = int(mask.render(Window(0, 0, grid.width, grid.height)).sum())
        assert f"| {value} {name} | {count:,} |" in text
