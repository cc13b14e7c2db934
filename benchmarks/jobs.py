"""One benchmark job per process: ``python -m benchmarks.jobs NAME SCENE ROIS OUT THREADS``.

The parent (:func:`benchmarks.common.job`) measures the process: wall time, interpreter start and
imports included, and peak RSS. Each job prints one JSON line with the seconds of the job itself
(imports excluded) for reference. Every job reads the same scene and writes a tiled 512, DEFLATE
GeoTIFF; the filter is a 5x5 gaussian (sigma 1) inside the ROIs. Each job imports what it uses,
as its command would: the geomask jobs start as the ``geomask`` console script does, with nothing
imported before geomask's command line (which sets up numpy's BLAS before importing numpy).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import rasterio

CREATION = {"driver": "GTiff", "tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "deflate"}
SIGMA, RADIUS = 1.0, 2  # a 5x5 gaussian


def _one_blas_thread() -> None:
    """numpy's BLAS as geomask's command line sets it up (geomask.cli._one_blas_thread)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def gdal_copy(scene: Path, rois: Path, out: Path, threads: int) -> None:
    """The I/O floor: GDAL decodes and re-encodes every tile, with ``threads`` threads."""
    import rasterio
    import rasterio.shutil

    with rasterio.Env(NUM_THREADS=str(threads)):
        rasterio.shutil.copy(scene, out, **CREATION, NUM_THREADS=str(threads))


def floor(scene: Path, rois: Path, out: Path, threads: int) -> None:
    """The big scene's physical floor: ``cp`` of the file, then decode and re-encode only the tiles the
    ROIs touch (written back in place, as a tile-copying writer would), with ``threads`` threads."""
    import shutil

    _one_blas_thread()  # a bound: without the spinning BLAS thread, as geomask runs
    import numpy as np
    import rasterio
    from rasterio.features import rasterize
    from rasterio.windows import Window

    shutil.copyfile(scene, out)
    with rasterio.Env(NUM_THREADS=str(threads), GDAL_NUM_THREADS=str(threads)):
        with rasterio.open(scene) as ds:
            tile = ds.block_shapes[0][0]
            rows, cols = -(-ds.height // tile), -(-ds.width // tile)
            tiles = _tile_mask(ds, rois, rows, cols, rasterize)
        with rasterio.open(out, "r+", NUM_THREADS=str(threads)) as dst:
            for r, c in zip(*np.nonzero(tiles), strict=True):
                window = Window(c * tile, r * tile, tile, tile).intersection(
                    Window(0, 0, dst.width, dst.height)
                )
                dst.write(dst.read(window=window), window=window)
    print(json.dumps({"touched_tiles": int(tiles.sum()), "tiles": int(tiles.size)}), flush=True)


def _tile_mask(ds, rois, rows, cols, rasterize):  # type: ignore[no-untyped-def]
    import geopandas as gpd

    shapes = gpd.read_file(rois, engine="pyogrio").to_crs(ds.crs).geometry
    transform = ds.transform * ds.transform.scale(ds.width / cols, ds.height / rows)
    return rasterize(shapes, out_shape=(rows, cols), transform=transform, all_touched=True).astype(bool)


def _whole_mask(ds: rasterio.io.DatasetReader, rois: Path) -> np.ndarray:
    import geopandas as gpd
    from rasterio.features import rasterize

    shapes = gpd.read_file(rois, engine="pyogrio").to_crs(ds.crs).geometry
    return rasterize(shapes, out_shape=(ds.height, ds.width), transform=ds.transform).astype(bool)


def opencv(scene: Path, rois: Path, out: Path, threads: int) -> None:
    """Whole-image read, OpenCV filter2D per band, composite inside the mask, write."""
    import cv2
    import numpy as np
    import rasterio

    from geomask.kernels import get

    cv2.setNumThreads(threads)
    weights = get("gaussian", sigma=SIGMA, radius=RADIUS).weights.astype(np.float32)
    with rasterio.Env(NUM_THREADS="ALL_CPUS"), rasterio.open(scene) as ds:
        data = ds.read()
        mask = _whole_mask(ds, rois)
        profile = ds.profile | CREATION | {"NUM_THREADS": "ALL_CPUS"}
    for b in range(data.shape[0]):
        filtered = cv2.filter2D(data[b].astype(np.float32), -1, weights, borderType=cv2.BORDER_REFLECT)
        data[b][mask] = np.clip(np.rint(filtered[mask]), 0, 65535).astype(data.dtype)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)


def rioxarray_daskimage(scene: Path, rois: Path, out: Path, threads: int) -> None:
    """rioxarray (dask chunks) + dask_image.ndfilters.convolve + where(mask) + rio.to_raster."""
    import dask
    import dask.array as da
    import rasterio
    import rioxarray
    from dask_image.ndfilters import convolve

    from geomask.kernels import get

    weights = get("gaussian", sigma=SIGMA, radius=RADIUS).weights
    with dask.config.set(scheduler="threads", num_workers=threads):
        arr = rioxarray.open_rasterio(scene, chunks={"band": 1, "x": 2048, "y": 2048}, lock=False)
        with rasterio.open(scene) as ds:
            mask = da.from_array(_whole_mask(ds, rois), chunks=(2048, 2048))
        bands = []
        for b in range(arr.sizes["band"]):
            band = arr.data[b]
            filtered = convolve(band.astype("float64"), weights, mode="reflect")
            bands.append(da.where(mask, da.clip(da.rint(filtered), 0, 65535).astype(band.dtype), band))
        result = arr.copy(data=da.stack(bands))
        options = {"tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "deflate"}
        result.rio.to_raster(out, **options, NUM_THREADS="ALL_CPUS", lock=True)


PIPELINE = """\
input: {scene}
mask:
  vector: {rois}
kernel: {{name: gaussian, sigma: {sigma}, radius: {radius}}}
output:
  path: {out}
  format: GTiff
  compress: deflate
  overwrite: true
"""

PROFILE = """\
scheduler: {scheduler}
workers: {threads}
window_size: 1024
gdal: {{GDAL_CACHEMAX: 512}}
creation_options: {{NUM_THREADS: {threads}}}
"""


def geomask_run(scene: Path, rois: Path, out: Path, threads: int) -> None:
    """``geomask run PIPELINE --profile PROFILE --quiet``, in this process.

    The profile is ``configs/local.yaml`` (the default settings) with ``workers`` and the
    writer's ``NUM_THREADS`` set to ``threads``, so a 1-thread run uses one core throughout.
    """
    from geomask.cli import run_command  # what the geomask command runs, without its os._exit

    with tempfile.TemporaryDirectory() as tmp:
        pipeline = Path(tmp) / "bench.yaml"
        paths = {"scene": scene.resolve(), "rois": rois.resolve(), "out": out.resolve()}
        pipeline.write_text(PIPELINE.format(**paths, sigma=SIGMA, radius=RADIUS))
        profile = Path(tmp) / "profile.yaml"
        scheduler = os.environ.get("BENCH_SCHEDULER", "threads")  # synchronous: for profiling
        profile.write_text(PROFILE.format(threads=threads, scheduler=scheduler))
        code = run_command(["run", str(pipeline), "--profile", str(profile), "--quiet"])
        if code:
            raise SystemExit(code)


def gdal_copy_batch(scenes: Path, rois: Path, out: Path, threads: int) -> None:
    """The batch's floor: every scene of the glob ``scenes`` copied by GDAL, in a loop, in this process."""
    import glob

    for path in sorted(glob.glob(str(scenes))):
        gdal_copy(Path(path), rois, out / Path(path).name, threads)


def batch_bound(scenes: Path, rois: Path, out: Path, threads: int) -> None:
    """The batch's bound for geomask: what a run must do at minimum, in one process.

    Imports what a run's path needs (rasterio, pyogrio with geopandas, geomask's config models),
    reads the ROI file once, then decodes and re-encodes every scene's tiles (the ROIs touch them
    all) with two scenes in flight, each encoding on ``threads // 2`` threads, as geomask does. No
    planning, mask, filter, checks, lock, tags or rename: geomask minus this is its own overhead.
    """
    import glob
    from concurrent.futures import ThreadPoolExecutor

    _one_blas_thread()  # a bound: without the spinning BLAS thread, as geomask runs
    import geopandas as gpd
    import rasterio

    import geomask.config  # noqa: F401  (the pipeline's models: a run validates its YAML with them)

    gpd.read_file(rois, engine="pyogrio")
    encoding = str(max(1, threads // 2))

    def one(path: str) -> None:
        with rasterio.open(path) as src:
            data = src.read()
            profile = src.profile | CREATION | {"NUM_THREADS": encoding}
        with rasterio.open(out / Path(path).name, "w", **profile) as dst:
            dst.write(data)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one, sorted(glob.glob(str(scenes)))))


def batch_core(scenes: Path, rois: Path, out: Path, threads: int) -> None:
    """The batch's work itself, by hand in one process: ``batch_bound`` plus the mask and the filter.

    As ``batch_bound`` (the same imports, the ROI file read once, two scenes in flight, each
    encoding on ``threads // 2`` threads), and per scene: the ROIs reprojected to the scene's CRS,
    rasterized, and the 5x5 gaussian applied inside them in place with geomask's array API
    (``masked_convolve``, the scene's nodata honoured), before the write. No planning, windows,
    checks, lock, tags or rename: geomask_batch minus this is what geomask's run adds.
    """
    import glob
    from concurrent.futures import ThreadPoolExecutor

    _one_blas_thread()
    import geopandas as gpd
    import rasterio
    from rasterio.features import rasterize

    import geomask.config  # noqa: F401  (the pipeline's models: a run validates its YAML with them)
    from geomask.convolve import masked_convolve
    from geomask.kernels import get

    frame = gpd.read_file(rois, engine="pyogrio")
    kernel = get("gaussian", sigma=SIGMA, radius=RADIUS)
    encoding = str(max(1, threads // 2))

    def one(path: str) -> None:
        with rasterio.open(path) as src:
            data = src.read()
            profile = src.profile | CREATION | {"NUM_THREADS": encoding}
            shapes = frame.to_crs(src.crs).geometry
            mask = rasterize(shapes, out_shape=(src.height, src.width), transform=src.transform)
        masked_convolve(data, kernel, mask.astype(bool), nodata=src.nodata, out=data, threads=1)
        with rasterio.open(out / Path(path).name, "w", **profile) as dst:
            dst.write(data)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one, sorted(glob.glob(str(scenes)))))


BATCH_PIPELINE = """\
input: {scene}
mask:
  vector: {rois}
kernel: {{name: gaussian, sigma: {sigma}, radius: {radius}}}
output:
  path: {out}/{{stem}}.tif
  format: GTiff
  compress: deflate
  overwrite: true
"""


def geomask_batch(scenes: Path, rois: Path, out: Path, threads: int) -> None:
    """``geomask run`` on a pipeline whose input is the glob ``scenes``: one batch, in this process.

    The scheduler is ``$BENCH_SCHEDULER`` (default threads).
    """
    from geomask.cli import run_command  # what the geomask command runs, without its os._exit

    with tempfile.TemporaryDirectory() as tmp:
        pipeline = Path(tmp) / "batch.yaml"
        paths = {"scene": scenes.resolve(), "rois": rois.resolve(), "out": out.resolve()}
        pipeline.write_text(BATCH_PIPELINE.format(**paths, sigma=SIGMA, radius=RADIUS))
        profile = Path(tmp) / "profile.yaml"
        scheduler = os.environ.get("BENCH_SCHEDULER", "threads")
        profile.write_text(PROFILE.format(threads=threads, scheduler=scheduler))
        code = run_command(["run", str(pipeline), "--profile", str(profile), "--quiet"])
        if code:
            raise SystemExit(code)


JOBS = {
    "gdal_copy": gdal_copy,
    "floor": floor,
    "gdal_copy_batch": gdal_copy_batch,
    "batch_bound": batch_bound,
    "batch_core": batch_core,
    "geomask_batch": geomask_batch,
    "opencv": opencv,
    "rioxarray_daskimage": rioxarray_daskimage,
    "geomask": geomask_run,
}


def main() -> None:
    name, scene, rois, out = sys.argv[1:5]
    threads = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    cpus = os.environ.get("BENCH_CPUS")  # e.g. "0": run on these cores only (the 1-core baseline)
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
    start = time.perf_counter()
    if os.environ.get("BENCH_TWICE"):  # a batch job (OUT a folder), run twice: what start-up costs
        first, second = Path(out) / "first", Path(out) / "second"
        first.mkdir()
        second.mkdir()
        JOBS[name](Path(scene), Path(rois), first, threads)
        middle = time.perf_counter()
        JOBS[name](Path(scene), Path(rois), second, threads)
        end = time.perf_counter()
        info = {"job": name, "seconds": end - start, "first": middle - start, "second": end - middle}
        print(json.dumps(info), flush=True)
    else:
        JOBS[name](Path(scene), Path(rois), Path(out), threads)
        print(json.dumps({"job": name, "seconds": time.perf_counter() - start}), flush=True)
    # Every job ends as the geomask console script does (geomask.cli.main): without the
    # interpreter's module teardown, which does nothing for a finished job.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
