"""STAC Items beside outputs: projection extension, output asset, mask footprint; validated offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pystac
import pytest
import rasterio
import shapely
from _fixtures_cli import ROI_PIXELS, SCENE_TRANSFORM, make_project, write_yaml
from pystac.validation.stac_validator import JsonSchemaSTACValidator
from rasterio.warp import transform_geom

import geomask

SCHEMAS = Path(__file__).parent / "data" / "stac-schemas"
PROJECTION = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"


class OfflineValidator(JsonSchemaSTACValidator):
    """pystac's JSON-schema validator with the shipped schemas only: fetching any other fails."""

    def __init__(self) -> None:
        super().__init__()
        self.schema_cache[PROJECTION] = json.loads((SCHEMAS / "projection-v2.0.0.json").read_text())

    def _get_schema(self, schema_uri: str) -> dict[str, Any]:
        if schema_uri not in self.schema_cache:
            raise AssertionError(f"the test would fetch {schema_uri}: ship it in {SCHEMAS}")
        return self.schema_cache[schema_uri]


def _run(tmp_path: Path, **output: Any) -> Path:
    pipeline = make_project(tmp_path, output={"path": "out/scene.denoised.tif", "stac": True, **output})
    geomask.run_pipeline(pipeline)
    return tmp_path / "out" / "scene.denoised.json"


def test_item_validates_offline_with_projection_and_asset(tmp_path):
    path = _run(tmp_path, format="COG")
    item = pystac.Item.from_file(str(path))
    assert item.validate(validator=OfflineValidator())  # core item + projection extension
    assert PROJECTION in item.stac_extensions
    props = item.properties
    assert props["proj:code"] == "EPSG:32618"
    with rasterio.open(tmp_path / "out" / "scene.denoised.tif") as ds:
        assert props["proj:shape"] == [ds.height, ds.width]
        assert props["proj:transform"] == list(ds.transform)[:6]
    asset = item.assets["data"]
    assert asset.href.endswith("scene.denoised.tif") and asset.media_type == pystac.MediaType.COG
    assert (path.parent / Path(asset.href).name).exists()


def test_item_geometry_is_the_mask_footprint_in_wgs84(tmp_path):
    item = pystac.Item.from_file(str(_run(tmp_path)))
    col0, row0, col1, row1 = ROI_PIXELS
    x0, y0 = SCENE_TRANSFORM * (col0, row0)
    x1, y1 = SCENE_TRANSFORM * (col1, row1)
    roi = shapely.geometry.shape(
        transform_geom("EPSG:32618", "EPSG:4326", shapely.geometry.mapping(shapely.box(x0, y1, x1, y0)))
    )
    footprint = shapely.geometry.shape(item.geometry)
    # the selected pixels exactly (the scene is small: one coarse cell per pixel)
    assert footprint.symmetric_difference(roi).area < 1e-3 * roi.area
    assert item.bbox == pytest.approx(list(footprint.bounds))


def test_invalid_item_is_caught_by_the_shipped_schema(tmp_path):
    item = pystac.Item.from_file(str(_run(tmp_path)))
    item.properties["proj:shape"] = ["48", 64]
    with pytest.raises(pystac.errors.STACValidationError):
        item.validate(validator=OfflineValidator())


def test_no_item_without_stac_key(tmp_path):
    pipeline = make_project(tmp_path)
    write_yaml(pipeline, pipeline.read_text())
    geomask.run_pipeline(pipeline)
    assert not (tmp_path / "out" / "scene.denoised.json").exists()
