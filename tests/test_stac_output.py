"""One output Item per input Item (``input: {stac: ...}`` + ``output.stac: true``), validated offline."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pystac
import pytest
import rasterio
import yaml
from _fixtures_cli import DATA
from pystac.validation.stac_validator import JsonSchemaSTACValidator
from typer.testing import CliRunner

import geomask
from geomask.cli import app
from geomask.stac_output import PROCESSING

SCHEMAS = Path(__file__).parent / "data" / "stac-schemas"
EXTENSIONS = {
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json": "projection-v2.0.0.json",
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json": "eo-v1.1.0.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json": "raster-v1.1.0.json",
    "https://stac-extensions.github.io/file/v2.1.0/schema.json": "file-v2.1.0.json",
    PROCESSING: "processing-v1.2.0.json",
}
S2_ID = "S2B_33TWN_20240715_0_L2A"
runner = CliRunner()


class OfflineValidator(JsonSchemaSTACValidator):
    """pystac's validator with the shipped schemas only: fetching any other fails the test."""

    def __init__(self) -> None:
        super().__init__()
        for uri, name in EXTENSIONS.items():
            self.schema_cache[uri] = json.loads((SCHEMAS / name).read_text())

    def _get_schema(self, schema_uri: str) -> dict[str, Any]:
        if schema_uri not in self.schema_cache:
            raise AssertionError(f"the test would fetch {schema_uri}: ship it in {SCHEMAS}")
        return self.schema_cache[schema_uri]


def _project(tmp_path: Path, **input_: Any) -> Path:
    """The sample products copied under ``tmp_path/src``, and a pipeline smoothing red and nir on
    vegetation (SCL class 4) with the outputs in ``tmp_path/out/S2``."""
    for name in ("S2", "LC09"):
        shutil.copytree(DATA / name, tmp_path / "src" / name)
    pipeline = {
        "input": {"stac": "src/S2/item.json", "assets": ["red", "nir"], **input_},
        "kernel": {"name": "box", "size": 3},
        "mask": {"raster": "src/S2/SCL.tif", "values": [4]},
        "output": {"path": "out/{parent}/{stem}.smooth.tif", "stac": True, "format": "COG"},
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(pipeline, sort_keys=False))
    return path


def _multihash(path: Path) -> str:
    return "1220" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_one_item_per_input_item_validates_offline(tmp_path):
    reports = geomask.run_pipeline(_project(tmp_path))
    assert [r.status for r in reports] == ["done", "done"]
    out = tmp_path / "out" / "S2"
    assert sorted(p.name for p in out.iterdir()) == ["B04.smooth.tif", "B08.smooth.tif", f"{S2_ID}.json"]
    item = pystac.Item.from_file(str(out / f"{S2_ID}.json"))
    assert item.validate(validator=OfflineValidator())  # core + projection, eo, raster, file, processing
    assert item.id == S2_ID and PROCESSING in item.stac_extensions
    document = json.loads((out / f"{S2_ID}.json").read_text())
    # filtered assets: the new files, with their own size and checksum
    for key, name in (("B04", "B04.smooth.tif"), ("B08", "B08.smooth.tif")):
        asset = document["assets"][key]
        assert asset["href"] == f"./{name}"
        assert asset["type"] == pystac.MediaType.COG
        assert asset["file:size"] == (out / name).stat().st_size
        assert asset["file:checksum"] == _multihash(out / name)
        assert asset["raster:bands"][0]["scale"] == 0.0001  # the band metadata is kept
        with rasterio.open(out / name) as ds:
            assert (
                asset["proj:shape"] == [ds.height, ds.width]
                and asset["proj:transform"] == list(ds.transform)[:6]
            )
    # every other asset: the original file, relative to the new Item; a URL as it was
    source = json.loads((tmp_path / "src" / "S2" / "item.json").read_text())
    for key in ("B11", "SCL"):
        assert document["assets"][key]["href"] == f"../../src/S2/{key}.tif"
        assert document["assets"][key]["file:checksum"] == source["assets"][key]["file:checksum"]
        assert (out / document["assets"][key]["href"]).resolve() == (tmp_path / "src" / "S2" / f"{key}.tif")
    assert document["assets"]["thumbnail"]["href"] == source["assets"]["thumbnail"]["href"]
    # the source Item, and the provenance
    [link] = document["links"]
    assert link["rel"] == "derived_from" and link["href"] == "../../src/S2/item.json"
    props = document["properties"]
    assert props["processing:software"] == {"geomask": geomask.__version__}
    assert "box" in props["processing:lineage"] and "SCL.tif" in props["processing:lineage"]
    assert props["datetime"] == source["properties"]["datetime"]  # the acquisition, not the processing


def test_items_validation_catches_a_broken_checksum(tmp_path):
    geomask.run_pipeline(_project(tmp_path))
    item = pystac.Item.from_file(str(tmp_path / "out" / "S2" / f"{S2_ID}.json"))
    item.assets["B04"].extra_fields["file:checksum"] = "not hex"
    with pytest.raises(pystac.errors.STACValidationError):
        item.validate(validator=OfflineValidator())


def test_no_output_item_without_stac_key(tmp_path):
    pipeline = _project(tmp_path)
    data = yaml.safe_load(pipeline.read_text())
    data["output"]["stac"] = False
    pipeline.write_text(yaml.safe_dump(data))
    geomask.run_pipeline(pipeline)
    assert sorted(p.name for p in (tmp_path / "out" / "S2").iterdir()) == ["B04.smooth.tif", "B08.smooth.tif"]


def test_unreachable_asset_fails_its_item_only_with_continue_on_error(tmp_path):
    """An ItemCollection of two Items, one with a B04 href that does not exist: one line naming it;
    exit 2 alone, exit 1 with --continue-on-error where the other Item is done and gets its Item."""
    pipeline = _project(tmp_path)
    features = []
    for name in ("S2", "LC09"):
        document = json.loads((tmp_path / "src" / name / "item.json").read_text())
        document["links"] = []
        for asset in document["assets"].values():
            if asset["href"].startswith("./"):
                asset["href"] = f"{name}/{asset['href'][2:]}"
        features.append(document)
    features[0]["assets"]["B04"]["href"] = "S2/missing/B04.tif"
    (tmp_path / "src" / "items.json").write_text(
        json.dumps({"type": "FeatureCollection", "features": features})
    )
    data = yaml.safe_load(pipeline.read_text())
    data["input"] = {"stac": "src/items.json", "assets": ["red"]}
    data["mask"] = {"bbox": [499980, 5196020, 503980, 5200020], "crs": "EPSG:32633"}
    pipeline.write_text(yaml.safe_dump(data))
    missing = tmp_path / "src" / "S2" / "missing" / "B04.tif"
    result = runner.invoke(app, ["run", str(pipeline), "-q"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and str(missing) in result.stderr
    result = runner.invoke(app, ["run", str(pipeline), "-q", "--continue-on-error"])
    assert result.exit_code == 1, result.output
    assert f"failed  {missing}:" in result.stderr
    out = tmp_path / "out"
    assert [p.name for p in out.rglob("*") if p.is_file() and "LC09" not in p.parts] == []  # nothing written
    assert sorted(p.name for p in (out / "LC09").iterdir()) == [
        "LC09_L2SP_190028_20240715_20240716_02_T1.json",
        "SR_B4.smooth.tif",
    ]


def test_rerun_skips_current_outputs_and_keeps_the_item_an_edited_item_redoes(tmp_path):
    pipeline = _project(tmp_path)
    geomask.run_pipeline(pipeline)
    item_path = tmp_path / "out" / "S2" / f"{S2_ID}.json"
    first = json.loads(item_path.read_text())
    reports = geomask.run_pipeline(pipeline)
    assert [r.status for r in reports] == ["skipped", "skipped"]
    again = json.loads(item_path.read_text())
    assert again["assets"]["B04"] == first["assets"]["B04"]  # same files, same checksums
    source = tmp_path / "src" / "S2" / "item.json"
    source.write_text(source.read_text().replace('"platform": "sentinel-2b"', '"platform": "sentinel-2a"'))
    reports = geomask.run_pipeline(pipeline)
    assert [r.status for r in reports] == ["done", "done"]  # the STAC document is a source file
    assert json.loads(item_path.read_text())["properties"]["platform"] == "sentinel-2a"


def test_skipped_rerun_leaves_the_item_untouched_and_overwrite_rewrites_it(tmp_path):
    """A rerun whose outputs are all current keeps the Item byte for byte (its processing:datetime
    stays the time the outputs were made); --overwrite redoes them and rewrites it; an Item that is
    not the one the run would write (edited by hand) is rewritten even when the outputs are current."""
    pipeline = _project(tmp_path)
    geomask.run_pipeline(pipeline)
    item_path = tmp_path / "out" / "S2" / f"{S2_ID}.json"
    first, first_ns = item_path.read_bytes(), item_path.stat().st_mtime_ns
    reports = geomask.run_pipeline(pipeline)
    assert [r.status for r in reports] == ["skipped", "skipped"]
    assert item_path.read_bytes() == first
    assert item_path.stat().st_mtime_ns == first_ns
    result = runner.invoke(app, ["run", str(pipeline), "-q", "--overwrite"])
    assert result.exit_code == 0, result.output
    redone = json.loads(item_path.read_text())
    stamp = json.loads(first)["properties"]["processing:datetime"]
    assert redone["properties"]["processing:datetime"] != stamp
    edited = json.loads(item_path.read_text())
    edited["properties"]["platform"] = "hand-edited"
    item_path.write_text(json.dumps(edited))
    reports = geomask.run_pipeline(pipeline)
    assert [r.status for r in reports] == ["skipped", "skipped"]
    assert json.loads(item_path.read_text())["properties"]["platform"] == "sentinel-2b"


def test_output_item_never_replaces_the_source_item(tmp_path):
    """Items are often stored as ``ID.json``: outputs written beside them would put the output Item on
    the source Item. Refused by run (any --overwrite), --report and validate, the source unchanged."""
    pipeline = _project(tmp_path)
    source = tmp_path / "src" / "S2" / f"{S2_ID}.json"
    (tmp_path / "src" / "S2" / "item.json").rename(source)
    data = yaml.safe_load(pipeline.read_text())
    data["input"]["stac"] = f"src/S2/{S2_ID}.json"
    data["output"]["path"] = "src/S2/{stem}.smooth.tif"
    pipeline.write_text(yaml.safe_dump(data, sort_keys=False))
    before = source.read_bytes()
    for args in (["run", str(pipeline), "--overwrite"], ["validate", str(pipeline)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert f"output STAC item {source}" in result.output and "never replaces" in result.output
    data["output"]["path"] = "out/{stem}.smooth.tif"  # a report on the output Item of the run
    pipeline.write_text(yaml.safe_dump(data, sort_keys=False))
    report = tmp_path / "out" / f"{S2_ID}.json"
    result = runner.invoke(app, ["run", str(pipeline), "--report", str(report)])
    assert result.exit_code == 2 and "is a STAC item of this run" in result.output, result.output
    assert source.read_bytes() == before
    assert not list(tmp_path.glob("src/S2/*.smooth.tif")) and not report.exists()


def test_output_item_needs_overwrite_to_replace_a_file_geomask_did_not_write(tmp_path):
    """A JSON at the output Item's path that geomask did not write was replaced silently (exit 0)."""
    pipeline = _project(tmp_path)
    foreign = tmp_path / "out" / "S2" / f"{S2_ID}.json"
    foreign.parent.mkdir(parents=True)
    foreign.write_text('{"mine": true}\n')
    result = runner.invoke(app, ["run", str(pipeline)])
    assert result.exit_code == 2, result.output
    assert "a file that geomask did not write is there; pass --overwrite" in result.output
    assert foreign.read_text() == '{"mine": true}\n' and not list(foreign.parent.glob("*.tif"))
    assert runner.invoke(app, ["run", str(pipeline), "--overwrite"]).exit_code == 0
    assert json.loads(foreign.read_text())["id"] == S2_ID
    assert runner.invoke(app, ["run", str(pipeline)]).exit_code == 0  # its own Item: no --overwrite needed
