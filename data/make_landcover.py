"""Write landcover.tif: a small toy class raster (a "segmentation") over RGB.byte.tif, in another CRS.

The classes are thresholds on the scene's own brightness, NOT a real land-cover product: they only give
the examples and tests a deterministic class raster that lines up with the image. RGB.byte.tif (UTM 18N,
~300 m pixels) is averaged onto a lon/lat grid (EPSG:4326, 0.004 degree, about 420 x 445 m), then

* 0 nodata: no valid scene pixel under the cell;
* 1 "dark" (water, shadow): mean of the three bands < 40;
* 2 "green" (vegetation-like): green band > red band + 15 and not dark;
* 3 "bright" (cloud, bare, urban-like): mean >= 140;
* 4 "other": everything else.

Deterministic: rerunning rewrites the same pixels (``python data/make_landcover.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.warp import reproject, transform_bounds

HERE = Path(__file__).resolve().parent
SCENE = HERE / "RGB.byte.tif"
OUT = HERE / "landcover.tif"
CRS = "EPSG:4326"
RES = 0.004
CLASSES = {0: "nodata", 1: "dark", 2: "green", 3: "bright", 4: "other"}


def main() -> None:
    with rasterio.open(SCENE) as src:
        west, south, east, north = transform_bounds(src.crs, CRS, *src.bounds)
        # A grid snapped to whole multiples of RES, so reruns and other tools agree on it.
        west, north = np.floor(west / RES) * RES, np.ceil(north / RES) * RES
        width = int(np.ceil((east - west) / RES))
        height = int(np.ceil((north - south) / RES))
        transform = from_origin(west, north, RES, RES)
        rgb = np.zeros((3, height, width), dtype=np.float32)
        for band in range(3):
            reproject(
                rasterio.band(src, band + 1),
                rgb[band],
                src_nodata=src.nodata,
                dst_transform=transform,
                dst_crs=CRS,
                dst_nodata=0,
                resampling=Resampling.average,
            )
    red, green, _ = rgb
    mean = rgb.mean(axis=0)
    classes = np.full((height, width), 4, dtype=np.uint8)
    classes[mean >= 140] = 3
    classes[(green > red + 15) & (mean < 140)] = 2
    classes[mean < 40] = 1
    classes[(rgb == 0).all(axis=0)] = 0
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": "uint8",
        "crs": CRS,
        "transform": transform,
        "nodata": 0,
        "tiled": True,
        "blockxsize": 128,
        "blockysize": 128,
        "compress": "deflate",
    }
    OUT.unlink(missing_ok=True)
    with rasterio.open(OUT, "w", **profile) as dst:
        dst.write(classes, 1)
        dst.set_band_description(1, "toy classes: " + ", ".join(f"{k} {v}" for k, v in CLASSES.items()))
        dst.update_tags(SOURCE="data/make_landcover.py from data/RGB.byte.tif")
    counts = {CLASSES[int(c)]: int(n) for c, n in zip(*np.unique(classes, return_counts=True), strict=True)}
    print(f"wrote {OUT} ({width} x {height}, {CRS}, {RES} deg): {counts}")


if __name__ == "__main__":
    main()
