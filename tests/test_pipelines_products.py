"""The product pipelines of pipelines/ (STAC input): each validates, runs on data/, equals an oracle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from _fixtures_cli import DATA, PIPELINES
from rasterio.windows import Window
from test_engine import assert_bits_equal

from geomask import kernels
from geomask.config import load_pipeline
from geomask.convolve import masked_convolve
from geomask.grid import Grid
from geomask.masks import MaskContext, RasterSource
from geomask.pipeline import run_pipeline
from geomask.spec import RunOptions

S2 = DATA / "S2"
S2_ID = "S2B_33TWN_20240715_0_L2A"


def test_s2_ndvi_smooth_equals_the_per_band_oracle(tmp_path: Path) -> None:
    model = load_pipeline(PIPELINES / "s2_ndvi_smooth.yaml")
    output = model.output.model_copy(update={"path": tmp_path / "{id}" / "{asset}.ndvi_smooth.tif"})
    model = model.model_copy(update={"output": output})
    reports = run_pipeline(model, options=RunOptions(window_size=128))
    assert [r.status for r in reports] == ["done", "done"]
    with rasterio.open(S2 / "B04.tif") as red_ds, rasterio.open(S2 / "B08.tif") as nir_ds:
        red, nir = red_ds.read(1), nir_ds.read(1)
        grid = Grid(red_ds.crs, red_ds.transform, red_ds.height, red_ds.width)
    r, n = red.astype(np.float64), nir.astype(np.float64)
    with np.errstate(all="ignore"):
        ndvi = (n - r) / (n + r)
    vegetated = (red != 0) & (nir != 0) & np.isfinite(ndvi) & (ndvi > 0.3)
    # SCL (20 m) at the centres of the 10 m pixels, nearest: cloud shadow, clouds and cirrus left out
    cloudy = RasterSource(S2 / "SCL.tif", values=[3, 8, 9, 10]).bind(
        MaskContext(grid, str(S2 / "B04.tif"), 0)
    )
    mask = vegetated & ~cloudy.render(Window(0, 0, grid.width, grid.height))
    assert 0.3 * mask.size < mask.sum() < 0.8 * mask.size
    kernel = kernels.get("gaussian", sigma=2.0)  # 20 m on the 10 m grid
    for key, band in (("B04", red), ("B08", nir)):
        expected = masked_convolve(band[None], kernel, mask, nodata=0, support=mask)
        with rasterio.open(tmp_path / S2_ID / f"{key}.ndvi_smooth.tif") as ds:
            assert_bits_equal(ds.read(), expected)
    assert (tmp_path / S2_ID / f"{S2_ID}.json").is_file()


def test_s2_ndvi_smooth_stac_input_part_validates() -> None:
    """What this branch can check of the pipeline: its input section reads the Item it names."""
    from geomask.config.stac_input import StacInput

    model = StacInput.model_validate(
        {"stac": "../data/S2/item.json", "assets": ["red", "nir"]}, context={"base_dir": PIPELINES}
    )
    [product] = model.products()
    assert product.id == S2_ID and list(product.bands) == ["B04", "B08"]
    assert "SCL" in product.assets  # the pipeline's cloud mask
    assert "stac: ../data/S2/item.json" in (PIPELINES / "s2_ndvi_smooth.yaml").read_text()
