"""geomask.tiffraw: tiles copied compressed between GDAL-written GeoTIFFs decode to the source's pixels."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from conftest import raw_tiles, write_raster
from rasterio.windows import Window

from geomask import tiffraw
from geomask.errors import LayoutMismatch

SHAPE = (3, 200, 300)  # tiles of 64: 4 x 5 tiles, the last row and column partial


def _options(**options) -> dict:
    return {"compress": "deflate", "predictor": 2, "interleave": "pixel"} | options


def _scene(path: Path, seed: int, dtype: str = "uint16", **options) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = (rng.random(SHAPE) * 1000).astype(dtype)
    write_raster(path, data, block=64, **_options(**options))
    return data


def _sparse_target(
    path: Path, source: Path, data: np.ndarray, tiles: list[tuple[int, int]], **options
) -> None:
    """Write only ``tiles`` of ``data`` into ``path``, as the source was written, with SPARSE_OK."""
    with rasterio.open(source) as src:
        profile = src.profile | _options(**options) | {"SPARSE_OK": "TRUE"}
    with rasterio.open(path, "w", **profile) as dst:
        for r, c in tiles:
            w = Window(c * 64, r * 64, 64, 64).intersection(Window(0, 0, SHAPE[2], SHAPE[1]))
            dst.write(data[:, w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width], window=w)


@pytest.mark.parametrize(
    ("dtype", "options"),
    [
        ("uint16", {}),
        ("uint16", {"interleave": "band"}),
        ("float32", {"predictor": 3}),
        ("uint8", {"compress": "lzw", "predictor": 1}),
        ("int16", {"compress": "zstd", "BIGTIFF": "YES"}),
    ],
)
def test_copied_tiles_decode_to_the_source(tmp_path: Path, dtype: str, options: dict) -> None:
    src, dst = tmp_path / "src.tif", tmp_path / "dst.tif"
    source = _scene(src, 1, dtype, **options)
    other = _scene(tmp_path / "other.tif", 2, dtype, **options)
    written = [(0, 0), (1, 3), (3, 4)]  # includes the partial corner tile
    _sparse_target(dst, src, other, written, **options)
    layout = tiffraw.layout_of(src)
    assert layout is not None and layout == tiffraw.layout_of(dst)
    down, across = layout.grid
    assert (down, across) == (4, 5)
    missing = [(r, c) for r in range(down) for c in range(across) if (r, c) not in written]
    appended = tiffraw.copy_tiles(src, dst, missing)
    assert appended > 0
    expected = source.copy()
    for r, c in written:
        ys, xs = slice(r * 64, (r + 1) * 64), slice(c * 64, (c + 1) * 64)
        expected[:, ys, xs] = other[:, ys, xs]
    with rasterio.open(dst) as ds:
        assert np.array_equal(ds.read(), expected)
    # The copied tiles are the source's bytes, not re-encoded.
    src_raw, dst_raw = raw_tiles(src), raw_tiles(dst)
    for r, c in missing:
        for i in layout.indices(r, c):
            assert dst_raw[i] == src_raw[i]


def test_refuses_a_tile_already_written_and_leaves_the_target_unchanged(tmp_path: Path) -> None:
    src, dst = tmp_path / "src.tif", tmp_path / "dst.tif"
    _scene(src, 1)
    _sparse_target(dst, src, _scene(tmp_path / "other.tif", 2), [(0, 0)])
    before = dst.read_bytes()
    with pytest.raises(LayoutMismatch, match="already written"):
        tiffraw.copy_tiles(src, dst, [(0, 0), (0, 1)])
    assert dst.read_bytes() == before


def test_refuses_other_layouts(tmp_path: Path) -> None:
    src, dst = tmp_path / "src.tif", tmp_path / "dst.tif"
    _scene(src, 1)
    data = _scene(tmp_path / "lzw.tif", 2, compress="lzw")
    _sparse_target(dst, tmp_path / "lzw.tif", data, [(0, 0)], compress="lzw")
    before = dst.read_bytes()
    with pytest.raises(LayoutMismatch, match="layouts differ"):
        tiffraw.copy_tiles(src, dst, [(0, 1)])
    assert dst.read_bytes() == before


def test_layout_of_refuses_what_cannot_be_copied(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = (rng.random((3, 64, 64)) * 255).astype("uint8")
    assert tiffraw.layout_of(write_raster(tmp_path / "striped.tif", data, block=None)) is None
    jpeg = write_raster(tmp_path / "jpeg.tif", data, compress="jpeg", photometric="ycbcr")
    assert tiffraw.layout_of(jpeg) is None
    assert tiffraw.layout_of("/vsicurl/https://example.com/a.tif") is None
    assert tiffraw.layout_of(tmp_path / "missing.tif") is None
    tiled = tiffraw.layout_of(write_raster(tmp_path / "t.tif", data, block=32, compress="deflate"))
    assert tiled is not None and tiled.tile == (32, 32) and tiled.compression == 8
    # One band: pixel and band interleave store the same tiles.
    one = [write_raster(tmp_path / f"{il}.tif", data[0], block=32, interleave=il) for il in ("pixel", "band")]
    assert tiffraw.layout_of(one[0]) == tiffraw.layout_of(one[1]) is not None


def test_profile_matches(tmp_path: Path) -> None:
    src = tmp_path / "src.tif"
    _scene(src, 1)
    layout = tiffraw.layout_of(src)
    assert layout is not None
    base = {
        "driver": "GTiff",
        "tiled": True,
        "blockxsize": 64,
        "blockysize": 64,
        "compress": "deflate",
        "PREDICTOR": "2",
        "interleave": "pixel",
        "ZLEVEL": 9,
        "NUM_THREADS": "2",
        "BIGTIFF": "IF_SAFER",
    }
    assert tiffraw.profile_matches(layout, base)
    assert not tiffraw.profile_matches(layout, base | {"compress": "lzw"})
    assert not tiffraw.profile_matches(layout, base | {"PREDICTOR": "1"})
    assert not tiffraw.profile_matches(layout, base | {"blockxsize": 128, "blockysize": 128})
    assert not tiffraw.profile_matches(layout, base | {"interleave": "band"})
    assert not tiffraw.profile_matches(layout, base | {"NBITS": "12"})  # changes how tiles decode
    assert not tiffraw.profile_matches(layout, base | {"tiled": False})


@pytest.mark.parametrize("bigtiff", ["NO", "YES"])
def test_byte_counts_outgrowing_their_field_are_moved(tmp_path: Path, bigtiff: str) -> None:
    """GDAL writes 16-bit TileByteCounts into a file with no tile: 64 KiB tiles must still fit."""
    rng = np.random.default_rng(3)
    data = rng.integers(0, 255, size=(1, 300, 600), dtype=np.uint8)  # 2 x 3 tiles of 256 x 256
    src = write_raster(tmp_path / "src.tif", data, block=256, BIGTIFF=bigtiff)
    dst = tmp_path / "dst.tif"
    with rasterio.open(src) as ds:
        profile = ds.profile | {"SPARSE_OK": "TRUE", "BIGTIFF": bigtiff}
    with rasterio.open(dst, "w", **profile):
        pass  # no tile written
    tiffraw.copy_tiles(src, dst, [(r, c) for r in range(2) for c in range(3)])
    with rasterio.open(dst) as ds:
        assert np.array_equal(ds.read(), data)
    assert raw_tiles(dst) == raw_tiles(src)


def test_tag_warnings_of_tifffile_stay_off_stderr(tmp_path: Path) -> None:
    # A float32 file whose GDAL_NODATA (-3.4e+38) tifffile cannot cast: GDAL reads it fine, and
    # geomask, which reads only the tile structure, must not print tifffile's complaint.
    path = tmp_path / "nodata.tif"
    profile = {"driver": "GTiff", "width": 64, "height": 64, "count": 1, "dtype": "float32"}
    profile |= {"tiled": True, "blockxsize": 32, "blockysize": 32, "compress": "deflate", "nodata": -3.4e38}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.ones((1, 64, 64), dtype=np.float32))
    # In a fresh interpreter: pytest's own log capture would hide what a user's terminal shows.
    code = f"from geomask import tiffraw; print(tiffraw.layout_of({str(path)!r}).tile)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "(32, 32)"
    assert "tifffile" not in done.stderr, done.stderr


_VARIANTS = {
    "deflate-pixel": ("uint16", 3, {"compress": "deflate", "interleave": "pixel"}),
    "deflate-band": ("uint16", 3, {"compress": "deflate", "interleave": "band"}),
    "lzw-predictor2": ("int16", 3, {"compress": "lzw", "predictor": 2, "interleave": "pixel"}),
    "zstd-float-predictor3": ("float32", 1, {"compress": "zstd", "predictor": 3}),
    "packbits-uint8-rgba": ("uint8", 4, {"compress": "packbits", "interleave": "pixel"}),
    "none-float64": ("float64", 2, {"interleave": "band"}),
    "lzma": ("uint8", 1, {"compress": "lzma"}),
    "bigtiff": ("uint16", 3, {"compress": "deflate", "BIGTIFF": "YES"}),
    "big-endian": ("uint16", 3, {"compress": "deflate", "ENDIANNESS": "BIG"}),
    "nbits12": ("uint16", 1, {"compress": "deflate", "NBITS": 12}),
    "jpeg-ycbcr": ("uint8", 3, {"compress": "jpeg", "photometric": "ycbcr"}),
    "jpeg": ("uint8", 1, {"compress": "jpeg"}),
    "webp": ("uint8", 3, {"compress": "webp"}),
    "striped": ("uint8", 3, {"compress": "deflate", "block": None}),
}


@pytest.mark.parametrize("variant", sorted(_VARIANTS))
def test_layout_of_reads_the_header_as_tifffile_does(tmp_path: Path, variant: str) -> None:
    """layout_of parses the header itself (tifffile costs ~65 ms to import): the same Layout as
    tifffile's structure gives (what copy_tiles checks before copying), or None for both."""
    import tifffile

    dtype, count, options = _VARIANTS[variant]
    options = {"block": 32} | options
    rng = np.random.default_rng(1)
    data = (rng.random((count, 48, 80)) * 200).astype(dtype)
    try:
        path = write_raster(tmp_path / "scene.tif", data, **options)
    except rasterio.errors.RasterioError:
        pytest.skip(f"this GDAL cannot write {variant}")
    with tifffile.TiffFile(path) as tif:
        expected = tiffraw._layout(tif)
    assert tiffraw.layout_of(path) == expected


def test_layout_of_refuses_a_damaged_header(tmp_path: Path) -> None:
    path = write_raster(tmp_path / "t.tif", np.ones((1, 64, 64), "uint8"), block=32, compress="deflate")
    whole = path.read_bytes()
    (tmp_path / "cut.tif").write_bytes(whole[:200])
    (tmp_path / "text.tif").write_bytes(b"not a tiff at all")
    (tmp_path / "empty.tif").write_bytes(b"")
    for name in ("cut.tif", "text.tif", "empty.tif"):
        assert tiffraw.layout_of(tmp_path / name) is None


def test_layout_of_does_not_import_tifffile(tmp_path: Path) -> None:
    path = write_raster(tmp_path / "t.tif", np.ones((1, 64, 64), "uint8"), block=32, compress="deflate")
    code = (
        "import sys; from geomask import tiffraw; "
        f"print(tiffraw.layout_of({str(path)!r}).tile, 'tifffile' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "(32, 32) False"


def test_adjacent_tiles_are_copied_in_one_run_by_the_kernel(tmp_path: Path, monkeypatch) -> None:
    """The tiles to copy that lie one after the other in the source are one copy_file_range call."""
    src, dst = tmp_path / "src.tif", tmp_path / "dst.tif"
    source = _scene(src, 1)
    _sparse_target(dst, src, _scene(tmp_path / "other.tif", 2), [(0, 0)])
    calls: list[int] = []
    real = os.copy_file_range

    def counted(*args: int) -> int:
        calls.append(args[2])
        return real(*args)

    monkeypatch.setattr(os, "copy_file_range", counted)
    missing = [(r, c) for r in range(4) for c in range(5) if (r, c) != (0, 0)]
    appended = tiffraw.copy_tiles(src, dst, missing)
    assert len(calls) == 1 and calls[0] == appended  # GDAL wrote the source's tiles in order
    with rasterio.open(dst) as ds:
        assert np.array_equal(ds.read()[:, 64:], source[:, 64:])


@pytest.mark.parametrize("refusal", [errno.EXDEV, errno.ENOSYS])
def test_tiles_are_copied_by_hand_where_the_kernel_cannot(tmp_path: Path, monkeypatch, refusal: int) -> None:
    """copy_file_range refused (another file system, an old kernel): the same bytes, read and written."""
    src, dst = tmp_path / "src.tif", tmp_path / "dst.tif"
    source = _scene(src, 1)
    _sparse_target(dst, src, _scene(tmp_path / "other.tif", 2), [(0, 0)])

    def refuse(*args: int) -> int:
        raise OSError(refusal, os.strerror(refusal))

    monkeypatch.setattr(os, "copy_file_range", refuse)
    missing = [(r, c) for r in range(4) for c in range(5) if (r, c) != (0, 0)]
    tiffraw.copy_tiles(src, dst, missing)
    with rasterio.open(dst) as ds:
        assert np.array_equal(ds.read()[:, 64:], source[:, 64:])
    src_raw, dst_raw = raw_tiles(src), raw_tiles(dst)
    layout = tiffraw.layout_of(src)
    assert all(dst_raw[i] == src_raw[i] for r, c in missing for i in layout.indices(r, c))
