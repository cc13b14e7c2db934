"""One benchmark job per process: ``python -m benchmarks.jobs NAME SCENE ROIS OUT [THREADS]``.

Each job prints one JSON line: seconds and peak RSS (MiB) of the process and its children.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import rasterio

CREATION = {"driver": "GTiff", "tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "deflate"}
SIGMA, RADIUS = 1.0, 2  # a 5x5 gaussian


def gdal_copy(scene: Path, rois: Path, out: Path, threads: int) -> None:
    import rasterio.shutil

    with rasterio.Env(NUM_THREADS="ALL_CPUS"):
        rasterio.shutil.copy(scene, out, **CREATION, NUM_THREADS="ALL_CPUS")


def _whole_mask(ds: rasterio.io.DatasetReader, rois: Path) -> np.ndarray:
    import geopandas as gpd
    from rasterio.features import rasterize

    shapes = gpd.read_file(rois, engine="pyogrio").to_crs(ds.crs).geometry
    return rasterize(shapes, out_shape=(ds.height, ds.width), transform=ds.transform).astype(bool)


def opencv(scene: Path, rois: Path, out: Path, threads: int) -> None:
    import cv2

    from geomask.kernels import get

    cv2.setNumThreads(threads)
    weights = get("gaussian", sigma=SIGMA, radius=RADIUS).weights.astype(np.float32)
    with rasterio.open(scene) as ds:
        data = ds.read()
        mask = _whole_mask(ds, rois)
        profile = ds.profile | CREATION
    for b in range(data.shape[0]):
        filtered = cv2.filter2D(data[b].astype(np.float32), -1, weights, borderType=cv2.BORDER_REFLECT)
        data[b][mask] = np.clip(np.rint(filtered[mask]), 0, 65535).astype(data.dtype)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)


def rioxarray_daskimage(scene: Path, rois: Path, out: Path, threads: int) -> None:
    import dask
    import dask.array as da
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
        result.rio.to_raster(out, tiled=True, blockxsize=512, blockysize=512, compress="deflate", lock=True)


def geomask_run(scene: Path, rois: Path, out: Path, threads: int) -> None:
    from geomask.engine import OutputSpec, RunOptions, Step, process_scene
    from geomask.kernels import get
    from geomask.masks import VectorSource

    process_scene(
        scene,
        OutputSpec(out, overwrite=True),
        [Step(get("gaussian", sigma=SIGMA, radius=RADIUS), VectorSource(rois))],
        options=RunOptions(workers=threads),
    )


JOBS = {
    "gdal_copy": gdal_copy,
    "opencv": opencv,
    "rioxarray_daskimage": rioxarray_daskimage,
    "geomask": geomask_run,
}


def main() -> None:
    name, scene, rois, out = sys.argv[1:5]
    threads = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    start = time.perf_counter()
    JOBS[name](Path(scene), Path(rois), Path(out), threads)
    seconds = time.perf_counter() - start
    peak = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    print(json.dumps({"job": name, "seconds": seconds, "peak_mib": peak / 1024}))


if __name__ == "__main__":
    main()
