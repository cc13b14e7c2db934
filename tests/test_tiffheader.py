"""geomask.tiffheader answers as rasterio does, or leaves the file to rasterio (None).

Compared over every GeoTIFF of the repository (data/, tests/data/, ../shared/data-real/ when present)
and files generated here with rasterio (every dtype, bands, tiles and strips, BigTIFF, byte order,
codecs, nodata, alpha, internal masks), plus headers rasterio cannot write (tifffile, hand-made).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import tifffile
from rasterio.enums import Interleaving

from geomask.config.scenes import _header
from geomask.io import MAX_BLOCK_BYTES, block_problem
from geomask.tiffheader import TiffHeader, read_header

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(
    p
    for folder in (ROOT / "data", ROOT / "tests" / "data", ROOT.parent / "shared" / "data-real")
    if folder.is_dir()
    for p in folder.rglob("*")
    if p.suffix.lower() in (".tif", ".tiff")
)

DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64"]


def _gdal_block_bytes(ds: Any) -> int:
    """What geomask.io.block_problem compares with MAX_BLOCK_BYTES."""
    bh, bw = (int(v) for v in ds.block_shapes[0])
    bands = ds.count if ds.interleaving == Interleaving.pixel else 1
    return min(bh, ds.height) * min(bw, ds.width) * bands * np.dtype(ds.dtypes[0]).itemsize


def _assert_same(path: Path) -> TiffHeader | None:
    """read_header agrees with rasterio on ``path`` (or gives None), and so does validate's _header."""
    header = read_header(path)
    try:
        ds = rasterio.open(path)
    except rasterio.errors.RasterioIOError:
        assert header is None, path  # a file GDAL does not open is never answered for it
        with pytest.raises(rasterio.errors.RasterioIOError):
            _header(path, False)
        return None
    with ds:
        if header is not None:
            assert (header.count, header.dtype) == (ds.count, ds.dtypes[0]), path
            assert set(ds.dtypes) == {header.dtype}, path
            assert (header.height, header.width) == (ds.height, ds.width), path
            assert header.max_block_bytes() >= _gdal_block_bytes(ds), path
        expected = (ds.count, ds.dtypes[0], (ds.height, ds.width), None, block_problem(ds))
    assert _header(path, False) == expected, path
    return header


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_shipped_geotiffs(path: Path) -> None:
    _assert_same(path)


def test_shipped_plain_geotiffs_are_read_without_rasterio() -> None:
    """The demo scene and class raster are answered by the reader (else validate loads rasterio)."""
    assert read_header(ROOT / "data" / "RGB.byte.tif") == TiffHeader(791, 718, 3, "uint8", (3, 791), True)
    assert read_header(ROOT / "data" / "landcover.tif") is not None


def _write(path: Path, dtype: str, count: int = 1, size: tuple[int, int] = (37, 45), **options: Any) -> Path:
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "height": size[0],
        "width": size[1],
        "count": count,
        "dtype": dtype,
        "crs": "EPSG:32618",
        "transform": rasterio.transform.from_origin(300000.0, 5000000.0, 30.0, 30.0),
        **options,
    }
    data = (np.arange(count * size[0] * size[1]) % 100).astype(dtype).reshape(count, *size)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


LAYOUTS: dict[str, dict[str, Any]] = {
    "striped": {},
    "one-strip": {"blockysize": 100},
    "strips-of-8": {"blockysize": 8},
    "tiled": {"tiled": True, "blockxsize": 16, "blockysize": 32},
    "bigtiff": {"bigtiff": "YES", "tiled": True, "blockxsize": 16, "blockysize": 16},
    "big-endian": {"endianness": "BIG"},
    "big-endian-bigtiff": {"endianness": "BIG", "bigtiff": "YES"},
    "deflate": {"compress": "deflate", "predictor": 2},
    "lzw": {"compress": "lzw"},
    "zstd": {"compress": "zstd", "tiled": True, "blockxsize": 16, "blockysize": 16},
    "lzma": {"compress": "lzma"},
    "packbits": {"compress": "packbits"},
    "lerc": {"compress": "lerc"},
    "nodata": {"nodata": 7},
    "sparse": {"sparse_ok": True, "tiled": True, "blockxsize": 16, "blockysize": 16},
}


# LERC has no 64-bit integers: those two combinations are not files GDAL can write.
COMBINATIONS = [
    (dtype, layout)
    for dtype in DTYPES
    for layout in sorted(LAYOUTS)
    if not (layout == "lerc" and dtype in ("uint64", "int64"))
]


@pytest.mark.parametrize(("dtype", "layout"), COMBINATIONS)
def test_generated_dtypes_and_layouts(tmp_path: Path, dtype: str, layout: str) -> None:
    header = _assert_same(_write(tmp_path / "a.tif", dtype, **LAYOUTS[layout]))
    if layout != "lerc":  # LERC depends on the GDAL build: rasterio answers
        assert header is not None


@pytest.mark.parametrize(
    ("name", "dtype", "count", "options", "answered"),
    [
        ("rgb-pixel", "uint8", 3, {"photometric": "RGB"}, True),
        ("rgb-band", "uint8", 3, {"photometric": "RGB", "interleave": "band"}, True),
        ("rgba-alpha", "uint8", 4, {"photometric": "RGB", "alpha": "YES"}, True),
        ("gray-alpha", "uint16", 2, {"alpha": "YES"}, True),
        ("five-bands-band", "int16", 5, {"interleave": "band", "tiled": True}, True),
        ("nodata-nan", "float32", 2, {"nodata": float("nan")}, True),
        ("nodata-inf", "float64", 1, {"nodata": float("-inf")}, True),
        ("minisblack-3", "uint8", 3, {"photometric": "MINISBLACK"}, True),
        ("jpeg-ycbcr", "uint8", 3, {"compress": "jpeg", "photometric": "YCBCR"}, False),
        ("jpeg-rgb", "uint8", 3, {"compress": "jpeg"}, False),
        ("webp", "uint8", 3, {"compress": "webp"}, False),
        ("cmyk", "uint8", 4, {"photometric": "CMYK"}, False),
        ("nbits-12", "uint16", 1, {"nbits": 12}, False),
        ("nbits-1", "uint8", 1, {"nbits": 1}, False),
    ],
)
def test_generated_bands_photometric_and_codecs(
    tmp_path: Path, name: str, dtype: str, count: int, options: dict[str, Any], answered: bool
) -> None:
    header = _assert_same(_write(tmp_path / f"{name}.tif", dtype, count, **options))
    assert (header is not None) == answered


def test_internal_mask_and_overviews(tmp_path: Path) -> None:
    """An internal mask (a second IFD) and overviews leave the first IFD's answers unchanged."""
    path = _write(tmp_path / "m.tif", "uint8", 3, size=(64, 64), tiled=True)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "r+") as ds:
        ds.write_mask(np.full((64, 64), 255, np.uint8))
        ds.build_overviews([2, 4])
    assert _assert_same(path) is not None


def test_palette(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.tif", "uint8", photometric="PALETTE")
    with rasterio.open(path, "r+") as ds:
        ds.write_colormap(1, {0: (0, 0, 0, 255), 1: (255, 0, 0, 255)})
    assert _assert_same(path) is not None


@pytest.mark.parametrize(
    ("name", "data", "options"),
    [
        ("float16", np.zeros((20, 30), np.float16), {}),
        ("complex64", np.zeros((20, 30), np.complex64), {}),
        ("bool", np.zeros((20, 30), bool), {}),
        ("rgb-contig", np.zeros((20, 30, 3), np.uint8), {"photometric": "rgb"}),
        (
            "planar-separate",
            np.zeros((3, 20, 30), np.uint16),
            {"photometric": "minisblack", "planarconfig": 2},
        ),
        ("pages", np.zeros((4, 20, 30), np.int32), {"photometric": "minisblack"}),
        ("tile-16", np.zeros((40, 50), np.uint8), {"tile": (16, 16)}),
        ("bigtiff-be", np.zeros((20, 30), ">u2"), {"bigtiff": True}),
        ("extratags", np.zeros((20, 30), np.float32), {"extratags": [(42113, "s", 0, "-9999", True)]}),
    ],
)
def test_tifffile_written(tmp_path: Path, name: str, data: np.ndarray, options: dict[str, Any]) -> None:
    """Files GDAL did not write (other tag orders, types and layouts), and ones it widens or refuses."""
    path = tmp_path / f"{name}.tif"
    tifffile.imwrite(path, data, **options)
    _assert_same(path)


def _classic(entries: list[tuple[int, int, int, int]], order: str = "<") -> bytes:
    """A one-IFD classic TIFF whose entries' values are inline (SHORT / LONG)."""
    head = (b"II" if order == "<" else b"MM") + struct.pack(order + "HI", 42, 8)
    ifd = struct.pack(order + "H", len(entries))
    for tag, kind, count, value in sorted(entries):
        packed = struct.pack(order + ("H" if kind == 3 else "I"), value).ljust(4, b"\0")
        ifd += struct.pack(order + "HHI", tag, kind, count) + packed
    return head + ifd + struct.pack(order + "I", 0) + bytes(64)


BASE = [(256, 3, 1, 8), (257, 3, 1, 4), (258, 3, 1, 8), (262, 3, 1, 1), (273, 4, 1, 8), (279, 4, 1, 32)]


@pytest.mark.parametrize(
    ("name", "entries", "answered"),
    [
        ("minimal", BASE, True),
        ("no-photometric", [e for e in BASE if e[0] != 262], False),
        ("no-strip-offsets", [e for e in BASE if e[0] != 273], False),
        ("zero-width", [(256, 3, 1, 0), *BASE[1:]], False),
        ("reduced-image", [*BASE, (254, 4, 1, 1)], False),
        ("unknown-codec", [*BASE, (259, 3, 1, 60000)], False),
        ("strips-miscounted", [*BASE, (278, 3, 1, 1)], False),
        ("ycbcr", [e for e in BASE if e[0] != 262] + [(262, 3, 1, 6)], False),
    ],
)
def test_hand_made_headers(tmp_path: Path, name: str, entries: list[Any], answered: bool) -> None:
    path = tmp_path / f"{name}.tif"
    path.write_bytes(_classic(entries))
    assert (_assert_same(path) is not None) == answered


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"II*\0",
        b"II*\0\xff\xff\xff\x7f",
        b"MM\0+\0\x08\0\0" + bytes(8),
        b"GIF89a" + bytes(40),
        b"<VRTDataset/>",
    ],
)
def test_not_a_tiff_or_truncated(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.tif"
    path.write_bytes(content)
    assert read_header(path) is None
    _assert_same(path)


def test_not_local_or_missing(tmp_path: Path) -> None:
    assert read_header(tmp_path / "missing.tif") is None
    assert read_header(tmp_path) is None  # a folder
    assert read_header("https://example.com/a.tif") is None
    assert read_header("/vsicurl/https://example.com/a.tif") is None


def test_large_blocks_are_left_to_rasterio(tmp_path: Path) -> None:
    """A header whose blocks may exceed MAX_BLOCK_BYTES gets rasterio's exact block problem."""
    path = tmp_path / "big.tif"
    rows = 2 * (MAX_BLOCK_BYTES // 4096) + 16  # 2 strips of > 256 MiB, never written
    entries = [(256, 4, 1, 4096), (257, 4, 1, rows), (258, 3, 1, 8), (262, 3, 1, 1), (273, 4, 1, 8)]
    entries += [(278, 4, 1, rows // 2), (279, 4, 1, 1)]
    entries = [e if e[0] not in (273, 279) else (e[0], 4, 2, 0) for e in entries]
    path.write_bytes(_classic(entries))
    header = read_header(path)
    if header is not None:
        assert header.max_block_bytes() > MAX_BLOCK_BYTES
    count, dtype, shape, grid, problem = _header(path, False)
    with rasterio.open(path) as ds:
        assert problem == block_problem(ds) is not None
    assert (count, dtype, shape, grid) == (1, "uint8", (rows, 4096), None)
