"""The sample products of data/S2 and data/LC09: made by data/make_products.py, deterministically."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pytest
import rasterio
from _fixtures_cli import DATA
from test_stac_output import OfflineValidator

PRODUCTS = {"S2": ["B04", "B08", "B11", "SCL"], "LC09": ["SR_B4", "SR_B5", "QA_PIXEL"]}


def _script() -> Any:
    spec = importlib.util.spec_from_file_location("make_products", DATA / "make_products.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _pixels(path: Path) -> str:
    with rasterio.open(path) as ds:
        return hashlib.sha256(ds.read().tobytes() + repr(ds.profile).encode()).hexdigest()


def _without_file_fields(document: dict[str, Any]) -> dict[str, Any]:
    for asset in document["assets"].values():
        asset.pop("file:size", None)
        asset.pop("file:checksum", None)
    return document


def test_script_is_deterministic(tmp_path):
    _script().main(tmp_path)
    for folder, keys in PRODUCTS.items():
        for key in keys:
            assert _pixels(tmp_path / folder / f"{key}.tif") == _pixels(DATA / folder / f"{key}.tif"), key
        made = json.loads((tmp_path / folder / "item.json").read_text())
        shipped = json.loads((DATA / folder / "item.json").read_text())
        assert _without_file_fields(made) == _without_file_fields(shipped)  # sizes: GDAL may differ


@pytest.mark.parametrize("folder", sorted(PRODUCTS))
def test_shipped_items_validate_and_match_their_files(folder):
    item = pystac.Item.from_file(str(DATA / folder / "item.json"))
    assert item.validate(validator=OfflineValidator())
    for key in PRODUCTS[folder]:
        asset = item.assets[key]
        path = DATA / folder / f"{key}.tif"
        data = path.read_bytes()
        assert asset.extra_fields["file:size"] == len(data)
        assert asset.extra_fields["file:checksum"] == "1220" + hashlib.sha256(data).hexdigest()
        with rasterio.open(path) as ds:
            assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            assert asset.extra_fields["proj:shape"] == [ds.height, ds.width]
            assert asset.extra_fields["proj:transform"] == list(ds.transform)[:6]
            assert ds.crs.to_epsg() == 32633 and ds.block_shapes[0] == (128, 128)
    total = sum(p.stat().st_size for p in (DATA / folder).iterdir())
    assert total < 1_500_000


def test_scl_has_every_class_and_qa_pixel_the_landsat_bits():
    with rasterio.open(DATA / "S2" / "SCL.tif") as ds:
        assert sorted(np.unique(ds.read(1)).tolist()) == list(range(12))
    with rasterio.open(DATA / "LC09" / "QA_PIXEL.tif") as ds:
        qa = ds.read(1)
    fill = (qa & 1) == 1
    clear, water, cloud = (qa >> 6) & 1, (qa >> 7) & 1, (qa >> 3) & 1
    assert fill.any() and (clear == 1).any() and (water == 1).any() and (cloud == 1).any()
    assert not (cloud & clear).any()  # a cloud is never clear
    assert (((qa >> 8) & 3)[cloud == 1] == 3).all()  # high cloud confidence where the cloud bit is set
    assert (qa[fill] == 1).all()  # fill has no other flag


def test_class_counts_in_the_data_readme():
    """data/README.md lists the pixels of each SCL class and QA_PIXEL value."""
    rows = [
        line.split("|") for line in (DATA / "README.md").read_text().splitlines() if line.startswith("| ")
    ]
    with rasterio.open(DATA / "S2" / "SCL.tif") as ds:
        scl = ds.read(1)
    with rasterio.open(DATA / "LC09" / "QA_PIXEL.tif") as ds:
        qa = ds.read(1)
    scl_rows = {r[1].split()[0]: r[2].strip() for r in rows if len(r) == 8 and r[1].split()[0].isdigit()}
    qa_rows = {r[4].strip(): r[6].strip() for r in rows if len(r) == 8 and r[4].strip().isdigit()}
    assert scl_rows == {str(v): f"{int((scl == v).sum()):,}" for v in range(12)}
    assert qa_rows == {str(int(v)): f"{int((qa == v).sum()):,}" for v in np.unique(qa)}
