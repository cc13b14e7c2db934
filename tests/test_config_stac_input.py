"""``input: {stac: ..., assets: [...], items: [...]}``: validation, one line per problem at its key."""

from __future__ import annotations

import os

import yaml
from test_stac_output import _project
from typer.testing import CliRunner

from geomask.cli import app

runner = CliRunner()


def _validate(pipeline, edit=None):
    if edit is not None:
        data = yaml.safe_load(pipeline.read_text())
        edit(data["input"])
        pipeline.write_text(yaml.safe_dump(data, sort_keys=False))
    result = runner.invoke(app, ["validate", str(pipeline)])
    return result.exit_code, result.output + result.stderr


def test_validate_accepts_stac_input_and_reports_a_missing_document(tmp_path):
    pipeline = _project(tmp_path)
    result = runner.invoke(app, ["validate", str(pipeline)])
    assert result.exit_code == 0, result.output
    os.remove(tmp_path / "src" / "S2" / "item.json")
    result = runner.invoke(app, ["validate", str(pipeline)])
    assert result.exit_code == 2
    assert "input.stac" in result.output + result.stderr
    assert "no such STAC document" in result.output + result.stderr


def test_unknown_key_in_stac_input_is_refused(tmp_path):
    pipeline = _project(tmp_path)
    data = yaml.safe_load(pipeline.read_text())
    data["input"]["asset"] = data["input"].pop("assets")
    pipeline.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["validate", str(pipeline)])
    assert result.exit_code == 2
    assert "input.asset" in result.output + result.stderr


def test_unknown_asset_is_placed_at_input_assets_with_did_you_mean(tmp_path):
    code, out = _validate(_project(tmp_path), lambda i: i.update(assets=["red", "nri"]))
    assert code == 2
    assert ":3:" in out and "input.assets: Item 'S2B_33TWN_20240715_0_L2A'" in out
    assert "has no asset 'nri'. Did you mean 'nir'?" in out and out.count("\n") == 1


def test_unknown_item_id_is_placed_at_input_items(tmp_path):
    code, out = _validate(_project(tmp_path), lambda i: i.update(items=["S2B_33TWN_20240715_0_L2"]))
    assert code == 2
    assert "input.items:" in out and "Did you mean 'S2B_33TWN_20240715_0_L2A'?" in out


def test_s3_document_is_refused_by_the_model(tmp_path):
    code, out = _validate(_project(tmp_path), lambda i: i.update(stac="s3://bucket/item.json"))
    assert code == 2
    assert "input.stac: expected a local STAC file or an http(s):// URL, got 's3://bucket/item.json'" in out


def test_plain_inputs_still_validate(tmp_path):
    pipeline = _project(tmp_path)
    code, out = _validate(pipeline, lambda i: (i.clear(), i.update(paths=1)))
    assert code == 2  # a mapping without stac: is not an input form
    data = yaml.safe_load(pipeline.read_text())
    data["input"] = "src/S2/B04.tif"
    data["output"] = {"path": "out/b04.tif"}
    pipeline.write_text(yaml.safe_dump(data))
    code, out = _validate(pipeline)
    assert code == 0, out


def test_two_items_with_one_id_are_named_not_blamed_on_the_template(tmp_path):
    """A FeatureCollection holding one Item twice: the output paths collide whatever the template,
    so the message names the duplicate id instead of asking for {asset} and {id}."""
    import json

    pipeline = _project(tmp_path)
    item = json.loads((tmp_path / "src" / "S2" / "item.json").read_text())
    for asset in item["assets"].values():
        if asset["href"].startswith("./"):
            asset["href"] = str(tmp_path / "src" / "S2" / asset["href"][2:])
    collection = {"type": "FeatureCollection", "features": [item, item]}
    (tmp_path / "items.json").write_text(json.dumps(collection))
    data = yaml.safe_load(pipeline.read_text())
    data["input"]["stac"] = "items.json"
    data["output"]["path"] = "out/{id}/{asset}.tif"
    pipeline.write_text(yaml.safe_dump(data, sort_keys=False))
    code, out = _validate(pipeline)
    assert code == 2
    assert "two Items of the input have the id 'S2B_33TWN_20240715_0_L2A'" in out
    assert "use {asset}" not in out
    result = runner.invoke(app, ["run", str(pipeline), "-q"])
    assert result.exit_code == 2 and "remove the duplicate Item" in result.stderr
    assert not (tmp_path / "out").exists()
