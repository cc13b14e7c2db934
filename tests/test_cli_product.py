"""``geomask run`` and ``geomask validate`` on a product input (``input: {bands: ...}``): bad input.

Each problem is one line on stderr, exit 2, and nothing is written (a run checks every band file and
every name before the first output).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_product_bands import make_product, write_pipeline
from typer.testing import CliRunner

from geomask.cli import app

runner = CliRunner()


def _cli(*args: str) -> tuple[int, str]:
    """Exit code and messages (stderr for run, stdout for validate's list of problems)."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stderr if args[0] == "run" else result.stdout


def _bad(tmp_path: Path, case: str) -> Path:
    files = make_product(tmp_path / "S2")
    keys: dict[str, Any] = {}
    if case == "not a GeoTIFF":
        files["swir16"].write_text("plain text")
    elif case == "missing band file":
        files["swir16"].unlink()
    elif case == "unknown name in an expression":
        keys["mask"] = {"expression": "(nir - rde) / (nir + red) > 0.3"}
    elif case == "unknown name in bands":
        keys["bands"] = ["red", "swir61"]
    elif case == "missing asset":
        keys["mask"] = {"raster": {"asset": "CLOUDS"}, "values": [8]}
    elif case == "numbered bands":
        keys["bands"] = [1, 2]
    return write_pipeline(tmp_path, files, **keys)


CASES = {
    "not a GeoTIFF": "B11.tif",
    "missing band file": "B11.tif",
    "unknown name in an expression": "Did you mean 'red'?",
    "unknown name in bands": "Did you mean 'swir16'?",
    "missing asset": "no band or asset 'CLOUDS'",
    "numbered bands": "the input names its bands: use red, nir, swir16, SCL",
}


@pytest.mark.parametrize("case", list(CASES))
def test_run_refuses_in_one_line_and_writes_nothing(tmp_path: Path, case: str) -> None:
    pipeline = _bad(tmp_path, case)
    code, stderr = _cli("run", str(pipeline), "--quiet")
    assert code == 2, (case, stderr)
    assert stderr.count("\n") == 1 and CASES[case] in stderr, (case, stderr)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", list(CASES))
def test_validate_reports_it(tmp_path: Path, case: str) -> None:
    pipeline = _bad(tmp_path, case)
    code, stderr = _cli("validate", str(pipeline))
    assert code == 2, (case, stderr)
    assert CASES[case] in stderr, (case, stderr)


def test_names_need_a_product_input(tmp_path: Path) -> None:
    files = make_product(tmp_path / "S2")
    pipeline = write_pipeline(tmp_path, files, input=str(files["red"].relative_to(tmp_path)), bands=["red"])
    code, stderr = _cli("validate", str(pipeline))
    assert code == 2 and "band names (red) need a product input" in stderr, stderr
    red = str(files["red"].relative_to(tmp_path))
    pipeline = write_pipeline(tmp_path, files, input=red, bands=None)
    code, stderr = _cli("run", str(pipeline), "--quiet")
    assert code == 2 and stderr.count("\n") == 1 and "{asset} is only known for a product input" in stderr
    pipeline = write_pipeline(tmp_path, files, input=red, bands=None, output={"path": "out/{stem}.tif"})
    code, stderr = _cli("run", str(pipeline), "--quiet")
    assert code == 2 and stderr.count("\n") == 1 and "is a single file whose bands are b1..b1" in stderr, (
        stderr
    )
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]  # at most an empty folder


def test_run_and_report_per_band_output(tmp_path: Path) -> None:
    files = make_product(tmp_path / "S2")
    pipeline = write_pipeline(tmp_path, files)
    report = tmp_path / "report.json"
    code, stderr = _cli("run", str(pipeline), "--report", str(report), "--quiet")
    assert code == 0, stderr
    scenes = json.loads(report.read_text())["scenes"]
    assert [Path(s["output"]).name for s in scenes] == ["red.tif", "nir.tif", "swir16.tif"]
    assert [Path(s["input"]).name for s in scenes] == ["B04.tif", "B08.tif", "B11.tif"]
    assert all(s["status"] == "done" for s in scenes)
    code, _ = _cli("validate", str(pipeline))
    assert code == 0


def test_mask_and_preview_of_a_product(tmp_path: Path) -> None:
    """`geomask mask` writes one mask per band on its grid; `geomask preview` shows the first band."""
    import numpy as np
    import rasterio
    from test_product_bands import oracle_mask

    files = make_product(tmp_path / "S2")
    pipeline = write_pipeline(tmp_path, files)
    code, stderr = _cli("mask", str(pipeline), "-o", str(tmp_path / "masks" / "{id}_{asset}.tif"))
    assert code == 0, stderr
    for band in ("red", "swir16"):
        with rasterio.open(files[band]) as ds:
            expected = oracle_mask(files, ds.transform, ds.crs, ds.shape)
        with rasterio.open(tmp_path / "masks" / f"S2_{band}.tif") as ds:
            assert np.array_equal(ds.read(1).astype(bool), expected), band
    code, stderr = _cli("preview", str(pipeline), "-o", str(tmp_path / "preview.png"))
    assert code == 0 and (tmp_path / "preview.png").is_file(), stderr


def test_validate_refuses_an_asset_mask_on_a_single_file(tmp_path: Path) -> None:
    files = make_product(tmp_path / "S2")
    red = str(files["red"].relative_to(tmp_path))
    pipeline = write_pipeline(
        tmp_path,
        files,
        input=red,
        bands=None,
        mask={"raster": {"asset": "SCL"}, "values": [8]},
        output={"path": "out/{stem}.tif"},
    )
    code, stdout = _cli("validate", str(pipeline))
    assert code == 2 and "mask.raster: {asset: SCL} names an asset of a product" in stdout, stdout
    code, stderr = _cli("run", str(pipeline), "--quiet")
    assert code == 2 and stderr.count("\n") == 1 and "names an asset of a product" in stderr, stderr


def _landsat(tmp_path: Path, qa_href: str, mask: bool) -> Path:
    """The LC09 sample product copied under ``tmp_path`` with QA_PIXEL's href set to ``qa_href``, and
    a pipeline on its default bands (SR_B4, SR_B5), reading QA_PIXEL bits 3 and 4 when ``mask``."""
    import shutil

    import yaml

    shutil.copytree(Path(__file__).parents[1] / "data" / "LC09", tmp_path / "LC09")
    item = json.loads((tmp_path / "LC09" / "item.json").read_text())
    item["assets"]["QA_PIXEL"]["href"] = qa_href
    (tmp_path / "LC09" / "item.json").write_text(json.dumps(item))
    pipeline: dict[str, Any] = {"input": {"stac": "LC09/item.json"}, "kernel": {"name": "box", "size": 3}}
    if mask:
        pipeline["mask"] = {"not": {"raster": {"asset": "QA_PIXEL"}, "bits": [3, 4]}}
    pipeline["output"] = {"path": "out/{asset}.tif"}
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(pipeline, sort_keys=False))
    return path


def test_an_asset_no_mask_reads_need_not_exist(tmp_path: Path) -> None:
    """A STAC Item whose QA layer was not downloaded: filtering its bands without it works."""
    pipeline = _landsat(tmp_path, "./QA_NOT_DOWNLOADED.tif", mask=False)
    assert _cli("validate", str(pipeline)) == (0, f"{pipeline}: ok (1 step)\n")
    code, err = _cli("run", str(pipeline), "-q")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["SR_B4.tif", "SR_B5.tif"]
    code, err = _cli("run", str(pipeline), "-q")  # resume: up to date without the missing file either
    assert code == 0, err


def test_a_missing_asset_a_mask_reads_is_a_validate_problem(tmp_path: Path) -> None:
    pipeline = _landsat(tmp_path, "./QA_NOT_DOWNLOADED.tif", mask=True)
    code, out = _cli("validate", str(pipeline))
    assert code == 2
    assert "input.stac: " in out and "asset QA_PIXEL: no such file" in out and "QA_NOT_DOWNLOADED.tif" in out
    assert len(out.strip().splitlines()) == 1
    code, err = _cli("run", str(pipeline), "-q")
    assert code == 2 and "QA_NOT_DOWNLOADED.tif" in err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
