"""Tests of geomask.config.build: each config -> engine conversion, checked field by field."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _fixtures_cli import shipped_pipelines
from affine import Affine
from rasterio.crs import CRS

from geomask.config import Pipeline, Profile, StepConfig
from geomask.config.build import (
    build_kernel,
    build_mask_source,
    build_output,
    build_region_sources,
    build_run_options,
    build_source,
    build_step,
    build_steps,
    resolve_kernel,
    unit_notes,
)
from geomask.config.masks import (
    AnyMask,
    BboxMask,
    ExpressionMask,
    KMeansMask,
    RasterMask,
    VectorMask,
)
from geomask.errors import ConfigError
from geomask.grid import Grid
from geomask.kernels import Kernel, get
from geomask.masks import (
    AllSource,
    AnySource,
    BboxSource,
    ExpressionSource,
    FullSource,
    GrowSource,
    KMeansSource,
    NotSource,
    RasterSource,
    ShrinkSource,
    VectorSource,
)
from geomask.spec import GroupStep, OutputSpec, RunOptions, Step

ROOT = Path(__file__).resolve().parent.parent
UTM = CRS.from_epsg(32618)
GRID = Grid(UTM, Affine(30.0, 0.0, 500_000.0, 0.0, -30.0, 4_100_000.0), 100, 100)
VECTOR = {
    "vector": "roi.gpkg",
    "layer": "fields",
    "all_touched": True,
    "where": "lc = 'forest'",
    "where_time_limit": 5.0,
    "buffer": -2.5,
    "crs": "EPSG:4326",
    "require_overlap": True,
}


def assert_same_kernel(got: Kernel, expected: Kernel) -> None:
    """Kernels compare by identity: compare what they hold."""
    assert (got.name, got.kind, got.params) == (expected.name, expected.kind, expected.params)
    np.testing.assert_array_equal(got.weights, expected.weights)
    assert (got.separable is None) == (expected.separable is None)


def assert_same_step(got: Any, expected: Any) -> None:
    """Two Steps/GroupSteps hold the same fields (kernels compared by value)."""
    assert type(got) is type(expected)
    for field in dataclasses.fields(expected):
        a, b = getattr(got, field.name), getattr(expected, field.name)
        if isinstance(b, Kernel):
            assert_same_kernel(a, b)
        elif field.name == "regions":
            assert [s for s, _ in a] == [s for s, _ in b]
            for (_, ka), (_, kb) in zip(a, b, strict=True):
                assert_same_kernel(ka, kb)
        else:
            assert a == b, field.name


def test_build_source_every_form() -> None:
    """Each mask form becomes its source, every field carried over; nested forms recursively."""
    vector = VectorSource(
        Path("roi.gpkg"),
        layer="fields",
        all_touched=True,
        where="lc = 'forest'",
        buffer=-2.5,
        crs="EPSG:4326",
        require_overlap=True,
        where_time_limit=5.0,
    )
    assert build_source(VectorMask(**VECTOR)) == vector
    assert build_source(BboxMask(bbox=[1, 2, 3, 4], crs="EPSG:4326")) == BboxSource((1, 2, 3, 4), "EPSG:4326")
    assert build_source(RasterMask(raster="c.tif", values=[1, 3], band=2)) == RasterSource(
        Path("c.tif"), values=[1.0, 3.0], band=2
    )
    assert build_source(RasterMask(raster="c.tif", range=[2, 5])) == RasterSource(
        Path("c.tif"), range=(2.0, 5.0)
    )
    assert build_source(ExpressionMask(expression="b1 > 2")) == ExpressionSource("b1 > 2")
    kmeans = {"k": 4, "select": [1, 2], "bands": [3], "sample": 500, "seed": 7}
    assert build_source(KMeansMask(kmeans=kmeans)) == KMeansSource(4, [1, 2], bands=[3], sample=500, seed=7)
    box = {"bbox": [1, 2, 3, 4]}
    nested = AnyMask(
        any=[VECTOR, {"not": box}, {"all": [box, {"grow": 2, "mask": {"shrink": 1, "mask": box}}]}]
    )
    b = BboxSource((1, 2, 3, 4))
    assert build_source(nested) == AnySource(
        (vector, NotSource(b), AllSource((b, GrowSource(ShrinkSource(b, 1), 2))))
    )


def test_build_region_sources() -> None:
    """kernels_by classes: features whose attribute equals the class, or pixels equal to the class value."""
    by_vector = StepConfig(
        mask=VECTOR,
        kernels_by={"attribute": "lc", "kernels": {"forest": {"name": "box"}, "crop": {"name": "box"}}},
    )
    base = build_source(by_vector.mask)  # type: ignore[arg-type]
    assert build_region_sources(by_vector) == [
        dataclasses.replace(base, attribute_equals=("lc", "forest")),
        dataclasses.replace(base, attribute_equals=("lc", "crop")),
    ]
    by_raster = StepConfig(
        mask={"raster": "c.tif", "range": [1, 9], "band": 2},
        kernels_by={"kernels": {"3": {"name": "box"}, "7.5": {"name": "box"}}},
    )
    assert build_region_sources(by_raster) == [
        RasterSource(Path("c.tif"), values=[3.0], band=2),
        RasterSource(Path("c.tif"), values=[7.5], band=2),
    ]
    with pytest.raises(ConfigError, match="kernels_by needs a vector or raster mask"):
        build_region_sources(StepConfig(kernel={"name": "box"}))


def test_build_mask_source() -> None:
    """One step's target, the union over steps, the whole scene for a step without mask."""
    box1, box2 = {"bbox": [0, 0, 1, 1]}, {"bbox": [5, 5, 6, 6]}
    pipeline = Pipeline(
        input="a.tif",
        steps=[{"mask": box1, "kernel": {"name": "box"}}, {"mask": box2, "kernel": {"name": "box"}}],
        output={"path": "o.tif"},
    )
    assert build_mask_source(pipeline) == AnySource((BboxSource((0, 0, 1, 1)), BboxSource((5, 5, 6, 6))))
    assert build_mask_source(pipeline, 2) == BboxSource((5, 5, 6, 6))
    with pytest.raises(ConfigError, match=r"step 3 does not exist: the pipeline has steps 1\.\.2"):
        build_mask_source(pipeline, 3)
    whole = Pipeline(input="a.tif", kernel={"name": "box"}, output={"path": "o.tif"})
    assert build_mask_source(whole) == FullSource()


def test_build_kernel_and_resolve_kernel() -> None:
    """Pixel parameters pass through; map units convert on the grid, with one note each."""
    step = StepConfig(kernel={"name": "gaussian", "sigma": "30 m", "radius": "0.1 km"})
    kernel, notes = resolve_kernel(step.kernel, GRID)  # type: ignore[arg-type]
    assert_same_kernel(kernel, get("gaussian", sigma=1.0, radius=3))
    assert notes == ["gaussian sigma 30 m = 1 px", "gaussian radius 0.1 km = 3 px"]
    with pytest.raises(ConfigError, match="in map units and needs a scene"):
        build_kernel(step.kernel)  # type: ignore[arg-type]
    matrix = StepConfig(kernel={"matrix": [[0, 1, 0], [1, 2, 1], [0, 1, 0]]})
    assert_same_kernel(build_kernel(matrix.kernel), get("custom", matrix=[[0, 1, 0], [1, 2, 1], [0, 1, 0]]))  # type: ignore[arg-type]


def test_build_step() -> None:
    """Every step field reaches the engine's Step; support: target is the step's own mask source."""
    box = {"bbox": [0, 0, 1, 1]}
    step = StepConfig(
        mask=box,
        kernel={"name": "median", "size": 5},
        op="correlate",
        boundary="nearest",
        cval=2.0,
        normalize=False,
        support="target",
    )
    source = BboxSource((0, 0, 1, 1))
    expected = Step(
        get("median", size=5),
        mask=source,
        op="correlate",
        mode="nearest",
        cval=2.0,
        normalize=False,
        support=source,
    )
    assert_same_step(build_step(step), expected)
    other = StepConfig(kernel={"name": "box"}, support={"expression": "b1 > 0"})
    assert_same_step(build_step(other), Step(get("box"), support=ExpressionSource("b1 > 0")))


def test_build_step_kernels_by() -> None:
    """kernels_by becomes a GroupStep: one (region, kernel) per class in order; label = attribute."""
    step = StepConfig(
        mask={"raster": "c.tif", "values": [3, 4]},
        kernels_by={"kernels": {"3": {"name": "sharpen", "amount": 1.0}, "4": {"name": "box", "size": 5}}},
        boundary="wrap",
        cval=1.5,
        normalize=False,
        support="target",
    )
    expected = GroupStep(
        (
            (RasterSource(Path("c.tif"), values=[3.0]), get("sharpen", amount=1.0)),
            (RasterSource(Path("c.tif"), values=[4.0]), get("box", size=5)),
        ),
        op="convolve",
        mode="wrap",
        cval=1.5,
        normalize=False,
        support="target",
        label="class",
    )
    assert_same_step(build_step(step), expected)


def test_build_steps_and_unit_notes() -> None:
    """A pipeline's steps in order (a top-level step too), and per-step notes on map units."""
    pipeline = Pipeline(
        input="a.tif",
        steps=[{"kernel": {"name": "box", "size": 3}}, {"kernel": {"name": "gaussian", "sigma": "60 m"}}],
        output={"path": "o.tif"},
    )
    got = build_steps(pipeline, GRID)
    assert len(got) == 2
    assert_same_step(got[0], Step(get("box", size=3)))
    assert_same_step(got[1], Step(get("gaussian", sigma=2.0)))
    assert unit_notes(pipeline, GRID) == ["step 2: gaussian sigma 60 m = 2 px"]
    single = Pipeline(input="a.tif", kernel={"name": "box"}, op="correlate", output={"path": "o.tif"})
    [only] = build_steps(single)
    assert_same_step(only, Step(get("box"), op="correlate"))
    assert unit_notes(single, GRID) == []


def test_build_output() -> None:
    """output: format, compress and overview resampling from the pipeline; the rest from the run."""
    pipeline = Pipeline(
        input="a.tif",
        kernel={"name": "box"},
        output={
            "path": "o.tif",
            "format": "COG",
            "compress": "ZSTD",
            "overview_resampling": "nearest",
            "overwrite": True,
        },
    )
    options = {"BLOCKSIZE": "256"}
    tags = {"GEOMASK_VERSION": "1"}
    got = build_output(pipeline, Path("stage/o.tif"), options, overwrite=False, tags=tags)
    assert got == OutputSpec(
        path=Path("stage/o.tif"),
        format="COG",
        compress="zstd",
        creation_options={"BLOCKSIZE": "256"},
        overwrite=False,
        tags={"GEOMASK_VERSION": "1"},
        overview_resampling="nearest",
    )
    assert got.creation_options is not options and got.tags is not tags  # copies
    assert build_output(pipeline, Path("o.tif"), overwrite=True) == OutputSpec(
        path=Path("o.tif"), format="COG", compress="zstd", overwrite=True, overview_resampling="nearest"
    )


def test_build_run_options() -> None:
    """Every profile field reaches RunOptions; overrides that are not None win."""
    profile = Profile(
        scheduler="local-cluster",
        workers=3,
        threads_per_worker=2,
        memory_limit="2 GiB",
        window_size=512,
        copy_tiles=False,
        gdal={"GDAL_CACHEMAX": "256"},
    )
    assert build_run_options(profile) == RunOptions(
        window_size=512,
        copy_tiles=False,
        scheduler="local-cluster",
        workers=3,
        threads_per_worker=2,
        memory_limit="2 GiB",
        gdal_options={"GDAL_CACHEMAX": "256"},
    )
    assert build_run_options(profile, workers=None, scheduler="threads", window_size=64) == RunOptions(
        window_size=64,
        copy_tiles=False,
        scheduler="threads",
        workers=3,
        threads_per_worker=2,
        memory_limit="2 GiB",
        gdal_options={"GDAL_CACHEMAX": "256"},
    )
    assert build_run_options(Profile()) == RunOptions()


_HEAVY = ("rasterio", "dask", "numba", "geopandas", "distributed", "pyogrio")
_PROBE = """
import sys
{stub}
import geomask.config
heavy = {heavy!r}
def loaded():
    return sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy))
print("import", loaded())
for path in sys.argv[1:]:
    geomask.config.load_pipeline(path)
    print(path, loaded())
"""
# Stands in for a lazy geomask/__init__.py: the package without running its __init__ (which, in
# this branch, still imports the engine eagerly), so the probe sees what geomask.config loads.
_STUB = """
import types
pkg = types.ModuleType("geomask"); pkg.__path__ = [{path!r}]; pkg.__version__ = "0"
sys.modules["geomask"] = pkg
"""


def _probe(stub: bool) -> str:
    code = _PROBE.format(stub=_STUB.format(path=str(ROOT / "geomask")) if stub else "", heavy=_HEAVY)
    pipelines = [str(p) for p in shipped_pipelines()]
    done = subprocess.run(
        [sys.executable, "-c", code, *pipelines], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return done.stdout


def test_config_validation_loads_no_engine_modules() -> None:
    """import geomask.config and validating every shipped pipeline (expression, kmeans, vector, raster
    and kernels_by masks) load no rasterio, dask, numba, geopandas: the engine is only in build.py."""
    out = _probe(stub=True)
    assert out.splitlines() and all(line.endswith("[]") for line in out.splitlines()), out


def test_import_geomask_config_loads_no_engine_modules() -> None:
    """The same through the real package __init__ (passes once it resolves its names lazily)."""
    out = _probe(stub=False)
    assert all(line.endswith("[]") for line in out.splitlines()), out
