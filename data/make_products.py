"""Write two small synthetic satellite products with their STAC Items: data/S2/ and data/LC09/.

Both are **synthetic** (no download, no real image): a deterministic landscape (fields, a forest, a
lake, bare soil, a cloud with a thinner edge and its shadow, a thin cirrus veil, a snow patch with a
saturated top, a ridge's cast shadow and a nodata corner where the orbit ends) rendered as the bands of

* ``S2/``: a Sentinel-2 L2A-like product, UTM 33N (EPSG:32633): ``B04`` (red) and ``B08`` (nir) at
  10 m (400 x 400 pixels), ``B11`` (swir16) and ``SCL`` (scene classification) at 20 m (200 x 200
  pixels). Reflectances are uint16 digital numbers with the processing-baseline-04.00 convention
  (``reflectance = DN * 0.0001 - 0.1``, nodata 0); ``SCL`` uses the real class codes 0-11
  (:data:`SCL_CLASSES`).
* ``LC09/``: a Landsat Collection 2 Level-2-like product, same area and CRS: ``SR_B4`` (red),
  ``SR_B5`` (nir) and ``QA_PIXEL`` at 30 m (134 x 134 pixels). Reflectances use the Collection 2 scale
  (``reflectance = DN * 0.0000275 - 0.2``, nodata 0); ``QA_PIXEL`` uses the real bit layout
  (:data:`QA_BITS`: bit 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 cloud shadow, 5 snow, 6 clear,
  7 water, 8-9 cloud confidence, 10-11 cloud-shadow confidence, 12-13 snow/ice confidence, 14-15
  cirrus confidence; a confidence is 0 none, 1 low, 2 medium, 3 high).

Each band is a one-band Cloud-Optimized GeoTIFF (deflate, 128-pixel tiles); each folder holds an
``item.json`` written by pystac with the projection (``proj:code``, ``proj:shape``,
``proj:transform`` per asset), eo (``eo:bands`` common names), raster (``raster:bands`` nodata,
scale, offset, data type) and file (``file:size``, ``file:checksum``) extensions, and relative asset
hrefs.

Deterministic: rerunning rewrites the same pixels and the same Items (``python data/make_products.py``;
``python data/make_products.py OUTDIR`` writes elsewhere).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
from pathlib import Path

import numpy as np
import pystac
import rasterio
from affine import Affine
from pystac.extensions.eo import Band, EOExtension
from pystac.extensions.file import FileExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension
from rasterio.warp import transform_geom

HERE = Path(__file__).resolve().parent
CRS = "EPSG:32633"
WEST, NORTH = 499980.0, 5200020.0  # the corner of a real Sentinel-2 tile (33TWN); 4 km a side here
SIDE_M = 4000.0
SEED = 17

SCL_CLASSES = {
    0: "no data",
    1: "saturated or defective",
    2: "dark area pixels (casted shadows)",
    3: "cloud shadows",
    4: "vegetation",
    5: "not vegetated",
    6: "water",
    7: "unclassified",
    8: "cloud medium probability",
    9: "cloud high probability",
    10: "thin cirrus",
    11: "snow or ice",
}
"""The Sentinel-2 L2A scene classification (SCL) codes."""

QA_BITS = {
    0: "fill",
    1: "dilated cloud",
    2: "cirrus",
    3: "cloud",
    4: "cloud shadow",
    5: "snow",
    6: "clear",
    7: "water",
    8: "cloud confidence (2 bits)",
    10: "cloud shadow confidence (2 bits)",
    12: "snow/ice confidence (2 bits)",
    14: "cirrus confidence (2 bits)",
}
"""The Landsat Collection 2 QA_PIXEL bits."""

# Land cover of the synthetic landscape, on a 10 m grid, and the surface reflectance of each cover.
NODATA, VEG, FOREST, BARE, WATER, CLOUD, SHADOW, CIRRUS, SNOW, CLOUD_EDGE, DARK, SATURATED = range(12)
# (red, nir, swir16) reflectance of each cover
REFLECTANCE = {
    VEG: (0.05, 0.40, 0.20),
    FOREST: (0.03, 0.30, 0.14),
    BARE: (0.18, 0.26, 0.32),
    WATER: (0.03, 0.02, 0.01),
    CLOUD: (0.55, 0.58, 0.45),
    SHADOW: (0.02, 0.10, 0.05),
    CIRRUS: (0.12, 0.42, 0.24),
    SNOW: (0.80, 0.75, 0.10),
    CLOUD_EDGE: (0.35, 0.45, 0.35),
    DARK: (0.015, 0.06, 0.03),
    SATURATED: (6.0, 6.0, 6.0),  # clipped to 65535
}
SCL_OF = {
    NODATA: 0,
    SATURATED: 1,
    DARK: 2,
    SHADOW: 3,
    VEG: 4,
    FOREST: 4,
    BARE: 5,
    WATER: 6,
    CLOUD_EDGE: 8,
    CLOUD: 9,
    CIRRUS: 10,
    SNOW: 11,
}


def _qa(*, fill=0, dilated=0, cirrus=0, cloud=0, shadow=0, snow=0, clear=0, water=0, conf=(1, 1, 1, 1)):
    """A QA_PIXEL value from its flags and the four 2-bit confidences (cloud, shadow, snow, cirrus)."""
    flags = fill | dilated << 1 | cirrus << 2 | cloud << 3 | shadow << 4 | snow << 5 | clear << 6 | water << 7
    return flags | conf[0] << 8 | conf[1] << 10 | conf[2] << 12 | conf[3] << 14


QA_OF = {
    NODATA: _qa(fill=1, conf=(0, 0, 0, 0)),  # 1
    VEG: _qa(clear=1),  # 21824
    FOREST: _qa(clear=1),
    BARE: _qa(clear=1),
    DARK: _qa(clear=1),
    SATURATED: _qa(clear=1),  # Landsat flags saturation in QA_RADSAT, not here
    WATER: _qa(clear=1, water=1),  # 21952
    CLOUD: _qa(cloud=1, conf=(3, 1, 1, 1)),  # 22280
    CLOUD_EDGE: _qa(dilated=1, conf=(2, 1, 1, 1)),  # 22018: dilated cloud, medium confidence
    SHADOW: _qa(shadow=1, conf=(1, 3, 1, 1)),  # 23824
    CIRRUS: _qa(cirrus=1, conf=(1, 1, 1, 3)),  # 54532
    SNOW: _qa(snow=1, conf=(1, 1, 3, 1)),  # 29984
}
DATETIME = dt.datetime(2024, 7, 15, 10, 6, 29, tzinfo=dt.timezone.utc)


def landscape(pixel: float) -> np.ndarray:
    """The land cover on a ``pixel``-metre grid over the 4 km square (uint8 codes above).

    Shapes are defined in metres from the north-west corner, so every resolution sees the same
    landscape (sampled at pixel centres).
    """
    n = round(SIDE_M / pixel)
    centres = (np.arange(n) + 0.5) * pixel
    y, x = np.meshgrid(centres, centres, indexing="ij")  # metres south and east of the corner
    cover = np.full((n, n), VEG, dtype=np.uint8)
    cover[((x // 500 + y // 700) % 3) == 1] = BARE  # a field pattern
    cover[(x > 2600) & (y < 1800)] = FOREST
    cover[(x - 900) ** 2 / 500**2 + (y - 2900) ** 2 / 330**2 < 1] = WATER
    cover[np.hypot(x - 3300, y - 3300) < 250] = SNOW
    cover[(np.abs(x - 1900 - 0.3 * (y - 2000)) < 180) & (y > 600) & (y < 3400)] = CIRRUS
    cover[np.hypot(x - 1200, y - 2000) < 350] = SHADOW  # the cloud's shadow, offset to the south-west
    cover[(np.abs(y - 3700) < 60) & (x > 1800) & (x < 2800)] = DARK  # a ridge's cast shadow
    cover[np.hypot(x - 3300, y - 3300) < 45] = SATURATED  # the brightest snow
    cover[np.hypot(x - 1500, y - 1600) < 440] = CLOUD_EDGE
    cover[np.hypot(x - 1500, y - 1600) < 360] = CLOUD
    cover[x + y < 500] = NODATA  # the edge of the orbit's swath
    return cover


def reflectance_dn(cover: np.ndarray, band: int, scale: float, offset: float, seed: int) -> np.ndarray:
    """uint16 digital numbers of band ``band`` (0 red, 1 nir, 2 swir16): smooth cover values plus noise."""
    rng = np.random.default_rng(seed)
    refl = np.zeros(cover.shape, dtype=np.float64)
    for code, values in REFLECTANCE.items():
        refl[cover == code] = values[band]
    n = cover.shape[0]
    ramp = np.linspace(-0.01, 0.01, n)
    refl = refl + ramp[None, :] + rng.normal(0.0, 0.004, cover.shape)
    dn = np.clip(np.round((refl - offset) / scale), 1, 65535).astype(np.uint16)
    dn[cover == NODATA] = 0
    return dn


def write_cog(path: Path, array: np.ndarray, transform, nodata: int | None) -> None:
    """One-band COG: deflate with the horizontal predictor, 128-pixel tiles, nearest overviews."""
    profile = {
        "driver": "COG",
        "width": array.shape[1],
        "height": array.shape[0],
        "count": 1,
        "dtype": array.dtype.name,
        "crs": CRS,
        "transform": transform,
        "nodata": nodata,
        "compress": "DEFLATE",
        "predictor": 2,
        "blocksize": 128,
        "overview_resampling": "nearest",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array, 1)


def _file_fields(asset: pystac.Asset, path: Path) -> None:
    data = path.read_bytes()
    file_ext = FileExtension.ext(asset, add_if_missing=True)
    file_ext.size = len(data)
    file_ext.checksum = "1220" + hashlib.sha256(data).hexdigest()  # multihash sha2-256


def _geometry() -> dict:
    ring = [(WEST, NORTH), (WEST + SIDE_M, NORTH), (WEST + SIDE_M, NORTH - SIDE_M), (WEST, NORTH - SIDE_M)]
    square = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
    return transform_geom(CRS, "EPSG:4326", square, precision=6)


def _item(item_id: str, properties: dict) -> pystac.Item:
    geometry = _geometry()
    xs = [p[0] for p in geometry["coordinates"][0]]
    ys = [p[1] for p in geometry["coordinates"][0]]
    item = pystac.Item(
        id=item_id,
        geometry=geometry,
        bbox=[min(xs), min(ys), max(xs), max(ys)],
        datetime=DATETIME,
        properties=properties,
    )
    ProjectionExtension.ext(item, add_if_missing=True).code = CRS
    return item


def _add_band_asset(
    item, folder, key, array, pixel, *, title, common_name=None, raster=None, roles=("data",)
):
    transform = Affine(pixel, 0.0, WEST, 0.0, -pixel, NORTH)
    path = folder / f"{key}.tif"
    write_cog(path, array, transform, raster.get("nodata") if raster else None)
    asset = pystac.Asset(href=f"./{key}.tif", media_type=pystac.MediaType.COG, roles=list(roles), title=title)
    item.add_asset(key, asset)
    proj = ProjectionExtension.ext(asset, add_if_missing=True)
    proj.shape = list(array.shape)
    proj.transform = list(transform)[:6]
    if common_name is not None:
        EOExtension.ext(asset, add_if_missing=True).bands = [Band.create(name=key, common_name=common_name)]
    if raster is not None:
        RasterExtension.ext(asset, add_if_missing=True).bands = [RasterBand.create(**raster)]
    _file_fields(asset, path)


def make_s2(out: Path) -> pystac.Item:
    """The Sentinel-2 L2A-like product in ``out`` (see the module docstring)."""
    out.mkdir(parents=True, exist_ok=True)
    item = _item(
        "S2B_33TWN_20240715_0_L2A",
        {
            "title": "synthetic Sentinel-2 L2A-like product made by geomask's data/make_products.py",
            "platform": "sentinel-2b",
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "eo:cloud_cover": 0.0,
        },
    )
    scale, offset = 0.0001, -0.1
    reflect = {
        "nodata": 0,
        "scale": scale,
        "offset": offset,
        "data_type": DataType.UINT16,
        "spatial_resolution": 0,
    }
    cover10, cover20 = landscape(10.0), landscape(20.0)
    bands = [
        ("B04", "red", 0, 10.0, cover10),
        ("B08", "nir", 1, 10.0, cover10),
        ("B11", "swir16", 2, 20.0, cover20),
    ]
    for i, (key, common, index, pixel, cover) in enumerate(bands):
        dn = reflectance_dn(cover, index, scale, offset, SEED + i)
        fields = {**reflect, "spatial_resolution": pixel}
        title = f"{common} - {pixel:g}m"
        _add_band_asset(item, out, key, dn, pixel, title=title, common_name=common, raster=fields)
    scl = np.vectorize(SCL_OF.get, otypes=[np.uint8])(cover20)
    scl[(cover20 == VEG) & (np.arange(200)[None, :] % 97 == 0)] = 7  # a few unclassified columns
    item.add_asset(
        "thumbnail",
        pystac.Asset(
            href="https://example.invalid/S2B_33TWN_20240715_0_L2A/thumbnail.jpg",
            media_type=pystac.MediaType.JPEG,
            roles=["thumbnail"],
            title="Thumbnail (not shipped: an example of a remote asset)",
        ),
    )
    _add_band_asset(
        item,
        out,
        "SCL",
        scl,
        20.0,
        title="Scene classification map (SCL)",
        raster={"nodata": 0, "data_type": DataType.UINT8, "spatial_resolution": 20.0},
        roles=("data",),
    )
    cloudy = np.isin(scl, [8, 9, 10]).sum() / np.count_nonzero(scl)
    item.properties["eo:cloud_cover"] = round(float(cloudy) * 100, 2)
    EOExtension.ext(item, add_if_missing=True)
    RasterExtension.add_to(item)
    FileExtension.add_to(item)
    item.set_self_href(str(out / "item.json"))
    item.make_asset_hrefs_relative()
    item.save_object(include_self_link=False)
    return item


def make_landsat(out: Path) -> pystac.Item:
    """The Landsat C2 L2-like product in ``out`` (see the module docstring)."""
    out.mkdir(parents=True, exist_ok=True)
    item = _item(
        "LC09_L2SP_190028_20240715_20240716_02_T1",
        {
            "title": "synthetic Landsat C2 L2-like product made by geomask's data/make_products.py",
            "platform": "landsat-9",
            "instruments": ["oli", "tirs"],
            "eo:cloud_cover": 0.0,
        },
    )
    scale, offset = 0.0000275, -0.2
    cover = landscape(30.0)
    for i, (key, common, index) in enumerate([("SR_B4", "red", 0), ("SR_B5", "nir08", 1)]):
        dn = reflectance_dn(cover, index, scale, offset, SEED + 10 + i)
        raster = {
            "nodata": 0,
            "scale": scale,
            "offset": offset,
            "data_type": DataType.UINT16,
            "spatial_resolution": 30.0,
        }
        title = f"{'Red' if common == 'red' else 'Near Infrared (NIR)'} Band ({key})"
        _add_band_asset(item, out, key, dn, 30.0, title=title, common_name=common, raster=raster)
    qa = np.vectorize(QA_OF.get, otypes=[np.uint16])(cover)
    _add_band_asset(
        item,
        out,
        "QA_PIXEL",
        qa,
        30.0,
        title="Pixel Quality Assessment Band",
        raster={"nodata": 1, "data_type": DataType.UINT16, "spatial_resolution": 30.0},
        roles=("cloud", "cloud-shadow", "snow-ice", "water-mask"),
    )
    cloudy = ((qa & 0b1110) != 0).sum() / np.count_nonzero(qa != 1)
    item.properties["eo:cloud_cover"] = round(float(cloudy) * 100, 2)
    EOExtension.ext(item, add_if_missing=True)
    RasterExtension.add_to(item)
    FileExtension.add_to(item)
    item.set_self_href(str(out / "item.json"))
    item.make_asset_hrefs_relative()
    item.save_object(include_self_link=False)
    return item


def main(root: Path = HERE) -> None:
    """Write ``root/S2`` and ``root/LC09``."""
    make_s2(root / "S2")
    make_landsat(root / "LC09")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
