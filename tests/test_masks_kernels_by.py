"""Per-class kernels (``kernels_by``): one pass, every class from the same input, windowed == oracle."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
import yaml
from affine import Affine
from conftest import write_raster
from numpy.typing import NDArray
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from test_engine import assert_bits_equal
from typer.testing import CliRunner

from geomask import kernels
from geomask.cli import app
from geomask.config import YamlError, load_pipeline
from geomask.convolve import masked_convolve
from geomask.engine.bind import bind_steps
from geomask.engine.task import SceneJob, compute_window
from geomask.errors import MaskError
from geomask.grid import Grid
from geomask.io import inspect_scene
from geomask.kernels import Kernel
from geomask.masks import MaskContext, MaskSource, RasterSource, VectorSource
from geomask.pipeline import run_pipeline
from geomask.process import process_scene
from geomask.spec import GroupStep, OutputSpec, RunOptions

UTM = "EPSG:32618"
TRANSFORM = Affine(30.0, 0.0, 500_000.0, 0.0, -30.0, 4_100_000.0)
SHAPE = (70, 90)
NODATA = 0
OPTIONS = [
    RunOptions(window_size=16, align_windows=False, scheduler="synchronous"),
    RunOptions(window_size=37, align_windows=False, workers=2),
    RunOptions(window_size=1024, workers=2),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-band uint8 scene, a lon/lat class raster at another resolution and overlapping polygons."""
    folder = tmp_path_factory.mktemp("kernels_by")
    rng = np.random.default_rng(5)
    data = rng.integers(1, 256, size=(3, *SHAPE)).astype(np.uint8)
    data[:, rng.random(SHAPE) < 0.02] = NODATA
    write_raster(folder / "scene.tif", data, transform=TRANSFORM, nodata=NODATA)
    grid = Grid(UTM, TRANSFORM, *SHAPE)
    west, south, east, north = transform_bounds(UTM, "EPSG:4326", *grid.bounds)
    res = (east - west) / 23  # about 95 m: a coarser grid, in another CRS
    coarse = rng.integers(1, 5, size=(int((north - south) / res) + 3, 26)).astype(np.uint8)
    coarse[0, :5] = 255
    write_raster(
        folder / "classes.tif",
        coarse,
        crs="EPSG:4326",
        transform=Affine(res, 0.0, west - res, 0.0, -res, north + res),
        nodata=255,
    )
    boxes = [  # (col0, row0, col1, row1), landcover; the urban box overlaps both forest boxes
        ((5, 5, 50, 40), "forest"),
        ((40, 30, 85, 65), "urban"),
        ((60, 2, 88, 35), "forest"),
        ((2, 50, 20, 68), "water"),
    ]
    polygons = []
    for (c0, r0, c1, r1), _ in boxes:
        x0, y0 = TRANSFORM @ (c0 - 0.25, r0 - 0.25)
        x1, y1 = TRANSFORM @ (c1 + 0.25, r1 + 0.25)
        polygons.append(shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
    frame = gpd.GeoDataFrame(
        {"id": [1, 2, 3, 4], "landcover": [c for _, c in boxes]}, geometry=polygons, crs=UTM
    )
    frame.to_crs("EPSG:4326").to_file(folder / "fields.gpkg", driver="GPKG", layer="fields")
    return folder


def _scene(folder: Path) -> tuple[NDArray[np.uint8], Grid]:
    with rasterio.open(folder / "scene.tif") as ds:
        return ds.read(), Grid(ds.crs, ds.transform, ds.height, ds.width)


def _render(source: MaskSource, folder: Path, grid: Grid) -> NDArray[np.bool_]:
    bound = source.bind(MaskContext(grid, str(folder / "scene.tif"), NODATA))
    return bound.render(Window(0, 0, grid.width, grid.height))


def _oracle(
    data: NDArray[Any],
    regions: list[tuple[NDArray[np.bool_], Kernel]],
    *,
    own_support: bool = False,
    mode: str = "reflect",
) -> NDArray[Any]:
    """out = input; for each class: out[region] = masked_convolve(input, kernel, region)[region]."""
    out = data.copy()
    for region, kernel in regions:
        support = region if own_support else None
        filtered = masked_convolve(data, kernel, region, nodata=NODATA, mode=mode, support=support)
        out[:, region] = filtered[:, region]
    return out


def _write(folder: Path, name: str, document: dict[str, Any]) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.mark.parametrize("options", OPTIONS, ids=["sync-16", "threads-37", "aligned"])
def test_raster_classes_in_one_pass_equal_the_per_class_oracle(
    folder: Path, tmp_path: Path, options: RunOptions
) -> None:
    data, grid = _scene(folder)
    gaussian, sharpen = kernels.get("gaussian", sigma=1.5), kernels.get("sharpen", amount=0.8)
    regions = [
        (_render(RasterSource(folder / "classes.tif", values=[1]), folder, grid), gaussian),
        (_render(RasterSource(folder / "classes.tif", values=[3]), folder, grid), sharpen),
    ]
    assert all(region.sum() > 500 for region, _ in regions)
    expected = _oracle(data, regions, own_support=True, mode="nearest")
    pipeline = _write(
        tmp_path,
        "p.yaml",
        {
            "input": str(folder / "scene.tif"),
            "mask": {"raster": str(folder / "classes.tif"), "values": [1, 2, 3]},
            "kernels_by": {
                "kernels": {"1": {"name": "gaussian", "sigma": 1.5}, "3": {"name": "sharpen", "amount": 0.8}}
            },
            "support": "target",
            "boundary": "nearest",
            "output": {"path": str(tmp_path / "out.tif")},
        },
    )
    [report] = run_pipeline(pipeline, options=options)
    with rasterio.open(tmp_path / "out.tif") as ds:
        assert_bits_equal(ds.read(), expected)
        tags = ds.tags()
    # class 2 is selected by the mask but has no kernel: unchanged, and not counted as selected
    assert report.pixels_selected == int((regions[0][0] | regions[1][0]).sum())
    assert tags["GEOMASK_KERNEL"].startswith("convolve by class: raster(classes.tif, values=[1]) gaussian")


def test_vector_classes_overlap_later_wins(folder: Path, tmp_path: Path) -> None:
    data, grid = _scene(folder)
    gaussian, sharpen = kernels.get("gaussian", sigma=2.0), kernels.get("sharpen")
    forest = _render(
        VectorSource(folder / "fields.gpkg", attribute_equals=("landcover", "forest")), folder, grid
    )
    urban = _render(
        VectorSource(folder / "fields.gpkg", attribute_equals=("landcover", "urban")), folder, grid
    )
    overlap = forest & urban
    assert overlap.sum() > 50
    for order, regions in (
        (["forest", "urban"], [(forest, gaussian), (urban, sharpen)]),
        (["urban", "forest"], [(urban, sharpen), (forest, gaussian)]),
    ):
        specs = {"forest": {"name": "gaussian", "sigma": 2.0}, "urban": {"name": "sharpen"}}
        pipeline = _write(
            tmp_path,
            "p.yaml",
            {
                "input": str(folder / "scene.tif"),
                "mask": {"vector": str(folder / "fields.gpkg")},
                "kernels_by": {"attribute": "landcover", "kernels": {c: specs[c] for c in order}},
                "output": {"path": str(tmp_path / f"{order[0]}.tif")},
            },
        )
        run_pipeline(pipeline, options=RunOptions(window_size=23, align_windows=False), overwrite=True)
        with rasterio.open(tmp_path / f"{order[0]}.tif") as ds:
            assert_bits_equal(ds.read(), _oracle(data, regions))
    with rasterio.open(tmp_path / "forest.tif") as a, rasterio.open(tmp_path / "urban.tif") as b:
        first, second = a.read(), b.read()
    assert not np.array_equal(first[:, overlap], second[:, overlap])  # the order decides the overlap
    assert np.array_equal(first[:, ~overlap], second[:, ~overlap])


@pytest.mark.slow
def test_group_step_from_python_with_a_shared_support(folder: Path, tmp_path: Path) -> None:
    data, grid = _scene(folder)
    support = VectorSource(folder / "fields.gpkg", where="landcover <> 'water'")
    regions = [
        (RasterSource(folder / "classes.tif", values=[2]), kernels.get("box", size=5)),
        (RasterSource(folder / "classes.tif", values=[4]), kernels.get("median", size=3)),
    ]
    step = GroupStep(tuple(regions), support=support, mode="wrap")
    support_mask = _render(support, folder, grid)
    expected = data.copy()
    for source, kernel in regions:
        region = _render(source, folder, grid)
        filtered = masked_convolve(data, kernel, region, nodata=NODATA, mode="wrap", support=support_mask)
        expected[:, region] = filtered[:, region]
    for size in (16, 50):
        out = tmp_path / f"g{size}.tif"
        options = RunOptions(window_size=size, align_windows=False, scheduler="synchronous")
        process_scene(folder / "scene.tif", OutputSpec(out), [step], options=options)
        with rasterio.open(out) as ds:
            assert_bits_equal(ds.read(), expected)
    assert step.describe().startswith("by class: raster(classes.tif, values=[2]) box")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"mask": {"bbox": [0, 0, 1, 1]}, "kernels_by": {"kernels": {"a": {"name": "box"}}}},
            "kernels_by: kernels_by needs mask: {vector: PATH}",
        ),
        (
            {"mask": {"vector": "v.gpkg"}, "kernels_by": {"kernels": {"a": {"name": "box"}}}},
            "kernels_by: missing required key 'attribute'",
        ),
        (
            {"mask": {"raster": "c.tif", "values": [1]}, "kernels_by": {"kernels": {"2": {"name": "box"}}}},
            "kernels_by.kernels.2: class 2 is not selected by the mask",
        ),
        (
            {"mask": {"raster": "c.tif", "range": [1, 3]}, "kernels_by": {"kernels": {"x": {"name": "box"}}}},
            "kernels_by.kernels.x: class 'x' of a raster mask must be a number",
        ),
        (
            {
                "mask": {"raster": "c.tif", "values": [1]},
                "kernels_by": {"attribute": "a", "kernels": {"1": {"name": "box"}}},
            },
            "kernels_by.attribute: attribute is for vector masks",
        ),
        (
            {
                "mask": {"vector": "v.gpkg"},
                "kernel": {"name": "box"},
                "kernels_by": {"attribute": "a", "kernels": {"1": {"name": "box"}}},
            },
            "kernels_by: give either kernel or kernels_by, not both",
        ),
        (
            {
                "mask": {"vector": "v.gpkg"},
                "kernels_by": {"attribute": "a", "kernels": {"1": {"name": "bx"}}},
            },
            "kernels_by.kernels.1: unknown kernel 'bx'. Did you mean 'box'?",
        ),
    ],
)
def test_invalid_combinations_are_reported_at_their_key(
    tmp_path: Path, section: dict[str, Any], message: str
) -> None:
    document = {"input": "a.tif", **section, "output": {"path": "o.tif"}}
    for doc in (document, {"input": "a.tif", "steps": [section], "output": {"path": "o.tif"}}):
        path = _write(tmp_path, "p.yaml", doc)
        with pytest.raises(YamlError) as info:
            load_pipeline(path)
        expected = message if "steps" not in doc else "steps[0]." + message
        assert any(expected in str(p) for p in info.value.problems), [str(p) for p in info.value.problems]


def test_unknown_class_value_is_an_input_error(folder: Path, tmp_path: Path) -> None:
    pipeline = _write(
        tmp_path,
        "p.yaml",
        {
            "input": str(folder / "scene.tif"),
            "mask": {"vector": str(folder / "fields.gpkg")},
            "kernels_by": {"attribute": "landcover", "kernels": {"forrest": {"name": "box"}}},
            "output": {"path": str(tmp_path / "o.tif")},
        },
    )
    result = CliRunner().invoke(app, ["run", str(pipeline), "-q"])
    assert result.exit_code == 2
    assert "no feature of vector file" in result.stderr and "'forest'" in result.stderr
    assert not (tmp_path / "o.tif").exists()
    with pytest.raises(MaskError, match="has no attribute cover; its attributes are id, landcover"):
        VectorSource(folder / "fields.gpkg", attribute_equals=("cover", "x")).bind(
            MaskContext(_scene(folder)[1])
        )


@pytest.mark.slow
def test_bound_group_pickles_for_worker_processes(folder: Path) -> None:
    scene = inspect_scene(folder / "scene.tif")
    step = GroupStep(
        (
            (RasterSource(folder / "classes.tif", values=[1]), kernels.get("gaussian", sigma=1.0)),
            (
                VectorSource(folder / "fields.gpkg", attribute_equals=("landcover", "urban")),
                kernels.get("sharpen"),
            ),
        ),
        support="target",
    )
    [bound] = bind_steps(scene, [step], NODATA)
    clone = pickle.loads(pickle.dumps(bound))
    assert clone.kernel.halo == (3, 3) and len(clone.branches) == 2
    job = SceneJob(scene, (bound,), (1, 2, 3), float(NODATA))
    window = Window(8, 8, 40, 30)
    first = compute_window(job, window)
    second = compute_window(pickle.loads(pickle.dumps(job)), window)
    assert first.computed and np.array_equal(first.data, second.data)
