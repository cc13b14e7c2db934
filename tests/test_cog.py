"""COG outputs: rio-cogeo validity, overviews that ignore nodata, kept metadata, provenance tags."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from _fixtures_cli import make_project, write_yaml
from rasterio.enums import ColorInterp
from rio_cogeo.cogeo import cog_validate

import geomask
from geomask.io import inspect_scene
from geomask.kernels import get
from geomask.masks import ArraySource
from geomask.output.cog import overview_resampling_for
from geomask.process import process_scene
from geomask.spec import OutputSpec, Step


def _cog(src, out, mask, **spec):
    step = Step(kernel=get("gaussian", sigma=1), mask=ArraySource(mask))
    return process_scene(src, OutputSpec(out, format="COG", block_size=128, **spec), [step])


def test_cog_validates_with_internal_overviews_and_keeps_metadata(make_raster, tmp_path):
    rng = np.random.default_rng(1)
    data = rng.integers(1, 4000, size=(3, 300, 260)).astype("uint16")
    src = make_raster(data, nodata=0, block=32)
    with rasterio.open(src, "r+") as ds:
        ds.descriptions = ("red", "green", "blue")
        ds.colorinterp = (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
        ds.scales = (0.5, 0.5, 0.5)
        ds.offsets = (1.0, 2.0, 3.0)
        ds.update_tags(SENSOR="test-sensor")
    mask = np.zeros((300, 260), bool)
    mask[50:200, 40:180] = True
    out = tmp_path / "out.tif"
    _cog(src, out, mask)
    valid, errors, warnings = cog_validate(str(out), strict=True)
    assert valid and not errors and not warnings
    with rasterio.open(out) as ds:
        assert ds.overviews(1)  # internal overviews
        assert ds.nodata == 0
        assert ds.descriptions == ("red", "green", "blue")
        assert tuple(ds.colorinterp) == (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
        assert ds.scales == (0.5, 0.5, 0.5) and ds.offsets == (1.0, 2.0, 3.0)
        assert ds.tags()["SENSOR"] == "test-sensor"
        np.testing.assert_array_equal(ds.read()[:, ~mask], data[:, ~mask])


def test_overviews_ignore_nodata(make_raster, tmp_path):
    data = np.full((256, 256), 100.0, "float32")
    data[:, :101] = -9999.0  # an odd column: 2x2 overview cells straddle the edge of the nodata region
    src = make_raster(data, nodata=-9999.0, block=32)
    mask = np.zeros((256, 256), bool)
    mask[100:150, 150:200] = True  # filtering a constant leaves it constant
    out = tmp_path / "out.tif"
    _cog(src, out, mask)
    with rasterio.open(out) as ds:
        assert ds.overviews(1)  # internal overviews
        for level in (2, 4):
            overview = ds.read(1, out_shape=(256 // level, 256 // level))
            values = set(np.unique(overview).tolist())
            assert values == {-9999.0, 100.0}, (level, values)  # no 100/-9999 averages next to nodata
            assert (overview[:, 101 // level + 1 :] == 100.0).all()


def test_class_raster_overviews_are_nearest_and_keep_the_colour_table(make_raster, tmp_path):
    classes = np.where(np.indices((256, 256)).sum(axis=0) % 2 == 0, 1, 5).astype("uint8")
    src = make_raster(classes, block=32)
    table = {1: (0, 128, 0, 255), 5: (0, 0, 255, 255)}
    with rasterio.open(src, "r+") as ds:
        ds.write_colormap(1, table)
    assert overview_resampling_for(inspect_scene(src)) == "nearest"
    out = tmp_path / "out.tif"
    _cog(src, out, np.zeros((256, 256), bool))
    assert cog_validate(str(out))[0]
    with rasterio.open(out) as ds:
        assert set(np.unique(ds.read(1, out_shape=(64, 64))).tolist()) <= {1, 5}  # average would give 3
        assert ds.colormap(1)[5] == (0, 0, 255, 255)


def test_overview_resampling_from_the_pipeline(tmp_path):
    pipeline = make_project(tmp_path)
    text = pipeline.read_text().replace(
        "path: out/scene.denoised.tif",
        "path: out/scene.denoised.tif\n  format: COG\n  overview_resampling: mode",
    )
    write_yaml(pipeline, text)
    model = geomask.config.load_pipeline(pipeline)
    assert model.output.overview_resampling == "mode"
    geomask.run_pipeline(model)
    assert cog_validate(str(tmp_path / "out" / "scene.denoised.tif"))[0]


def test_unknown_overview_resampling_is_refused(tmp_path):
    pipeline = make_project(tmp_path)
    write_yaml(
        pipeline,
        pipeline.read_text().replace(
            "path: out/scene.denoised.tif", "path: o.tif\n  overview_resampling: median"
        ),
    )
    with pytest.raises(geomask.errors.ConfigError, match="overview_resampling"):
        geomask.config.load_pipeline(pipeline)


def test_provenance_tags_readable_by_rasterio(tmp_path):
    pipeline = make_project(tmp_path)
    geomask.run_pipeline(pipeline)
    with rasterio.open(tmp_path / "out" / "scene.denoised.tif") as ds:
        tags = ds.tags()
    assert tags["GEOMASK_VERSION"] == geomask.__version__
    assert tags["GEOMASK_PIPELINE"] == "pipeline"
    assert len(tags["GEOMASK_PIPELINE_SHA256"]) == 64
    assert "gaussian" in tags["GEOMASK_KERNEL"]
    assert tags["GEOMASK_MASK"].startswith("vector(roi.geojson")
