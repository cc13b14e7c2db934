"""geomask.masks.assets: product names in masks, resolved per product and rendered per band grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from _fixtures_masks import WINDOW_SIZES, full, tiled
from test_product_bands import CLOUDS, NDVI, make_product, oracle_mask

from geomask.errors import ConfigError
from geomask.grid import Grid
from geomask.kernels import get
from geomask.masks import AllSource, ExpressionSource, GrowSource, MaskContext, NotSource, RasterSource
from geomask.masks.assets import AssetSource, NamedExpressionSource, for_band
from geomask.product import Asset, Product
from geomask.spec import GroupStep, Step


def _product(files: dict[str, Path]) -> Product:
    bands = {name: Asset(str(path)) for name, path in files.items()}
    return Product("S2", bands, bands)


def _grid(path: Path) -> Grid:
    with rasterio.open(path) as ds:
        return Grid(ds.crs, ds.transform, ds.height, ds.width)


@pytest.mark.parametrize("band", ["red", "swir16"])
@pytest.mark.parametrize("size", WINDOW_SIZES)
def test_any_tiling_equals_the_whole_array(tmp_path: Path, band: str, size: tuple[int, int]) -> None:
    files = make_product(tmp_path / "S2")
    source = AllSource((ExpressionSource(NDVI), NotSource(AssetSource("SCL", values=CLOUDS))))
    [resolved] = for_band([source], _product(files))
    grid = _grid(files[band])
    nodata = 0.0 if band == "red" else None
    bound = resolved.bind(MaskContext(grid, str(files[band]), nodata))
    whole = bound.render(full(grid))
    assert np.array_equal(whole, oracle_mask(files, grid.transform, grid.crs, grid.shape))
    assert np.array_equal(tiled(bound, grid.shape, size, phase=(3, 5)), whole)


def test_for_band_rewrites_only_product_sources(tmp_path: Path) -> None:
    files = make_product(tmp_path / "S2")
    product = _product(files)
    plain = RasterSource(files["SCL"], values=[8])
    kernel = get("gaussian", sigma=1.0)
    steps = [
        Step(kernel, mask=plain),
        Step(kernel, mask=GrowSource(AssetSource("SCL", values=[9]), 2), support=ExpressionSource("nir > 0")),
        GroupStep(((AssetSource("SCL", values=[8]), kernel), (plain, kernel))),
    ]
    out = for_band(steps, product)
    assert out[0] is steps[0]  # nothing to resolve: the same object
    grow = out[1].mask
    assert isinstance(grow, GrowSource) and grow.source == RasterSource(str(files["SCL"]), values=[9])
    assert isinstance(out[1].support, NamedExpressionSource)
    assert [layer.name for layer in out[1].support.layers] == ["nir"]
    assert (
        out[2].regions[0][0] == RasterSource(str(files["SCL"]), values=[8]) and out[2].regions[1][0] is plain
    )


def test_unknown_names_and_single_files(tmp_path: Path) -> None:
    files = make_product(tmp_path / "S2")
    product = _product(files)
    with pytest.raises(ConfigError, match=r"has no band or asset 'b1' \(it has red, nir, swir16, SCL\)"):
        for_band([Step(get("gaussian", sigma=1.0), mask=ExpressionSource("b1 > 0"))], product)
    source = AssetSource("SCL", values=[8])
    assert source.describe() == "raster(asset SCL, values=[8])"
    with pytest.raises(
        ConfigError, match=r"names an asset of a product, but the input is a single file"
    ) as e:
        source.bind(MaskContext(_grid(files["red"]), str(files["red"])))
    assert e.value.exit_code == 2
