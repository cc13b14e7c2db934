"""The header of a plain local GeoTIFF (size, bands, dtype, blocks) without loading GDAL.

``geomask validate`` checks a pipeline against each scene's header: band count, data type, size
and whether its internal blocks are small enough to read window by window. Opening the scene with
rasterio gives the same answers but costs the import of rasterio and GDAL (about 0.3 s, more than
the whole of a validate run should take), so :func:`read_header` reads them from the first image
file directory (IFD) of a classic or BigTIFF file itself, with :mod:`struct` only.

Why not tifffile (a dependency, and the well-kept library for this): it imports numpy, which
``geomask validate`` on a pipeline of sized kernels otherwise never loads; measured here, numpy
costs 50-65 ms and tifffile 15-18 ms more, a quarter of the 0.3 s validate may take, for a dozen
integer tags. It also parses every tag of the page (GeoTIFF keys, GDAL metadata) and logs about
the ones it cannot.

The answers must be the ones rasterio (GDAL's GTiff driver) gives, so the reader is narrow: a file
whose header holds anything GDAL might read differently (a photometric interpretation GDAL turns
into RGBA, a codec it might lack, bit depths it widens, sample formats it maps, values that differ
per band, a first IFD that is not a full-resolution image) gives None, and the caller opens it with
rasterio as before. ``tests/test_tiffheader.py`` compares both readers over every GeoTIFF of the
repository and generated files of every dtype, layout and codec.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

__all__ = ["MAX_BLOCK_BYTES", "TiffHeader", "first_ifd", "read_header"]

_MIB = 1 << 20

MAX_BLOCK_BYTES = 256 * _MIB
"""The most bytes one internal tile or strip of a scene may decode to (all bands, when the file
interleaves them by pixel). GDAL decodes a block whole to read any pixel of it, so a header
declaring larger blocks (a 32768 x 32768 tile, strips of thousands of long rows) would make every
window cost that much memory, whatever the window size; such a scene is refused from its header."""

# TIFF tags read (TIFF 6.0 and the TIFF tiling extension)
_NEW_SUBFILE_TYPE = 254
_WIDTH, _LENGTH, _BITS, _COMPRESSION, _PHOTOMETRIC = 256, 257, 258, 259, 262
_STRIP_OFFSETS, _SAMPLES, _ROWS_PER_STRIP, _STRIP_BYTE_COUNTS = 273, 277, 278, 279
_PLANAR = 284
_TILE_WIDTH, _TILE_LENGTH, _TILE_OFFSETS, _TILE_BYTE_COUNTS = 322, 323, 324, 325
_SAMPLE_FORMAT = 339
_WANTED = frozenset(
    {
        _NEW_SUBFILE_TYPE,
        _WIDTH,
        _LENGTH,
        _BITS,
        _COMPRESSION,
        _PHOTOMETRIC,
        _SAMPLES,
        _ROWS_PER_STRIP,
        _PLANAR,
        _TILE_WIDTH,
        _TILE_LENGTH,
        _SAMPLE_FORMAT,
    }
)

# TIFF field types that hold unsigned integers: BYTE, SHORT, LONG, LONG8 (BigTIFF)
_INT_TYPES = {1: "B", 3: "H", 4: "I", 16: "Q"}
# Compressions GDAL's GTiff driver decodes without changing the band layout: none, LZW, deflate
# (both codes), PackBits, LZMA, ZSTD. Others (JPEG and its YCbCr, LERC, WebP, JPEG-XL, CCITT ...)
# depend on the build or on the photometric interpretation: rasterio answers for them.
_COMPRESSIONS = frozenset({1, 5, 8, 32946, 32773, 34925, 50000})
# MinIsWhite, MinIsBlack, RGB, palette: bands as stored. YCbCr, CMYK, CIELab ... GDAL may expand.
_PHOTOMETRICS = frozenset({0, 1, 2, 3})
# (SampleFormat, BitsPerSample) -> the dtype rasterio reports (GDAL >= 3.7 has Int8)
_DTYPES = {
    (1, 8): "uint8",
    (1, 16): "uint16",
    (1, 32): "uint32",
    (1, 64): "uint64",
    (2, 8): "int8",
    (2, 16): "int16",
    (2, 32): "int32",
    (2, 64): "int64",
    (3, 32): "float32",
    (3, 64): "float64",
}
_ITEMSIZE = {dtype: bits // 8 for (_, bits), dtype in _DTYPES.items()}
_MAX_ENTRIES = 4096  # tags in one IFD; a larger count is a corrupt or hostile header


@dataclass(frozen=True)
class TiffHeader:
    """What ``geomask validate`` reads of a scene: its size, bands, dtype and block layout.

    Attributes
    ----------
    width, height : int
        Columns and rows, in pixels.
    count : int
        Bands (TIFF SamplesPerPixel, alpha included), as rasterio's ``count``.
    dtype : str
        Every band's numpy dtype name, as rasterio's ``dtypes[0]``.
    block_shape : (int, int)
        (rows, cols) of one tile or strip as the file declares it. GDAL may report smaller blocks
        (it reads a file of one uncompressed strip row by row), never larger ones.
    interleaved : bool
        Bands interleaved by pixel (PlanarConfiguration 1, GDAL's ``INTERLEAVE=PIXEL``).
    """

    width: int
    height: int
    count: int
    dtype: str
    block_shape: tuple[int, int]
    interleaved: bool

    def max_block_bytes(self) -> int:
        """The most bytes one block decodes to, as :func:`geomask.io.block_problem` counts them.

        An upper bound of GDAL's figure (which uses GDAL's block shape, never larger than the file's):
        when it is at most :data:`MAX_BLOCK_BYTES`, ``block_problem`` finds no problem.
        """
        rows, cols = min(self.block_shape[0], self.height), min(self.block_shape[1], self.width)
        bands = self.count if self.interleaved else 1
        return rows * cols * bands * _ITEMSIZE[self.dtype]


class _Unsupported(ValueError):
    """The header holds something this reader leaves to rasterio."""


def read_header(path: str | os.PathLike[str]) -> TiffHeader | None:
    """The header of the local TIFF or BigTIFF at ``path``, or None when rasterio must answer.

    Returns None for anything but a regular local file holding a TIFF this reader understands
    (see the module docstring): a missing or unreadable file, a URL or ``/vsi`` path, a VRT, JPEG
    2000 or other format, a truncated header, a codec or layout GDAL might read differently. Only
    the first IFD (the full-resolution image GDAL opens) is read: a few hundred bytes.
    """
    text = os.fspath(path)
    if "://" in text or text.startswith("/vsi"):
        return None
    try:
        with open(text, "rb") as f:
            return _read(f)
    except (OSError, ValueError, struct.error, _Unsupported):
        return None


def first_ifd(f: BinaryIO, wanted: frozenset[int]) -> tuple[str, dict[int, tuple[int, ...]], dict[int, int]]:
    """The first image file directory of the classic or BigTIFF file ``f``.

    Returns (byte order ``<`` or ``>``, the integer values of the ``wanted`` tags it holds, the
    number of values of every tag it holds). A wanted tag of a non-integer field type, or with more
    than 65536 values, is there with no values (``()``). Shared by :func:`read_header` and
    :func:`geomask.tiffraw.layout_of`.

    Raises
    ------
    ValueError, struct.error, OSError
        Not a TIFF, or a truncated or damaged header.
    """
    head = f.read(16)
    order = {b"II": "<", b"MM": ">"}.get(head[:2])
    if order is None or len(head) < 8:
        raise _Unsupported("not a TIFF")
    (version,) = struct.unpack(order + "H", head[2:4])
    if version == 42:
        (first,) = struct.unpack(order + "I", head[4:8])
        count_fmt, entry_fmt, inline = "H", "HHI4s", 4
    elif version == 43 and len(head) == 16 and struct.unpack(order + "HH", head[4:8]) == (8, 0):
        (first,) = struct.unpack(order + "Q", head[8:16])
        count_fmt, entry_fmt, inline = "Q", "HHQ8s", 8
    else:
        raise _Unsupported("not a TIFF or BigTIFF")
    f.seek(first)
    count_size = struct.calcsize(order + count_fmt)
    (entries,) = struct.unpack(order + count_fmt, f.read(count_size))
    if not 0 < entries <= _MAX_ENTRIES:
        raise _Unsupported("implausible IFD")
    entry_size = struct.calcsize(order + entry_fmt)
    table = f.read(entries * entry_size)
    if len(table) != entries * entry_size:
        raise _Unsupported("truncated IFD")
    tags: dict[int, tuple[int, ...]] = {}
    counts: dict[int, int] = {}
    for i in range(entries):
        tag, kind, n, value = struct.unpack_from(order + entry_fmt, table, i * entry_size)
        counts[tag] = n
        if tag not in wanted:
            continue
        code = _INT_TYPES.get(kind)
        if code is None or not 0 < n <= 1 << 16:
            tags[tag] = ()
            continue
        size = struct.calcsize(code) * n
        if size <= inline:
            raw = value[:size]
        else:
            (offset,) = struct.unpack(order + ("I" if inline == 4 else "Q"), value)
            here = f.tell()
            f.seek(offset)
            raw = f.read(size)
            f.seek(here)
            if len(raw) != size:
                raise _Unsupported("truncated tag")
        tags[tag] = struct.unpack(f"{order}{n}{code}", raw)
    return order, tags, counts


def _read(f: BinaryIO) -> TiffHeader:
    _, tags, counts = first_ifd(f, _WANTED)
    odd = [tag for tag, values in tags.items() if not values]
    if odd:
        raise _Unsupported(f"tag {odd[0]}: not integers, or too many values")
    return _header(tags, counts)


def _one(tags: dict[int, tuple[int, ...]], tag: int, default: int | None = None) -> int:
    """A tag's value, the same for every sample (else rasterio answers)."""
    values = tags.get(tag)
    if values is None:
        if default is None:
            raise _Unsupported(f"no tag {tag}")
        return default
    if len(set(values)) != 1:
        raise _Unsupported(f"tag {tag} differs per sample")
    return values[0]


def _header(tags: dict[int, tuple[int, ...]], counts: dict[int, int]) -> TiffHeader:
    width, height = _one(tags, _WIDTH), _one(tags, _LENGTH)
    samples = _one(tags, _SAMPLES, 1)
    bits, form = _one(tags, _BITS, 1), _one(tags, _SAMPLE_FORMAT, 1)
    planar = _one(tags, _PLANAR, 1)
    if width < 1 or height < 1 or not 1 <= samples <= 65535 or planar not in (1, 2):
        raise _Unsupported("size, samples or planar configuration")
    if _one(tags, _NEW_SUBFILE_TYPE, 0) != 0 or _one(tags, _COMPRESSION, 1) not in _COMPRESSIONS:
        raise _Unsupported("reduced image, mask or codec")
    photometric = _one(tags, _PHOTOMETRIC)  # absent: GDAL guesses
    rgb, palette = photometric == 2 and samples < 3, photometric == 3 and samples != 1
    if photometric not in _PHOTOMETRICS or rgb or palette:  # GDAL might add or drop bands
        raise _Unsupported("photometric interpretation")
    for tag in (_BITS, _SAMPLE_FORMAT):  # one value per sample, as libtiff requires
        if tag in tags and len(tags[tag]) not in (1, samples):
            raise _Unsupported(f"tag {tag} count")
    dtype = _DTYPES.get((form, bits))
    if dtype is None:
        raise _Unsupported("sample format")
    tiled = _TILE_WIDTH in tags or _TILE_LENGTH in tags
    if tiled:
        rows, cols = _one(tags, _TILE_LENGTH), _one(tags, _TILE_WIDTH)
        if rows < 16 or cols < 16 or rows % 16 or cols % 16:  # TIFF requires multiples of 16
            raise _Unsupported("tile size")
        blocks = -(-width // cols) * -(-height // rows)
        offsets, byte_counts = _TILE_OFFSETS, _TILE_BYTE_COUNTS
    else:
        rows, cols = min(_one(tags, _ROWS_PER_STRIP, 0xFFFFFFFF), height), width
        if rows < 1:
            raise _Unsupported("rows per strip")
        blocks = -(-height // rows)
        offsets, byte_counts = _STRIP_OFFSETS, _STRIP_BYTE_COUNTS
    blocks *= samples if planar == 2 else 1
    if counts.get(offsets) != blocks or counts.get(byte_counts) != blocks:
        raise _Unsupported("block offsets or byte counts")
    return TiffHeader(width, height, samples, dtype, (rows, cols), planar == 1)
