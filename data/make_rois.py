"""Write the sample regions of interest over RGB.byte.tif: roi_fields.geojson and roi_fields.gpkg.

Five hand-placed features with attributes ``id`` and ``landcover`` (forest, urban, water), one of them a
multipolygon and one a polygon with a hole, drawn in EPSG:32618 (the scene's CRS) near the centre of the
scene's valid (non-zero) area, densified to 1 km segments and stored in EPSG:4326 so that using them
exercises reprojection. Deterministic: rerunning rewrites the same features.

Run from anywhere: ``python data/make_rois.py``.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pyogrio
import shapely
from shapely.geometry import MultiPolygon, Polygon

HERE = Path(__file__).resolve().parent
SCENE_CRS = "EPSG:32618"
STORED_CRS = "EPSG:4326"

FEATURES: list[tuple[int, str, Polygon | MultiPolygon]] = [
    (
        1,
        "forest",
        Polygon(
            [(160000, 2760000), (215000, 2755000), (222000, 2792000), (170000, 2796000)],
            holes=[[(180000, 2770000), (200000, 2770000), (200000, 2782000), (180000, 2782000)]],
        ),
    ),
    (
        2,
        "urban",
        MultiPolygon(
            [
                Polygon([(240000, 2770000), (260000, 2770000), (260000, 2790000), (240000, 2790000)]),
                Polygon([(270000, 2755000), (285000, 2755000), (285000, 2768000), (270000, 2768000)]),
            ]
        ),
    ),
    (
        3,
        "water",
        Polygon(
            [(185000, 2690000), (215000, 2685000), (228000, 2705000), (205000, 2722000), (182000, 2710000)]
        ),
    ),
    (
        4,
        "forest",
        Polygon(
            [(235000, 2660000), (290000, 2665000), (295000, 2700000), (262000, 2712000), (238000, 2695000)]
        ),
    ),
    (
        5,
        "urban",
        Polygon([(150000, 2655000), (175000, 2652000), (178000, 2675000), (152000, 2678000)]),
    ),
]


def main() -> None:
    frame = gpd.GeoDataFrame(
        {"id": [fid for fid, _, _ in FEATURES], "landcover": [cover for _, cover, _ in FEATURES]},
        geometry=[shapely.segmentize(geom, 1000.0) for _, _, geom in FEATURES],
        crs=SCENE_CRS,
    ).to_crs(STORED_CRS)
    # A fixed timestamp keeps the GeoPackage's metadata identical between runs.
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "2024-01-01T00:00:00.000Z"})
    for name, driver, options in (
        ("roi_fields.geojson", "GeoJSON", {"COORDINATE_PRECISION": 7}),
        ("roi_fields.gpkg", "GPKG", {}),
    ):
        path = HERE / name
        path.unlink(missing_ok=True)
        frame.to_file(path, driver=driver, engine="pyogrio", layer="roi_fields", **options)
        print(f"wrote {path} ({len(frame)} features, {STORED_CRS})")


if __name__ == "__main__":
    main()
