"""Tests of geomask.masks.kmeans: deterministic fit on a sample, stable numbering, tile-invariant labels."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import rasterio
from _fixtures_masks import WINDOW_SIZES, full, tiled
from conftest import write_raster
from numpy.typing import NDArray
from test_engine import assert_bits_equal

from geomask import kernels
from geomask.convolve import masked_convolve
from geomask.errors import ConfigError, MaskError
from geomask.grid import Grid
from geomask.masks import KMeansSource, MaskContext
from geomask.masks.kmeans import BoundKMeansMask, label_pixels, order_centroids
from geomask.process import process_scene
from geomask.spec import OutputSpec, RunOptions, Step

# Three well separated groups of pixel values (bands 1..3), listed bright, dark, middle, so that
# the numbering by ascending mean has to reorder them.
LEVELS = np.array([[900.0, 950.0, 1000.0], [100.0, 120.0, 90.0], [500.0, 480.0, 520.0]])
NODATA = 0


def _scene_values(shape: tuple[int, int] = (70, 90), seed: int = 3) -> NDArray[np.uint16]:
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 3, size=(shape[0] // 5 + 1, shape[1] // 5 + 1))
    group = np.repeat(np.repeat(group, 5, axis=0), 5, axis=1)[: shape[0], : shape[1]]
    values = LEVELS[group].transpose(2, 0, 1) + rng.normal(0, 40, size=(3, *shape))
    data = np.clip(np.rint(values), 1, 5000).astype(np.uint16)
    data[:, rng.random(shape) < 0.03] = NODATA  # nodata specks in every band
    data[1, :3, :] = NODATA  # and a strip where only band 2 is nodata
    return data


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, NDArray[np.uint16], Grid]:
    data = _scene_values()
    path = write_raster(tmp_path_factory.mktemp("kmeans") / "scene.tif", data, nodata=NODATA)
    with rasterio.open(path) as ds:
        grid = Grid(ds.crs, ds.transform, ds.height, ds.width)
    return path, data, grid


def _bind(path: Path, grid: Grid, source: KMeansSource, nodata: float | None = NODATA) -> BoundKMeansMask:
    return source.bind(MaskContext(grid, str(path), nodata))


def _oracle_labels(
    data: NDArray[np.uint16], centroids: NDArray[np.float64], nodata: float
) -> NDArray[np.uint8]:
    """Nearest centroid over the whole array, with numpy broadcasting (another formulation)."""
    pixels = data.reshape(data.shape[0], -1).T.astype(np.float64)
    distances = ((pixels[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=-1)
    labels = (np.argmin(distances, axis=1) + 1).astype(np.uint8).reshape(data.shape[1:])
    labels[(data == nodata).any(axis=0)] = 0
    return labels


def test_fit_is_deterministic_and_numbered_by_mean(scene: tuple[Path, NDArray[np.uint16], Grid]) -> None:
    path, _, grid = scene
    first = _bind(path, grid, KMeansSource(3, [1]))
    second = _bind(path, grid, KMeansSource(3, [1]))
    assert np.array_equal(first.centroids, second.centroids)  # bit for bit, two runs
    means = first.centroids.mean(axis=1)
    assert np.all(np.diff(means) > 0)
    # The darkest group is cluster 1, the middle one 2, the bright one 3 (within the noise).
    expected = LEVELS[np.argsort(LEVELS.mean(axis=1))]
    assert np.allclose(first.centroids, expected, atol=25)


def test_windowed_labels_equal_the_whole_array_oracle(scene: tuple[Path, NDArray[np.uint16], Grid]) -> None:
    path, data, grid = scene
    bound = _bind(path, grid, KMeansSource(3, [1, 3]))
    labels = bound.labels(full(grid))
    assert np.array_equal(labels, _oracle_labels(data, bound.centroids, NODATA))
    whole = bound.render(full(grid))
    assert np.array_equal(whole, np.isin(labels, [1, 3]))
    assert not whole[(data == NODATA).any(axis=0)].any()  # nodata in any band is never selected
    for size in WINDOW_SIZES:
        assert np.array_equal(tiled(bound, grid.shape, size), whole), size
    # a second, independent bind rendered through other windows gives the same labels
    again = _bind(path, grid, KMeansSource(3, [1, 3]))
    assert np.array_equal(tiled(again, grid.shape, (9, 31), phase=(4, 5)), whole)


def test_sample_is_bounded_and_seeded(scene: tuple[Path, NDArray[np.uint16], Grid]) -> None:
    path, _, grid = scene
    source = KMeansSource(3, [1], sample=500, seed=7)
    with rasterio.open(path) as ds:
        sample = source._sample(ds, (1, 2, 3), grid, float(NODATA))
    # a lattice of about `sample` pixels (fewer: nodata is left out), never the scene
    assert 300 < sample.shape[0] <= 600 < grid.width * grid.height
    with rasterio.open(path) as ds:
        assert np.array_equal(sample, source._sample(ds, (1, 2, 3), grid, float(NODATA)))
    small = _bind(path, grid, source)
    assert np.allclose(small.centroids, _bind(path, grid, KMeansSource(3, [1])).centroids, atol=25)


def test_bands_subset_and_no_nodata(scene: tuple[Path, NDArray[np.uint16], Grid]) -> None:
    path, data, grid = scene
    bound = _bind(path, grid, KMeansSource(2, [2], bands=[3]), nodata=None)
    assert bound.centroids.shape == (2, 1)
    labels = bound.labels(full(grid))
    assert np.array_equal(labels, _oracle_labels(data[2:3], bound.centroids, -1))


def test_through_the_engine_equals_masked_convolve(
    scene: tuple[Path, NDArray[np.uint16], Grid], tmp_path: Path
) -> None:
    path, data, grid = scene
    source = KMeansSource(3, [2])
    mask = _bind(path, grid, source).render(full(grid))
    kernel = kernels.get("gaussian", sigma=1.0)
    expected = masked_convolve(data, kernel, mask, nodata=NODATA, support=mask)
    for size in (16, 37):
        out = tmp_path / f"out{size}.tif"
        options = RunOptions(window_size=size, align_windows=False, scheduler="synchronous")
        report = process_scene(path, OutputSpec(out), [Step(kernel, source, support=source)], options=options)
        with rasterio.open(out) as ds:
            assert_bits_equal(ds.read(), expected)
        assert report.pixels_selected == int(mask.sum())


def test_pickle_and_describe(scene: tuple[Path, NDArray[np.uint16], Grid]) -> None:
    path, _, grid = scene
    source = KMeansSource(3, [3, 1], bands=[1, 2], sample=1000, seed=2)
    assert source.select == (1, 3)
    assert source.describe() == "kmeans(k=3, select=[1, 3], bands=[1, 2], sample=1000, seed=2)"
    assert pickle.loads(pickle.dumps(source)) == source
    bound = _bind(path, grid, source)
    clone = pickle.loads(pickle.dumps(bound))
    assert np.array_equal(clone.render(full(grid)), bound.render(full(grid)))


def test_order_centroids_and_ties() -> None:
    centroids = np.array([[5.0, 5.0], [1.0, 3.0], [3.0, 1.0], [0.0, 0.0]])
    assert order_centroids(centroids).tolist() == [[0.0, 0.0], [1.0, 3.0], [3.0, 1.0], [5.0, 5.0]]
    values = np.array([[[2.0]], [[2.0]]])  # equally far from (1, 3) and (3, 1): the lower label wins
    assert label_pixels(values, order_centroids(centroids)).tolist() == [[2]]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 1, "select": [1]}, "k must be a whole number from 2 to 255"),
        ({"k": 3, "select": [4]}, "select must list cluster numbers from 1 to k=3"),
        ({"k": 3, "select": []}, "select must list"),
        ({"k": 3, "select": [1], "bands": [0]}, "bands must list distinct 1-based"),
        ({"k": 3, "select": [1], "sample": 2}, "sample must be a whole number"),
        ({"k": 3, "select": [1], "seed": -1}, "seed must be"),
    ],
)
def test_bad_parameters_are_config_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        KMeansSource(**kwargs)


def test_scene_errors(scene: tuple[Path, NDArray[np.uint16], Grid], tmp_path: Path) -> None:
    path, _, grid = scene
    with pytest.raises(ConfigError, match=r"bands \[4\] do not exist"):
        _bind(path, grid, KMeansSource(3, [1], bands=[1, 4]))
    flat = write_raster(tmp_path / "flat.tif", np.full((2, 20, 20), 7, dtype=np.uint8))
    with pytest.raises(MaskError, match="1 distinct valid pixel value, fewer than k=3"):
        _bind(flat, Grid(grid.crs, grid.transform, 20, 20), KMeansSource(3, [1]))
    with pytest.raises(MaskError, match="no scene path"):
        KMeansSource(3, [1]).bind(MaskContext(grid))
