"""The one writer of one output GeoTIFF or COG (:class:`OutputFile`).

It composes the output's concerns, each in its own module: the creation profile
(:mod:`~geomask.output.profile`), the metadata copied from the scene and geomask's tags
(:mod:`~geomask.output.metadata`), the tile copy (:mod:`~geomask.output.tilecopy`), the COG
conversion (:mod:`~geomask.output.cog`), the read-back check and disk-full diagnosis
(:mod:`~geomask.output.check`) and the temporary name and atomic rename
(:mod:`~geomask.output.staging`).
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import rasterio
from numpy.typing import NDArray
from rasterio.errors import RasterioError
from rasterio.windows import Window

from geomask.errors import OutputError, RunError
from geomask.io import SceneInfo, gdal_message
from geomask.output.check import check_readback, write_failure
from geomask.output.cog import cog_options, overview_resampling_for, to_cog
from geomask.output.metadata import copy_metadata, write_tags
from geomask.output.profile import creation_profile
from geomask.output.staging import move_into_place, partial_path, remove_quietly, remove_temporaries
from geomask.output.tilecopy import TileCopy, matching_layout

__all__ = ["OutputFile", "encoding_profile", "shared_encoding"]

_MIB = 1 << 20

_SCENES_ENCODING: contextvars.ContextVar[int] = contextvars.ContextVar("geomask_scenes_encoding", default=1)
"""How many scenes encode their outputs at once in this process (set by :func:`shared_encoding`)."""


@contextlib.contextmanager
def shared_encoding(scenes: int) -> Iterator[None]:
    """Within the block (this thread), outputs are written knowing that ``scenes`` scenes encode at
    once: GDAL's ``NUM_THREADS`` is capped to their share of the cores (:func:`encoding_profile`)."""
    token = _SCENES_ENCODING.set(max(1, int(scenes)))
    try:
        yield
    finally:
        _SCENES_ENCODING.reset(token)


def encoding_profile(profile: Mapping[str, Any], scenes: int, cores: int) -> dict[str, Any]:
    """``profile`` with its ``NUM_THREADS`` creation option capped to ``cores // scenes`` (at least 1).

    Two small scenes in flight already keep the cores busy, and GDAL waits for its compression
    threads as the file closes while holding Python's GIL (rasterio's ``close``), which stops the
    other scene's Python work: on 2 cores, a 4-tile scene written with ``NUM_THREADS=2`` spent half
    its encoding there, with one thread none. The option only changes speed: the file's bytes are
    the same. ``ALL_CPUS`` counts as ``cores``; a value GDAL would reject is left to GDAL.
    """
    key = next((k for k in profile if str(k).upper() == "NUM_THREADS"), None)
    if key is None or scenes <= 1:
        return dict(profile)
    value = str(profile[key]).strip().upper()
    share = max(1, cores // scenes)
    if value == "ALL_CPUS":
        threads = share
    elif value.isdigit():
        threads = min(int(value), share)
    else:
        return dict(profile)
    capped = {k: v for k, v in profile.items() if k != key}
    capped["NUM_THREADS"] = str(threads)
    return capped


def _cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class OutputFile:
    """The one writer of one output GeoTIFF, written to a temporary name and renamed at the end.

    Use as a context manager; :meth:`commit` checks the file and renames it into place.
    Leaving the block without commit (an error, Ctrl-C) removes the temporary file, so
    nothing is ever left at the final path. With ``dataset_mask``, the output gets an internal
    GDAL mask band (``GDAL_TIFF_INTERNAL_MASK``), written with each window's pixels.

    Tile copy: when the input is a local tiled GeoTIFF whose tiles decode as the output's will
    (same codec, predictor, tile size, interleave: :func:`geomask.tiffraw.profile_matches`),
    :attr:`copy_tile` is the tile side and the caller may leave tiles unwritten: they must
    equal the input's, and :meth:`commit` copies their compressed bytes from the input instead
    of decoding and re-encoding them. Writes must then cover whole tiles.
    """

    def __init__(
        self,
        final: Path,
        scene: SceneInfo,
        *,
        block_size: int,
        compress: str,
        creation_options: Mapping[str, str],
        tags: Mapping[str, str],
        cog: bool = False,
        overview_resampling: str = "average",
        copy_tiles: bool = True,
        dataset_mask: bool = False,
    ) -> None:
        self.final = final
        self.scene = scene
        self.tmp = partial_path(final)
        self.cog = cog
        self.overview_resampling = overview_resampling_for(scene, overview_resampling)
        self.compress = compress
        self.creation_options = dict(creation_options)
        self.profile = creation_profile(
            scene, block_size=block_size, compress=compress, creation_options=self.creation_options, cog=cog
        )
        self.tags = dict(tags)
        self.dataset_mask = dataset_mask
        self._ds: rasterio.io.DatasetWriter | None = None
        self._committed = False
        layout = matching_layout(scene, self.profile) if copy_tiles else None
        self._tiles = TileCopy(layout, scene, final) if layout is not None else None
        if self._tiles is not None:
            self._tiles.adapt_profile(self.profile, self.creation_options)

    @property
    def copy_tile(self) -> int | None:
        """The tile side (pixels) if unwritten tiles are copied from the input, else None."""
        return self._tiles.side if self._tiles is not None else None

    def no_tile_copy(self) -> None:
        """Write every tile (call before entering): the caller cannot write whole tiles."""
        if self._ds is not None:
            raise RunError(f"{self.final}: no_tile_copy after the file was created")
        if self._tiles is not None:
            self._tiles = None
            self.profile.pop("SPARSE_OK", None)

    def __enter__(self) -> OutputFile:
        # The temporary file is created here first, so a folder that cannot take it (read-only,
        # not writable, full) is reported from its errno, before GDAL's generic "cannot create".
        try:
            os.close(os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644))
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise self._failed("creating the temporary file", e, 0) from e
            raise OutputError(
                f"{self.final}: cannot write in {self.final.parent} ({e.strerror or e}); "
                "choose a writable output folder"
            ) from e
        try:
            profile = encoding_profile(self.profile, _SCENES_ENCODING.get(), _cores())
            self._ds = rasterio.open(self.tmp, "w", **profile)
        except (RasterioError, OSError) as e:
            remove_quietly(self.tmp)
            raise OutputError(f"{self.final}: cannot create the output ({gdal_message(e)})") from e
        copy_metadata(self._ds, self.scene)
        return self

    def write(self, data: NDArray[Any], window: Window, mask: NDArray[Any] | None = None) -> None:
        """Write all bands of ``window`` (``data`` is (count, h, w) of the scene dtype) and, with
        ``dataset_mask``, its GDAL mask (``mask``: (h, w) uint8, 0 invalid, 255 valid)."""
        if self._ds is None:
            raise RunError(f"{self.final}: OutputFile used outside its with-block")
        if self._tiles is not None:
            self._tiles.mark(window)
        try:
            self._ds.write(data, window=window)
            if self.dataset_mask and mask is not None:
                with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
                    self._ds.write_mask(mask, window=window)
        except (RasterioError, OSError) as e:
            raise self._failed(f"writing window {window}", e, data.nbytes) from e

    def commit(self) -> None:
        """Close, convert to COG if asked, check the file, and rename it to the final path.

        geomask's tags (provenance: what marks a finished output) are the last thing written to
        the temporary file, so a file left by a writer killed at any earlier point never carries
        them: written with the last tiles when nothing follows; after the tile copy (reopened to
        add them) when tiles are copied; by the COG conversion, whose partly written file has no
        tile of its full-resolution image yet (see :func:`geomask.output.check.read_tags`), for a COG.
        """
        if self._ds is None:
            raise RunError(f"{self.final}: commit outside the with-block or after an earlier commit")
        # Every tile written (the ROIs touch them all): nothing to copy, so the tags go with the
        # last tiles, without reopening the file to rewrite its directory.
        copy = self._tiles if self._tiles is not None and self._tiles.missing() else None
        tags_now = not self.cog and copy is None
        try:
            if tags_now:
                self._ds.update_tags(**self.tags)
            self._ds.close()
        except (RasterioError, OSError) as e:
            raise self._failed("finishing the file", e, _MIB) from e
        self._ds = None
        if copy is not None:
            copy.fill(self.tmp)
            if not self.cog:
                self._add_tags()
        ready = self.tmp
        if self.cog:
            options = cog_options(
                compress=self.compress,
                block_size=int(self.profile["blockxsize"]),
                overview_resampling=self.overview_resampling,
                creation_options=self.creation_options,
            )
            ready = self.tmp = to_cog(self.tmp, self.final, options, self.tags)
        check_readback(ready, self.final, self.scene)
        move_into_place(ready, self.final)
        self._committed = True

    def _add_tags(self) -> None:
        """Write the tags into the finished temporary GeoTIFF (GDAL rewrites its directory)."""
        try:
            write_tags(self.tmp, self.tags)
        except (RasterioError, OSError) as e:
            raise self._failed("writing the tags", e, _MIB) from e

    def __exit__(self, *exc: object) -> None:
        if self._ds is not None:
            with contextlib.suppress(Exception):
                self._ds.close()
            self._ds = None
        if not self._committed:
            remove_temporaries(self.tmp)

    def _failed(self, what: str, e: BaseException, needed: int) -> OutputError:
        """The error for a failed write, saying when the disk is full (:func:`write_failure`)."""
        return write_failure(self.final, what, e, needed)
