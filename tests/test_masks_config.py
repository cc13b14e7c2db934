"""Every mask form in pipeline YAML: parsing, errors at their key and line, schema, and runs that equal
the same source built in Python."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from _fixtures_cli import SCENE_CRS, SCENE_TRANSFORM, make_roi, make_scene, roi_mask, write_yaml
from affine import Affine
from conftest import write_raster
from rasterio.warp import transform_bounds
from test_engine import assert_bits_equal
from typer.testing import CliRunner

from geomask import kernels
from geomask.cli import app
from geomask.config import Pipeline, YamlError, load_pipeline, pipeline_problems
from geomask.config.build import build_mask_source, build_source, build_steps
from geomask.convolve import masked_convolve
from geomask.masks import (
    AllSource,
    AnySource,
    BboxSource,
    ExpressionSource,
    FullSource,
    GrowSource,
    KMeansSource,
    MaskSource,
    NotSource,
    RasterSource,
    ShrinkSource,
    VectorSource,
)
from geomask.pipeline import run_pipeline
from geomask.process import process_scene
from geomask.spec import OutputSpec, RunOptions, Step

runner = CliRunner()
KERNEL = {"name": "gaussian", "sigma": 1}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scene.tif (UTM, 64 x 48, 2 bands), roi.geojson (EPSG:4326) and classes.tif (EPSG:4326, coarser)."""
    folder = tmp_path_factory.mktemp("forms")
    make_scene(folder / "scene.tif")
    make_roi(folder / "roi.geojson")
    west, south, east, north = transform_bounds(
        SCENE_CRS, "EPSG:4326", 500_000, 4_098_560, 501_920, 4_100_000
    )
    res = (east - west) / 20
    rng = np.random.default_rng(2)
    classes = rng.integers(1, 4, size=(int((north - south) / res) + 2, 22)).astype(np.uint8)
    write_raster(
        folder / "classes.tif",
        classes,
        crs="EPSG:4326",
        transform=Affine(res, 0.0, west - res / 2, 0.0, -res, north + res / 2),
        nodata=0,
    )
    return folder


def _box(folder: Path) -> tuple[float, float, float, float]:
    x0, y0 = SCENE_TRANSFORM @ (5, 40)
    x1, y1 = SCENE_TRANSFORM @ (50, 6)
    return (x0, y0, x1, y1)


def _lonlat_box() -> tuple[float, float, float, float]:
    return transform_bounds(SCENE_CRS, "EPSG:4326", 500_300, 4_098_900, 501_500, 4_099_700)


def _forms(folder: Path) -> list[tuple[str, dict[str, Any], MaskSource]]:
    """(id, YAML mask section, the same source built in Python)."""
    roi, classes = folder / "roi.geojson", folder / "classes.tif"
    box = _box(folder)
    return [
        ("vector", {"vector": "roi.geojson", "all_touched": True}, VectorSource(roi, all_touched=True)),
        ("bbox", {"bbox": list(box)}, BboxSource(box)),
        (
            "bbox-4326",
            {"bbox": list(_lonlat_box()), "crs": "EPSG:4326"},
            BboxSource(_lonlat_box(), "EPSG:4326"),
        ),
        ("raster-values", {"raster": "classes.tif", "values": [1, 3]}, RasterSource(classes, values=[1, 3])),
        ("raster-range", {"raster": "classes.tif", "range": [2, 3]}, RasterSource(classes, range=(2, 3))),
        (
            "expression",
            {"expression": "(b1 - b2) / (b1 + b2) > 0.1"},
            ExpressionSource("(b1 - b2) / (b1 + b2) > 0.1"),
        ),
        (
            "kmeans",
            {"kmeans": {"k": 3, "select": [1, 2], "sample": 800, "seed": 1}},
            KMeansSource(3, [1, 2], sample=800, seed=1),
        ),
        (
            "any",
            {"any": [{"vector": "roi.geojson"}, {"bbox": list(box)}]},
            AnySource((VectorSource(roi), BboxSource(box))),
        ),
        (
            "all-not",
            {"all": [{"expression": "b1 > 2000"}, {"not": {"vector": "roi.geojson"}}]},
            AllSource((ExpressionSource("b1 > 2000"), NotSource(VectorSource(roi)))),
        ),
        ("grow", {"grow": 3, "mask": {"vector": "roi.geojson"}}, GrowSource(VectorSource(roi), 3)),
        (
            "shrink",
            {"mask": {"raster": "classes.tif", "values": [2]}, "shrink": 1},
            ShrinkSource(RasterSource(classes, values=[2]), 1),
        ),
    ]


FORM_IDS = [
    "vector",
    "bbox",
    "bbox-4326",
    "raster-values",
    "raster-range",
    "expression",
    "kmeans",
    "any",
    "all-not",
    "grow",
    "shrink",
]


@pytest.mark.parametrize("form", FORM_IDS)
def test_each_form_runs_and_equals_the_python_source(project: Path, tmp_path: Path, form: str) -> None:
    [(_, section, source)] = [f for f in _forms(project) if f[0] == form]
    document = {
        "input": str(project / "scene.tif"),
        "mask": section,
        "kernel": KERNEL,
        "support": "target",
        "output": {"path": str(tmp_path / "yaml.tif")},
    }
    pipeline = write_yaml(project / f"{form}.yaml", document)
    model = load_pipeline(pipeline)
    assert model.mask is not None and build_source(model.mask) == source
    assert pipeline_problems(pipeline) == []
    options = RunOptions(window_size=16, align_windows=False, workers=2)
    [report] = run_pipeline(pipeline, options=options)
    assert report.status == "done" and report.pixels_selected > 0
    kernel = kernels.get("gaussian", sigma=1)
    python = tmp_path / "python.tif"
    process_scene(project / "scene.tif", OutputSpec(python), [Step(kernel, source, support=source)])
    with rasterio.open(tmp_path / "yaml.tif") as a, rasterio.open(python) as b:
        assert_bits_equal(a.read(), b.read())


def test_yaml_expression_and_vector_equal_numpy_oracles(project: Path, tmp_path: Path) -> None:
    with rasterio.open(project / "scene.tif") as ds:
        data, nodata = ds.read(), ds.nodata
    valid = (data != nodata).all(axis=0)
    mask = (data[0].astype(float) > 2000) & valid & ~roi_mask(data.shape[1:])
    document = {
        "input": str(project / "scene.tif"),
        "steps": [
            {
                "mask": {"all": [{"expression": "b1 > 2000"}, {"not": {"vector": "roi.geojson"}}]},
                "kernel": {"name": "box", "size": 3},
            }
        ],
        "output": {"path": str(tmp_path / "o.tif")},
    }
    pipeline = write_yaml(project / "oracle.yaml", document)
    [report] = run_pipeline(pipeline, options=RunOptions(window_size=16, align_windows=False))
    expected = masked_convolve(data, kernels.get("box", size=3), mask, nodata=nodata)
    with rasterio.open(tmp_path / "o.tif") as ds:
        assert_bits_equal(ds.read(), expected)
    assert report.pixels_selected == int(mask.sum())


def test_support_target_is_the_step_mask(project: Path) -> None:
    text = "input: scene.tif\nmask: {grow: 1, mask: {vector: roi.geojson}}\nkernel: {name: box}\n"
    text += "support: target\noutput: {path: o.tif}\n"
    step = build_steps(load_pipeline(write_yaml(project / "t.yaml", text)))[0]
    assert step.support == step.mask == GrowSource(VectorSource(project / "roi.geojson"), 1)


def test_pixels_selected_is_the_union_over_steps(project: Path, tmp_path: Path) -> None:
    (x0, y0), (x1, y1) = SCENE_TRANSFORM @ (30, 45), SCENE_TRANSFORM @ (60, 20)
    box = (x0, y0, x1, y1)  # pixels (col 30..59, row 20..44), half over the ROI
    document = {
        "input": str(project / "scene.tif"),
        "steps": [
            {"mask": {"vector": "roi.geojson"}, "kernel": {"name": "box", "size": 5}},
            {"mask": {"bbox": list(box)}, "kernel": KERNEL},
        ],
        "output": {"path": str(tmp_path / "o.tif")},
    }
    pipeline = write_yaml(project / "union.yaml", document)
    [report] = run_pipeline(pipeline, options=RunOptions(window_size=16, align_windows=False))
    shape = (48, 64)
    second = roi_mask(shape, (30, 20, 60, 45))
    union = roi_mask(shape) | second
    assert report.pixels_selected == int(union.sum()) > int(second.sum())
    model = load_pipeline(pipeline)
    assert build_mask_source(model) == AnySource((VectorSource(project / "roi.geojson"), BboxSource(box)))
    assert build_mask_source(model, 2) == BboxSource(box)
    no_mask = Pipeline(input="a.tif", kernel={"name": "box"}, output={"path": "o.tif"})
    assert build_mask_source(no_mask) == FullSource()


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = write_yaml(tmp_path / "p.yaml", text)
    with pytest.raises(YamlError) as info:
        load_pipeline(path)
    return [str(p).removeprefix(f"{path}:") for p in info.value.problems]


def test_problems_at_their_key_and_line(tmp_path: Path) -> None:
    text = """\
input: a.tif
mask:
  any:
    - bbox: [10, 0, 1, 1]
    - vectr: x.geojson
    - grow: -1
      mask: {raster: c.tif}
    - kmeans: {k: 3, select: [4]}
    - not: roi.geojson
    - raster: c.tif
      values: [1]
      rnage: [1, 2]
    - expression: "b1 > 0 & b2 > 0"
kernel: {name: box}
support: tagret
output: {path: o.tif}
"""
    assert _problems(tmp_path, text) == [
        "4:7: mask.any[0].bbox: bbox [10, 0, 1, 1] is empty or inverted: it needs xmin < xmax and "
        "ymin < ymax (order [xmin, ymin, xmax, ymax])",
        "5:7: mask.any[1].vectr: unknown mask form 'vectr'. Did you mean 'vector'?",
        "6:13: mask.any[2].grow: input should be greater than or equal to 0, got -1",
        "7:14: mask.any[2].mask.raster: give exactly one of values: [..] (classes to select), "
        "range: [lo, hi], bits: [..] (bit flags) or bitfield: {start, length, values}",
        "8:22: mask.any[3].kmeans.select: clusters [4] do not exist: k is 3, so select from 1..3",
        "9:12: mask.any[4].not: expected a mask mapping such as {vector: PATH} or {bbox: [xmin, ymin, "
        "xmax, ymax]} (forms: vector, bbox, raster, expression, kmeans, any, all, not, grow, shrink), "
        "got 'roi.geojson'",
        "12:7: mask.any[5].rnage: unknown key 'rnage'. Did you mean 'range'?",
        "13:7: mask.any[6].expression: expression 'b1 > 0 & b2 > 0': & at column 6 combines conditions; put "
        "each comparison in parentheses, e.g. (b1 > 0.2) & (b2 < 0.5)",
        "15:10: support: expected target (the step's mask) or a mask mapping such as {vector: PATH} (forms: "
        "vector, bbox, raster, expression, kmeans, any, all, not, grow, shrink), got 'tagret'",
    ]


def test_more_form_problems(tmp_path: Path) -> None:
    base = "input: a.tif\nkernel: {name: box}\noutput: {path: o.tif}\n"
    cases = {
        "mask: {bbox: [0, 0, 1]}\n": "mask.bbox: list should have at least 4 items after validation",
        "mask: {bbox: [0, 0, 1, 1], crs: EPSG:99999}\n": "mask.crs: crs: EPSG:99999 given for bbox",
        "mask: {raster: c.tif, range: [3, 1]}\n": "mask.range: range [3.0, 1.0] needs lo <= hi",
        "mask: {kmeans: {k: 3}}\n": "mask.kmeans.select: missing required key 'select'",
        "mask: {grow: 2}\n": "mask.mask: missing required key 'mask'",
        "mask: {expression: 'b1 + 1'}\n": "gives numbers, not a condition",
        "mask: {vector: v.gpkg, bbox: [0, 0, 1, 1]}\n": "mask.bbox: key 'bbox' cannot stand beside",
        "mask: {}\n": "mask: a mask needs one of the keys vector, bbox, raster, expression, kmeans, any, "
        "all, not, grow, shrink; got an empty mapping",
        "mask: {wher: x}\n": "mask.wher: a mask needs one of the keys vector",
    }
    for line, expected in cases.items():
        problems = _problems(tmp_path, base + line)
        assert len(problems) == 1 and expected in problems[0], (line, problems)


@pytest.mark.parametrize(
    "expression",
    ['__import__("os").system("touch PWNED") > 0', "b1.real > 0", "(lambda: 1)() > 0", "open('x') > 0"],
)
def test_expressions_reaching_python_exit_2(project: Path, tmp_path: Path, expression: str) -> None:
    document = {
        "input": str(project / "scene.tif"),
        "mask": {"expression": expression},
        "kernel": KERNEL,
        "output": {"path": str(tmp_path / "o.tif")},
    }
    pipeline = write_yaml(tmp_path / "p.yaml", document)
    for command in ("run", "validate"):
        result = runner.invoke(app, [command, str(pipeline)])
        assert result.exit_code == 2, (command, result.output)
        assert "mask.expression: expression" in result.output and "is not allowed" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.yaml"]
    assert not Path("PWNED").exists()


def test_validate_checks_nested_mask_files(tmp_path: Path) -> None:
    text = (
        "input: a.tif\nmask:\n  all:\n    - {not: {vector: missing.gpkg}}\n    - grow: 2\n"
        "      mask: {raster: c.tif, values: [1]}\nkernel: {name: box}\noutput: {path: o.tif}\n"
    )
    path = write_yaml(tmp_path / "p.yaml", text)
    assert [str(p) for p in pipeline_problems(path)] == [
        f"{path}:1:8: input: no such file: {tmp_path / 'a.tif'}",
        f"{path}:4:22: mask.all[0].not.vector: no such vector file: {tmp_path / 'missing.gpkg'}",
        f"{path}:6:22: mask.all[1].mask.raster: no such class raster: {tmp_path / 'c.tif'}",
    ]


def test_schema_has_every_form() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    text = json.dumps(schema)
    for name in (
        "VectorMask",
        "BboxMask",
        "RasterMask",
        "ExpressionMask",
        "KMeansMask",
        "KMeansParams",
        "AnyMask",
        "AllMask",
        "NotMask",
        "GrowMask",
        "ShrinkMask",
        "KernelsBy",
    ):
        assert name in schema["$defs"], name
    assert '"target"' in text and '"kernels_by"' in text
    assert "not" in schema["$defs"]["NotMask"]["properties"]
