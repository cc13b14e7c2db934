"""Unsupervised masks: k-means clusters of the scene's pixel values, some of them selected.

``KMeansSource(k=4, select=[1, 2])`` clusters the pixels of the scene by their band values into ``k``
clusters and selects the pixels of clusters 1 and 2.

Fitting on a sample
-------------------
:meth:`KMeansSource.bind` fits the centroids once per scene on a deterministic sample, never on the
whole scene: a regular lattice of about ``sample`` pixels (one every ``s`` rows and every ``s`` columns,
``s = ceil(sqrt(rows * cols / sample))``), its offset inside the first ``s x s`` cell drawn from
``seed``. It is read one sampled row at a time, so memory is one scene row plus the sample. Pixels
where a used band is nodata (or NaN) are left out. The centroids are fitted with
:func:`scipy.cluster.vq.kmeans2` (k-means++ initialisation, float64) seeded with ``seed``.

Stable numbering
----------------
Clusters are numbered 1..k by ascending mean of their centroid over the bands (ties: by the
centroid's values, band by band), so ``select: [1]`` is "the darkest cluster" on every run, whatever
order k-means found them in. The same sample, seed and scene give the same centroids on every run.

Applying per window
-------------------
Each pixel gets the label of its nearest centroid (squared Euclidean distance in band units, summed
band by band in a fixed order; ties go to the lower label). That is a per-pixel computation, so the
mask is tile-invariant: any window gives the same labels as the whole scene. Nodata pixels are never
selected.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from rasterio.io import DatasetReader
from rasterio.windows import Window

from geomask.errors import ConfigError, InputError, MaskError, RunError
from geomask.grid import Grid
from geomask.io import open_scene, read_indexed
from geomask.masks._window import check_window
from geomask.masks.base import BoundMask, MaskContext, MaskSource
from geomask.messages import plain
from geomask.pixels import effective_nodata, valid_pixels
from geomask.threadwarnings import raised

__all__ = ["MAX_SAMPLE", "BoundKMeansMask", "KMeansSource", "label_pixels", "order_centroids"]

MAX_SAMPLE = 10_000_000
"""Largest ``sample`` accepted (pixels; about 80 MB per band in float64)."""


@dataclass(frozen=True)
class KMeansSource(MaskSource):
    """Pixels whose nearest k-means centroid is one of the ``select``-ed clusters.

    Parameters
    ----------
    k : int
        Number of clusters (2..255).
    select : sequence of int
        Cluster numbers (1..k, 1 = lowest mean centroid value) to select.
    bands : sequence of int or None
        1-based scene bands to cluster on (default: every band).
    sample : int
        About how many pixels the centroids are fitted on (at least ``k``).
    seed : int
        Seeds the sample's offset and the k-means++ initialisation.

    Raises
    ------
    ConfigError
        On construction, when a parameter is out of range.

    Notes
    -----
    See the module docstring for the sample, the numbering and the per-window labelling. Band values
    are used as stored (no scaling), so bands with a larger range weigh more.
    """

    k: int
    select: Sequence[int]
    bands: Sequence[int] | None = None
    sample: int = 100_000
    seed: int = 0

    def __post_init__(self) -> None:
        if not _whole(self.k) or not 2 <= self.k <= 255:
            raise ConfigError(f"kmeans: k must be a whole number from 2 to 255, got {plain(self.k)}")
        select = tuple(self.select) if not isinstance(self.select, (str, bytes)) else ()
        if not select or not all(_whole(c) and 1 <= c <= self.k for c in select):
            raise ConfigError(
                f"kmeans: select must list cluster numbers from 1 to k={self.k} "
                f"(1 = the lowest mean value), got {plain(self.select)}"
            )
        object.__setattr__(self, "select", tuple(sorted({int(c) for c in select})))
        if self.bands is not None:
            bands = tuple(self.bands) if not isinstance(self.bands, (str, bytes)) else ()
            if not bands or not all(_whole(b) and b >= 1 for b in bands) or len(set(bands)) != len(bands):
                raise ConfigError(
                    f"kmeans: bands must list distinct 1-based band numbers, got {plain(self.bands)}"
                )
            object.__setattr__(self, "bands", tuple(int(b) for b in bands))
        if not _whole(self.sample) or not self.k <= self.sample <= MAX_SAMPLE:
            raise ConfigError(
                f"kmeans: sample must be a whole number of pixels from k={self.k} to {MAX_SAMPLE:,}, "
                f"got {plain(self.sample)}"
            )
        if not _whole(self.seed) or self.seed < 0:
            raise ConfigError(f"kmeans: seed must be a whole number >= 0, got {plain(self.seed)}")

    def describe(self) -> str:
        """``kmeans(k=4, select=[1, 2], bands=[..], sample=N, seed=S)``."""
        bands = f", bands={list(self.bands)}" if self.bands is not None else ""
        return (
            f"kmeans(k={self.k}, select={list(self.select)}{bands}, sample={self.sample}, seed={self.seed})"
        )

    def bind(self, context: MaskContext) -> BoundKMeansMask:
        """Fit the centroids on a sample of the scene (see the module docstring).

        Raises
        ------
        ConfigError
            A band the scene does not have.
        MaskError
            No scene path in ``context``, or the sample holds fewer than ``k`` distinct valid pixels.
        InputError, RunError
            The scene cannot be opened or read.
        """
        if context.scene_path is None:
            raise MaskError("kmeans reads the scene's pixels, but no scene path was given (MaskContext)")
        path = context.scene_path
        with open_scene(path) as ds:
            count, dtype = ds.count, ds.dtypes[0]
            bands = self.bands if self.bands is not None else tuple(range(1, count + 1))
            missing = [b for b in bands if b > count]
            if missing:
                raise ConfigError(f"kmeans: bands {missing} do not exist in scene {path} (bands 1..{count})")
            nodata = effective_nodata(context.nodata, dtype)
            sample = self._sample(ds, tuple(bands), context.grid, nodata)
        centroids = _fit(sample, self.k, self.seed, path)
        return BoundKMeansMask(path, tuple(bands), context.grid, nodata, centroids, tuple(self.select))

    def _sample(
        self, ds: DatasetReader, bands: tuple[int, ...], grid: Grid, nodata: float | None
    ) -> NDArray[np.float64]:
        """Valid pixels of the sample lattice as (n, len(bands)) float64, read a row at a time."""
        rows, cols = grid.shape
        step = max(1, math.ceil(math.sqrt(rows * cols / self.sample)))
        rng = np.random.default_rng(self.seed)
        row0, col0 = (int(v) for v in rng.integers(0, step, size=2))
        sample_rows = np.arange(min(row0, rows - 1), rows, step, dtype=np.int64)
        sample_cols = np.arange(min(col0, cols - 1), cols, step, dtype=np.int64)
        all_cols = np.arange(cols, dtype=np.int64)
        parts = []
        for row in sample_rows:
            line = read_indexed(ds, bands, np.array([row]), all_cols)[:, 0, sample_cols]
            valid = np.ones(line.shape[1], dtype=bool)
            for band in line:
                ok = valid_pixels(band, nodata)
                if ok is not None:
                    valid &= ok
            parts.append(line[:, valid].T.astype(np.float64))
        return np.concatenate(parts) if parts else np.empty((0, len(bands)))


def _whole(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _fit(sample: NDArray[np.float64], k: int, seed: int, path: str) -> NDArray[np.float64]:
    """k centroids of ``sample`` (n, bands), numbered by :func:`order_centroids`; MaskError if impossible."""
    distinct = np.unique(sample, axis=0).shape[0] if sample.size else 0
    if distinct < k:
        raise MaskError(
            f"kmeans: the sample of scene {path} holds {distinct} distinct valid pixel value"
            f"{'' if distinct == 1 else 's'}, fewer than k={k}; lower k or raise sample"
        )
    from scipy.cluster.vq import ClusterError, kmeans2  # here, not at import: 0.1 s of start-up

    try:
        with raised(UserWarning):  # an empty cluster: refused below (in this scene's thread only)
            centroids, _ = kmeans2(
                sample, k, iter=50, minit="++", missing="raise", seed=np.random.default_rng(seed)
            )
    except (ClusterError, UserWarning) as e:
        raise MaskError(
            f"kmeans: k={k} clusters of scene {path} leave one empty ({e}); lower k or change seed"
        ) from e
    return order_centroids(np.asarray(centroids, dtype=np.float64))


def order_centroids(centroids: NDArray[np.float64]) -> NDArray[np.float64]:
    """``centroids`` (k, bands) sorted by ascending mean, ties by their values band by band."""
    keys = [centroids[:, b] for b in reversed(range(centroids.shape[1]))]
    order = np.lexsort([*keys, centroids.mean(axis=1)])
    return np.ascontiguousarray(centroids[order])


def label_pixels(values: NDArray[np.float64], centroids: NDArray[np.float64]) -> NDArray[np.uint8]:
    """The 1-based label of the nearest centroid for each pixel.

    Parameters
    ----------
    values : (bands, H, W) float64
        Pixel values.
    centroids : (k, bands) float64
        Centroids in label order.

    Returns
    -------
    (H, W) uint8
        Labels 1..k; ties go to the lower label. Each pixel's label depends on its own values only
        (distances are summed band by band with elementwise operations).
    """
    best = np.full(values.shape[1:], np.inf)
    labels = np.zeros(values.shape[1:], dtype=np.uint8)
    for j, centroid in enumerate(centroids):
        distance = np.zeros(values.shape[1:])
        for band, c in zip(values, centroid, strict=True):
            distance += (band - c) ** 2
        closer = distance < best
        best[closer] = distance[closer]
        labels[closer] = j + 1
    return labels


class BoundKMeansMask(BoundMask):
    """Fitted centroids applied to the windows of one scene.

    Notes
    -----
    Picklable and thread-safe: holds the centroids and plain values, opens the scene in every
    :meth:`render`. Memory per window: one float64 array per band plus two for distances.
    """

    def __init__(
        self,
        scene_path: str,
        bands: tuple[int, ...],
        grid: Grid,
        nodata: float | None,
        centroids: NDArray[np.float64],
        select: tuple[int, ...],
    ) -> None:
        self.scene_path = scene_path
        self.bands = bands
        self.grid = grid
        self.nodata = nodata
        self.centroids = centroids
        self.select = select

    def describe(self) -> str:
        return f"kmeans(k={len(self.centroids)}, select={list(self.select)})"

    def labels(self, window: Window) -> NDArray[np.uint8]:
        """Cluster labels 1..k of ``window`` (0 where a band is nodata or NaN)."""
        row0, col0, height, width = check_window(window, self.grid.shape, "kmeans mask")
        if height == 0 or width == 0:
            return np.zeros((height, width), dtype=np.uint8)
        rows = np.arange(row0, row0 + height, dtype=np.int64)
        cols = np.arange(col0, col0 + width, dtype=np.int64)
        try:
            with open_scene(self.scene_path) as ds:
                data = read_indexed(ds, self.bands, rows, cols)
        except InputError as e:
            raise RunError(f"kmeans: {e} (it was readable when the run started)") from e
        valid = np.ones((height, width), dtype=bool)
        for band in data:
            ok = valid_pixels(band, self.nodata)
            if ok is not None:
                valid &= ok
        labels = label_pixels(data.astype(np.float64), self.centroids)
        labels[~valid] = 0
        return labels

    def render(self, window: Window) -> NDArray[np.bool_]:
        labels = self.labels(window)
        return np.ascontiguousarray(np.isin(labels, np.asarray(self.select, dtype=np.uint8)))
