"""Copy compressed tiles from one tiled GeoTIFF into another of the same layout, byte for byte.

Why: outside the regions of interest an output tile equals the input tile. Decoding and
re-encoding it (what a GDAL copy does for every tile) is most of an end-to-end run when the
regions cover a few percent of a scene; copying its compressed bytes costs a read and a write.
GDAL can read a tile's compressed bytes (RFC 90) but has no API to write them, and neither has
rasterio, so this is done by hand on the finished file: GDAL writes the tiles geomask computed
into a sparse file (``SPARSE_OK=TRUE``: tiles never written have offset and byte count 0), then
:func:`copy_tiles` appends the input's compressed bytes of the other tiles and points the
TileOffsets / TileByteCounts entries at them. tifffile reads the structure of both files;
:func:`layout_of`, asked for every scene as it is planned, reads the few tags it needs itself.

Only decode-relevant structure must match (:class:`Layout`): compression, predictor, tile
size, samples, planar configuration, bits and sample format, byte order. Lossless codecs only
(no JPEG tables, no YCbCr): a copied tile decodes to exactly the input's pixels.
"""

from __future__ import annotations

import errno
import logging
import os
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geomask.errors import LayoutMismatch
from geomask.tiffheader import first_ifd

__all__ = ["Layout", "copy_tiles", "has_written_tiles", "layout_of", "profile_matches"]

#: GDAL's COMPRESS names of the lossless codecs whose tiles are self-contained, as TIFF codes.
LOSSLESS = {"none": 1, "lzw": 5, "deflate": 8, "packbits": 32773, "lzma": 34925, "zstd": 50000}
#: Creation options that do not change how a tile decodes (levels, threads, container choices).
NEUTRAL_OPTIONS = frozenset(
    {
        "TILED",
        "BLOCKXSIZE",
        "BLOCKYSIZE",
        "COMPRESS",
        "PREDICTOR",
        "INTERLEAVE",
        "ZLEVEL",
        "ZSTD_LEVEL",
        "LZMA_PRESET",
        "NUM_THREADS",
        "BIGTIFF",
        "SPARSE_OK",
        "GEOTIFF_VERSION",
        "PROFILE",
    }
)
_OFFSET_TYPES = {3: "H", 4: "I", 16: "Q"}  # TIFF SHORT, LONG, LONG8
#: copy_file_range's errors for files it cannot copy between (then copied by hand).
_NO_KERNEL_COPY = frozenset(
    {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF, errno.EPERM}
)
_CHUNK = 8 << 20  # bytes per read when copied by hand


# tifffile reports tags it cannot parse as warnings, e.g. "parsing GDAL_NODATA tag raised
# ValueError: -3.4e+38 is not castable to float32" for a float32 file GDAL writes and reads fine.
# geomask reads only the tile structure, so such messages would be noise on every run; with no
# handler of its own, Python printed them to stderr. A NullHandler (the logging module's advice
# for libraries) stops that; an application that configures logging still receives them.
logging.getLogger("tifffile").addHandler(logging.NullHandler())


@dataclass(frozen=True)
class Layout:
    """What decides how the tiles of a TIFF's first image decode.

    Attributes
    ----------
    width, height : int
        Image size in pixels.
    tile : (int, int)
        Tile width and height in pixels.
    samples : int
        Samples (bands) per pixel.
    planar : int
        1: all bands in each tile (pixel interleaved); 2: one plane of tiles per band.
    bits, sample_format : tuple of int
        Per sample.
    compression, predictor : int
        TIFF codes.
    byteorder : str
        ``<`` or ``>``.
    """

    width: int
    height: int
    tile: tuple[int, int]
    samples: int
    planar: int
    bits: tuple[int, ...]
    sample_format: tuple[int, ...]
    compression: int
    predictor: int
    byteorder: str

    @property
    def grid(self) -> tuple[int, int]:
        """Tiles down and across."""
        return -(-self.height // self.tile[1]), -(-self.width // self.tile[0])

    def indices(self, tile_row: int, tile_col: int) -> list[int]:
        """The TileOffsets indices of the tile at (tile_row, tile_col): one per plane."""
        down, across = self.grid
        first = tile_row * across + tile_col
        if self.planar == 2 and self.samples > 1:
            return [s * down * across + first for s in range(self.samples)]
        return [first]


def _per_sample(value: Any, samples: int) -> tuple[int, ...]:
    if isinstance(value, tuple | list):
        return tuple(int(v) for v in value)
    return (int(value),) * samples


def layout_of(path: str | os.PathLike[str]) -> Layout | None:
    """The :class:`Layout` of a local tiled TIFF whose tiles can be copied, else None.

    None for GDAL URLs, striped files, JPEG/WebP/LERC/other lossy or table-based codecs,
    YCbCr, or a file whose header does not parse.

    Notes
    -----
    Read from the first image file directory's tags with :mod:`struct`
    (:func:`geomask.tiffheader.first_ifd`), not
    with tifffile: every scene of a run asks this while it is planned, and importing tifffile costs
    ~65 ms of a small scene's batch. The layout is a prediction: :func:`copy_tiles` parses both
    files with tifffile before it copies anything, and refuses (:class:`LayoutMismatch`) if they differ.
    """
    text = str(path)
    if "://" in text or text.startswith("/vsi") or not Path(text).is_file():
        return None
    try:
        with open(text, "rb") as f:
            order, tags, _ = first_ifd(f, _WANTED)
    except (OSError, ValueError, struct.error):
        return None
    return _header_layout(order, tags)


# TIFF tags read by layout_of, and the sizes of the field types their values may have.
_WIDTH, _LENGTH, _BITS, _COMPRESSION, _PHOTOMETRIC = 256, 257, 258, 259, 262
_SAMPLES, _PLANAR, _PREDICTOR, _TILE_WIDTH, _TILE_LENGTH, _SAMPLE_FORMAT, _JPEG_TABLES = (
    277,
    284,
    317,
    322,
    323,
    339,
    347,
)
_WANTED = frozenset(
    {_WIDTH, _LENGTH, _BITS, _COMPRESSION, _PHOTOMETRIC, _SAMPLES, _PLANAR, _PREDICTOR}
    | {_TILE_WIDTH, _TILE_LENGTH, _SAMPLE_FORMAT, _JPEG_TABLES}
)


def _header_layout(order: str, tags: dict[int, tuple[int, ...]]) -> Layout | None:
    """The :class:`Layout` the tags of :func:`~geomask.tiffheader.first_ifd` describe, or None (as
    :func:`_layout`)."""

    def one(tag: int, default: int | None = None) -> int | None:
        values = tags.get(tag)
        if values is None:
            return default
        return values[0] if len(values) == 1 else None

    width, height = one(_WIDTH), one(_LENGTH)
    tile_width, tile_length = one(_TILE_WIDTH), one(_TILE_LENGTH)
    samples, compression = one(_SAMPLES, 1), one(_COMPRESSION, 1)
    planar, predictor, photometric = one(_PLANAR, 1), one(_PREDICTOR, 1), one(_PHOTOMETRIC, -1)
    if (
        None in (width, height, samples, compression, planar, predictor, photometric)
        or not tile_width
        or not tile_length
        or _JPEG_TABLES in tags
        or photometric == 6
        or compression not in LOSSLESS.values()
    ):
        return None

    def per_sample(tag: int) -> tuple[int, ...] | None:
        values = tags.get(tag, (1,))
        if len(values) == 1:
            return values * int(samples)  # type: ignore[arg-type]
        return values if len(values) == samples else None

    bits, formats = per_sample(_BITS), per_sample(_SAMPLE_FORMAT)
    if bits is None or formats is None:
        return None
    return Layout(
        width=int(width),  # type: ignore[arg-type]
        height=int(height),  # type: ignore[arg-type]
        tile=(int(tile_width), int(tile_length)),
        samples=int(samples),  # type: ignore[arg-type]
        planar=int(planar) if samples > 1 else 1,  # type: ignore[arg-type,operator]
        bits=tuple(int(b) for b in bits),
        sample_format=tuple(int(v) for v in formats),
        compression=int(compression),  # type: ignore[arg-type]
        predictor=int(predictor),  # type: ignore[arg-type]
        byteorder=order,
    )


def has_written_tiles(path: str | os.PathLike[str]) -> bool:
    """Whether the full-resolution image of a local TIFF has at least one tile or strip written,
    and every written one lies inside the file.

    GDAL's COG driver writes a COG's directories first with every tile offset 0 and fills them
    in only when the last tile is written, so a COG whose writer was killed has none: it opens,
    and reads as nodata everywhere. False also when tifffile cannot parse the file.
    """
    import tifffile

    try:
        size = os.path.getsize(path)
        with tifffile.TiffFile(os.fspath(path)) as tif:
            page = tif.pages.first
            spans = [(o, c) for o, c in zip(page.dataoffsets, page.databytecounts, strict=True) if o or c]
    except (OSError, ValueError, KeyError, IndexError, tifffile.TiffFileError):
        return False
    return bool(spans) and all(o > 0 and o + c <= size for o, c in spans)


def _layout(tif: Any) -> Layout | None:
    """The :class:`Layout` of an open ``tifffile.TiffFile``'s first image, or None (see :func:`layout_of`)."""
    page = tif.pages.first
    tags = page.tags
    if not page.is_tiled or "JPEGTables" in tags or int(page.photometric) == 6:
        return None
    compression = int(page.compression)
    if compression not in LOSSLESS.values():
        return None
    samples = int(page.samplesperpixel)
    bits = tags.get("BitsPerSample")
    formats = tags.get("SampleFormat")
    return Layout(
        width=int(page.imagewidth),
        height=int(page.imagelength),
        tile=(int(page.tilewidth), int(page.tilelength)),
        samples=samples,
        planar=int(page.planarconfig) if samples > 1 else 1,  # one band: the same tiles either way
        bits=_per_sample(bits.value if bits is not None else 1, samples),
        sample_format=_per_sample(formats.value if formats is not None else 1, samples),
        compression=compression,
        predictor=int(page.predictor),
        byteorder=tif.byteorder,
    )


def profile_matches(layout: Layout, profile: Mapping[str, Any]) -> bool:
    """Whether GDAL, given the rasterio ``profile`` of the output, writes tiles of ``layout``.

    A conservative test on the profile alone (compression, predictor, tile size, interleave,
    no option that changes how a tile decodes); :func:`copy_tiles` checks the written file.
    """
    options = {str(k).upper(): v for k, v in profile.items()}
    known = {"DRIVER", "WIDTH", "HEIGHT", "COUNT", "DTYPE", "CRS", "TRANSFORM", "NODATA"}
    if any(k not in NEUTRAL_OPTIONS | known for k in options):
        return False
    compress = str(options.get("COMPRESS") or "none").lower()
    try:
        predictor = int(options.get("PREDICTOR", 1))
    except (TypeError, ValueError):
        return False
    interleave = str(options.get("INTERLEAVE", "pixel")).lower()
    planar = 2 if interleave == "band" and layout.samples > 1 else 1
    source_planar = layout.planar if layout.samples > 1 else 1
    return (
        str(options.get("TILED", "NO")).upper() in ("TRUE", "YES", "1")
        and LOSSLESS.get(compress) == layout.compression
        and predictor == layout.predictor
        and (int(options.get("BLOCKXSIZE", 0)), int(options.get("BLOCKYSIZE", 0))) == layout.tile
        and planar == source_planar
        and layout.byteorder == "<"
    )


def copy_tiles(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    tiles: Iterable[tuple[int, int]],
) -> int:
    """Copy the compressed bytes of ``tiles`` (tile row, tile column) from ``source`` to ``target``.

    ``target`` is a finished, closed TIFF written with ``SPARSE_OK=TRUE`` in which those tiles
    were never written (offset 0). The bytes are appended at its end and its TileOffsets and
    TileByteCounts entries rewritten in place; nothing else in the file changes.

    Returns
    -------
    The number of bytes appended.

    Raises
    ------
    geomask.errors.LayoutMismatch
        The files' layouts differ, a target tile was already written, or an offset would not
        fit the target's offset type (a classic TIFF past 4 GiB). ``target`` is then unchanged.
    OSError
        Reading or writing failed (e.g. the disk is full).
    """
    import tifffile

    want = sorted(set(tiles))
    # Each file is parsed once: its layout and its tile arrays from the same read.
    try:
        with tifffile.TiffFile(os.fspath(source)) as tif:
            src_layout = _layout(tif)
            src_offsets = tif.pages.first.dataoffsets
            src_counts = tif.pages.first.databytecounts
        with tifffile.TiffFile(os.fspath(target)) as tif:
            dst_layout = _layout(tif)
            page = tif.pages.first
            offsets_tag, counts_tag = page.tags["TileOffsets"], page.tags["TileByteCounts"]
            offsets, counts = list(page.dataoffsets), list(page.databytecounts)
            where = [(tag.offset, tag.valueoffset, int(tag.dtype)) for tag in (offsets_tag, counts_tag)]
            order, big = tif.byteorder, tif.is_bigtiff
    except (ValueError, KeyError, IndexError, tifffile.TiffFileError) as e:
        raise LayoutMismatch(f"cannot read the tile structure ({e})") from e
    if src_layout is None or src_layout != dst_layout:
        raise LayoutMismatch(f"tile layouts differ: {src_layout} vs {dst_layout}")
    if any(code not in _OFFSET_TYPES for _, _, code in where):
        raise LayoutMismatch("unexpected TileOffsets/TileByteCounts type")
    indices = [i for tr, tc in want for i in src_layout.indices(tr, tc)]
    if any(offsets[i] or counts[i] for i in indices):
        raise LayoutMismatch("a tile to copy was already written in the target")
    start = end = os.path.getsize(target)
    for i in indices:
        if src_counts[i]:
            offsets[i], counts[i] = end, src_counts[i]
            end += src_counts[i]
    # The tiles are appended in index order, so tiles adjacent in the source are adjacent in the
    # target too: each run of them is one copy (the whole unchanged area, often, in a few runs).
    runs: list[tuple[int, int, int]] = []  # (source offset, target offset, bytes)
    for i in indices:
        if not src_counts[i]:
            continue
        if runs and runs[-1][0] + runs[-1][2] == src_offsets[i]:
            runs[-1] = (runs[-1][0], runs[-1][1], runs[-1][2] + src_counts[i])
        else:
            runs.append((src_offsets[i], offsets[i], src_counts[i]))
    # Each array is rewritten in place, or, when its values outgrow its field type (GDAL writes
    # 16-bit byte counts into a file where no tile was written), appended with the widest type
    # the file allows and its IFD entry pointed at it.
    limit = {"H": 2**16, "I": 2**32, "Q": 2**64}
    wide = 16 if big else 4
    fields = []
    for (entry, at, code), values in zip(where, (offsets, counts), strict=True):
        fits = max(values, default=0) < limit[_OFFSET_TYPES[code]]
        if not fits and max(values) >= limit[_OFFSET_TYPES[wide]]:
            raise LayoutMismatch("the tiles' offsets would not fit a classic TIFF (use BIGTIFF=YES)")
        fields.append((entry, at, code if fits else wide, values, not fits))
    src_fd = os.open(source, os.O_RDONLY)
    try:
        with open(target, "r+b") as dst:
            for src_at, dst_at, size in runs:
                _copy_range(src_fd, dst.fileno(), src_at, dst_at, size)
            dst.seek(0, os.SEEK_END)
            for entry, at, code, values, relocate in fields:
                data = struct.pack(f"{order}{len(values)}{_OFFSET_TYPES[code]}", *values)
                if not relocate:
                    dst.seek(at)
                    dst.write(data)
                    continue
                word = "Q" if big else "I"
                inline = struct.calcsize(word)
                if len(data) > inline:
                    at = dst.seek(0, os.SEEK_END)
                    if at % 2:  # TIFF values start on a word boundary
                        at = at + dst.write(b"\0")
                    dst.write(data)
                    data = struct.pack(f"{order}{word}", at)
                dst.seek(entry + 2)  # the entry: tag (2 bytes), type, count, value or offset
                dst.write(struct.pack(f"{order}H{word}", code, len(values)) + data.ljust(inline, b"\0"))
    finally:
        os.close(src_fd)
    return end - start


def _copy_range(src_fd: int, dst_fd: int, src_at: int, dst_at: int, size: int) -> None:
    """Copy ``size`` bytes at ``src_at`` of ``src_fd`` to ``dst_at`` of ``dst_fd``.

    In the kernel (``copy_file_range``: no copy through this process, a reflink where the file
    system shares blocks) where the system offers it for these files, else read and written in
    chunks. Raises OSError when reading or writing fails (e.g. the disk is full).
    """
    copy = getattr(os, "copy_file_range", None)
    while size and copy is not None:
        try:
            done = copy(src_fd, dst_fd, size, src_at, dst_at)
        except OSError as e:
            if e.errno not in _NO_KERNEL_COPY:
                raise
            break  # not for these files (another file system, an old kernel): copy by hand
        if done == 0:  # the source ended early: the read below says so
            break
        src_at, dst_at, size = src_at + done, dst_at + done, size - done
    while size:
        chunk = os.pread(src_fd, min(size, _CHUNK), src_at)
        if not chunk:
            raise OSError(errno.EIO, f"the input ended {size} bytes before the end of its tiles")
        written = os.pwrite(dst_fd, chunk, dst_at)
        src_at, dst_at, size = src_at + written, dst_at + written, size - written
