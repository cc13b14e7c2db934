"""STAC Items as input: read_products on the sample products of data/ (pystac), selections, bad input."""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pystac
import pytest
from _fixtures_cli import DATA

from geomask.errors import ConfigError, InputError
from geomask.product import Product
from geomask.stac_input import read_item, read_products

S2 = DATA / "S2" / "item.json"
LC09 = DATA / "LC09" / "item.json"


def _dict(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _absolute(item: dict[str, Any], folder: Path) -> dict[str, Any]:
    """A copy of ``item`` with its relative asset hrefs made absolute against ``folder``."""
    out = copy.deepcopy(item)
    for asset in out["assets"].values():
        if asset["href"].startswith("./"):
            asset["href"] = str(folder / asset["href"][2:])
    return out


def _write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document, indent=2))
    return path


def test_sentinel2_item_default_is_the_spectral_bands_with_their_metadata():
    [product] = read_products(S2)
    assert isinstance(product, Product)
    assert product.id == "S2B_33TWN_20240715_0_L2A"
    assert list(product.bands) == ["B04", "B08", "B11"]  # SCL (no eo:bands) is not filtered
    assert sorted(product.assets) == ["B04", "B08", "B11", "SCL"]  # the thumbnail is not a GeoTIFF
    assert product.item == str(S2.resolve())
    red = product.bands["B04"]
    assert red.href == str(DATA / "S2" / "B04.tif") and Path(red.href).is_file()
    assert (red.nodata, red.scale, red.offset, red.common_name) == (0, 0.0001, -0.1, "red")
    assert product.bands["B11"].common_name == "swir16"
    scl = product.assets["SCL"]
    assert (scl.nodata, scl.scale, scl.common_name) == (0, None, None)
    assert product.asset("nir") is product.assets["B08"]


def test_landsat_qa_layer_is_an_asset_but_not_a_band():
    [product] = read_products(LC09)
    assert list(product.bands) == ["SR_B4", "SR_B5"]
    qa = product.assets["QA_PIXEL"]
    assert qa.nodata == 1 and qa.scale is None
    assert product.bands["SR_B5"].common_name == "nir08"
    assert product.bands["SR_B4"].scale == pytest.approx(0.0000275)
    assert product.bands["SR_B4"].offset == pytest.approx(-0.2)


def test_select_by_common_name_or_key_in_the_order_given():
    [product] = read_products(S2, assets=["nir", "red", "SCL", "B04"])
    assert list(product.bands) == ["B08", "B04", "SCL"]  # keyed by asset key, a repeat counts once


def test_unknown_asset_is_one_line_with_did_you_mean():
    with pytest.raises(ConfigError) as info:
        read_products(S2, assets=["B4"])
    message = str(info.value)
    assert "has no asset 'B4'. Did you mean 'B04'?" in message and "\n" not in message
    assert "B04 (red), B08 (nir), B11 (swir16), SCL" in message
    assert info.value.exit_code == 2
    with pytest.raises(ConfigError, match="Did you mean 'swir16'"):
        read_products(S2, assets=["swir1"])


def test_non_geotiff_asset_named_is_refused():
    with pytest.raises(ConfigError, match=r"asset 'thumbnail' .* is not a GeoTIFF"):
        read_products(S2, assets=["thumbnail"])


def test_item_collection_and_items_filter(tmp_path):
    features = [_absolute(_dict(S2), DATA / "S2"), _absolute(_dict(LC09), DATA / "LC09")]
    collection = _write(tmp_path / "items.json", {"type": "FeatureCollection", "features": features})
    products = read_products(collection)
    assert [p.id for p in products] == [
        "S2B_33TWN_20240715_0_L2A",
        "LC09_L2SP_190028_20240715_20240716_02_T1",
    ]
    assert all(p.item == str(collection) for p in products)
    [landsat] = read_products(collection, items=["LC09_L2SP_190028_20240715_20240716_02_T1"])
    assert list(landsat.bands) == ["SR_B4", "SR_B5"]
    with pytest.raises(
        ConfigError,
        match=r"'S2B_33TWN_20240715_0_L2B' \(2 Items in the document\)\. Did you mean '[^']+_L2A'",
    ):
        read_products(collection, items=["S2B_33TWN_20240715_0_L2B"])


def test_catalog_is_walked_and_relative_hrefs_resolve_against_each_item(tmp_path):
    for name in ("S2", "LC09"):
        shutil.copytree(DATA / name, tmp_path / "src" / name)
    catalog = pystac.Catalog(id="products", description="the sample products")
    for name in ("S2", "LC09"):
        catalog.add_item(pystac.Item.from_file(str(tmp_path / "src" / name / "item.json")))
    catalog.normalize_and_save(str(tmp_path / "catalog"), catalog_type=pystac.CatalogType.SELF_CONTAINED)
    products = read_products(tmp_path / "catalog" / "catalog.json")
    assert sorted(p.id for p in products) == sorted(
        ["S2B_33TWN_20240715_0_L2A", "LC09_L2SP_190028_20240715_20240716_02_T1"]
    )
    for product in products:
        item_folder = Path(product.item).parent
        assert item_folder.parent == tmp_path / "catalog"
        for asset in product.assets.values():
            assert Path(asset.href).is_file(), asset.href  # saved relative to the new item file


def test_stac_1_1_bands_give_the_same_metadata(tmp_path):
    item = _absolute(_dict(S2), DATA / "S2")
    for asset in item["assets"].values():
        eo = (asset.pop("eo:bands", None) or [{}])[0]
        raster = (asset.pop("raster:bands", None) or [{}])[0]
        if eo or raster:
            band = {"name": eo.get("name", "b"), "nodata": raster.get("nodata")}
            if "common_name" in eo:
                band["eo:common_name"] = eo["common_name"]
            if "scale" in raster:
                band["raster:scale"], band["raster:offset"] = raster["scale"], raster["offset"]
            asset["bands"] = [band]
    [product] = read_products(_write(tmp_path / "item.json", item), assets=["red", "SCL"])
    red = product.bands["B04"]
    assert (red.nodata, red.scale, red.offset, red.common_name) == (0, 0.0001, -0.1, "red")
    assert product.bands["SCL"].nodata == 0


def test_item_without_geotiff_asset(tmp_path):
    item = _dict(S2)
    item["assets"] = {"thumbnail": item["assets"]["thumbnail"]}
    with pytest.raises(InputError, match=r"has no GeoTIFF/COG asset \(assets: thumbnail\)") as info:
        read_products(_write(tmp_path / "item.json", item))
    assert info.value.exit_code == 2


def test_malformed_json_names_file_line_and_column(tmp_path):
    text = S2.read_text().replace('"id": "S2B', '"id" "S2B', 1)
    path = tmp_path / "item.json"
    path.write_text(text)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if '"id" "S2B' in row)
    expected = re.escape(f"{path}:{line}:") + r"\d+: not valid JSON \(Expecting ':' delimiter\)$"
    with pytest.raises(InputError, match="^" + expected):
        read_products(path)


@pytest.mark.parametrize(
    ("edit", "where", "expected"),
    [
        (
            lambda d: d["assets"]["B04"]["raster:bands"][0].update(scale="0.0001"),
            "assets.B04.raster:bands[0].scale",
            "a number",
        ),
        (lambda d: d["assets"]["B08"].update(href=7), "assets.B08.href", "a non-empty string"),
        (lambda d: d.update(assets=[]), "assets", "an object of assets"),
        (
            lambda d: d["assets"]["B11"].update({"eo:bands": {"common_name": "swir16"}}),
            "assets.B11.eo:bands",
            "a list of objects",
        ),
    ],
)
def test_wrong_field_is_named_by_its_json_path(tmp_path, edit, where, expected):
    item = _dict(S2)
    edit(item)
    path = _write(tmp_path / "item.json", item)
    with pytest.raises(InputError, match="^" + re.escape(f"{path}: {where}: expected {expected}, got ")):
        read_products(path)


def test_missing_document_and_s3_document(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_products(tmp_path / "nope.json")
    with pytest.raises(ConfigError, match="local files or http"):
        read_products("s3://bucket/item.json")


def test_not_stac(tmp_path):
    with pytest.raises(InputError, match=r"type: expected Feature .* got Topology"):
        read_products(_write(tmp_path / "x.json", {"type": "Topology"}))


def test_read_item_finds_the_source_item():
    item, href = read_item(S2, "S2B_33TWN_20240715_0_L2A")
    assert isinstance(item, pystac.Item) and href == str(S2.resolve())
    with pytest.raises(InputError):
        read_item(S2, "other")


@pytest.fixture
def http_root(tmp_path):
    """A local HTTP server (127.0.0.1, a free port) serving ``tmp_path``; yields its base URL."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_item_over_http_resolves_relative_hrefs_to_urls(tmp_path, http_root):
    shutil.copytree(DATA / "S2", tmp_path / "S2")
    [product] = read_products(f"{http_root}/S2/item.json", assets=["red"])
    assert product.bands["B04"].href == f"{http_root}/S2/B04.tif"  # read by GDAL (/vsicurl/)
    assert product.assets["SCL"].href == f"{http_root}/S2/SCL.tif"
    assert product.item == f"{http_root}/S2/item.json"


def test_unreachable_document_and_catalog_child_are_one_line(tmp_path, http_root):
    with pytest.raises(
        InputError, match=r"^http://127\.0\.0\.1:\d+/nope/item\.json: cannot be read \("
    ) as info:
        read_products(f"{http_root}/nope/item.json")
    assert "\n" not in str(info.value)
    catalog = {
        "type": "Catalog",
        "stac_version": "1.1.0",
        "id": "c",
        "description": "a catalog with a child that is not there",
        "links": [{"rel": "item", "href": "./missing/item.json", "type": "application/json"}],
    }
    path = _write(tmp_path / "catalog.json", catalog)
    with pytest.raises(InputError, match="does not resolve to a STAC object") as info:
        read_products(path)
    assert "missing/item.json" in str(info.value) and "\n" not in str(info.value)
