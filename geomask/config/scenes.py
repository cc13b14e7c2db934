"""What ``geomask validate`` can check against the scenes themselves, without running anything.

:func:`scene_problems` lists the output paths of a batch (two inputs writing one output is a
problem) and, for every input that exists, reads its header only (band count, dtype, size, grid: no
pixels) to check the pipeline's band references (``bands:``, ``b7`` in an expression, k-means
bands), kernel sizes (map units converted on the scene's grid) and a numeric ``nodata`` against it.
Memory stays at a few hundred kilobytes per scene whatever the scene's size.

A plain local GeoTIFF's header is read by :mod:`geomask.tiffheader` (no rasterio/GDAL, a third of a
second); rasterio opens the scene only for what that reader leaves to it (other formats, URLs, odd
TIFFs, blocks that may be too large), for the grid when a kernel length is in map units, and for the
nodata and mask flags when a kernel whose weights may sum to 0 is renormalised.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geomask.config.inputs import AssetRef, BandsInput, is_product_input, products
from geomask.config.masks import (
    AllMask,
    AnyMask,
    ExpressionMask,
    GrowMask,
    KMeansMask,
    NotMask,
    RasterMask,
    ShrinkMask,
)
from geomask.config.pipeline import Pipeline
from geomask.config.yamlsafe import Key, key_text
from geomask.errors import ConfigError, GeomaskError, Problem
from geomask.product import Product
from geomask.urls import is_url

if TYPE_CHECKING:
    from geomask.grid import Grid

__all__ = ["MAX_SCENES", "scene_problems"]

MAX_SCENES = 1000
"""Headers read per pipeline; a larger batch is checked on its first scenes (problems repeat)."""


def _sections(section: object, key: Key) -> Iterator[tuple[Key, object]]:
    """Every mask section in ``section`` (itself and the nested ones), with its key."""
    if section is None:
        return
    yield key, section
    if isinstance(section, (AnyMask, AllMask)):
        form = "any" if isinstance(section, AnyMask) else "all"
        for i, item in enumerate(section.any if isinstance(section, AnyMask) else section.all):
            yield from _sections(item, (*key, form, i))
    elif isinstance(section, NotMask):
        yield from _sections(section.not_, (*key, "not"))
    elif isinstance(section, (GrowMask, ShrinkMask)):
        yield from _sections(section.mask, (*key, "mask"))


def _header(path: Path, grid: bool) -> tuple[int, str, tuple[int, int], Grid | None, str | None]:
    """(band count, dtype, (rows, cols), grid, block problem or None) of a raster, from its header only.

    The grid (CRS and transform) is read only when ``grid`` is true (a kernel length in map units
    needs it; else None). A plain local GeoTIFF is read by :func:`geomask.tiffheader.read_header`,
    without loading rasterio (a third of a second); anything else, a file whose blocks may be too
    large (for the exact message) and a grid are read with rasterio.
    """
    from geomask.tiffheader import MAX_BLOCK_BYTES, read_header

    header = None if grid else read_header(path)
    if header is not None and header.max_block_bytes() <= MAX_BLOCK_BYTES:
        return header.count, header.dtype, (header.height, header.width), None, None
    import rasterio  # here: validating a pipeline without scenes does not load GDAL

    from geomask.grid import Grid
    from geomask.io import block_problem

    with rasterio.open(path) as ds:
        found = Grid(ds.crs if ds.crs else None, ds.transform, ds.height, ds.width) if grid else None
        return ds.count, ds.dtypes[0], (ds.height, ds.width), found, block_problem(ds)


def _bits_problem(section: object, found: Sequence[Product] = ()) -> str | None:
    """Why a bits/bitfield raster mask cannot read its file's band (float, too narrow), from the header.

    ``raster: {asset: NAME}`` is checked on the asset's file in each product of ``found``.
    """
    if not isinstance(section, RasterMask) or (section.bits is None and section.bitfield is None):
        return None
    if isinstance(section.raster, AssetRef):
        for product in found:
            try:
                asset = product.asset(section.raster.asset)
            except KeyError:
                continue  # an unknown name is band_problems' report
            band = asset.band if section.band == 1 else section.band
            problem = _bits_problem(section.model_copy(update={"raster": asset.href, "band": band}))
            if problem is not None:
                return f"{{asset: {section.raster.asset}}} is {problem}"
        return None
    path = section.raster
    if not isinstance(path, (str, Path)) or "://" in str(path) or not Path(path).is_file():
        return None  # a missing file is file_problems' report, a URL is checked when it is read
    from geomask.masks.bits import BitSelection  # here: only a bits mask with an existing file gets here

    field = None if section.bitfield is None else section.bitfield.as_tuple()
    bits = BitSelection(None if section.bits is None else tuple(section.bits), field)
    from geomask.tiffheader import read_header

    header = read_header(path)
    try:
        if header is None:
            import rasterio  # here: validating a pipeline without masks does not load GDAL

            with rasterio.open(path) as ds:
                count, dtypes = ds.count, ds.dtypes
        else:  # a plain GeoTIFF: no GDAL
            count, dtypes = header.count, (header.dtype,) * header.count
    except Exception:
        return None  # unreadable: reported by the run
    if section.band > count:
        return None  # reported by the run, with the band count
    dtype = dtypes[section.band - 1]
    problem: str | None = bits.dtype_problem(dtype)
    return None if problem is None else f"{path}: {problem}"


def _validity(path: Path, pipeline: Pipeline) -> tuple[bool, bool] | None:
    """(a nodata value, alpha or GDAL mask pixels) of the scene at ``path`` as a run resolves them
    with ``pipeline``'s ``nodata`` and ``validity``; None when its header cannot be read."""
    from geomask.io import inspect_scene
    from geomask.pixels import effective_nodata

    try:
        scene = inspect_scene(path)
    except GeomaskError:
        return None  # reported by a run, with its own message
    # As geomask.engine.bind.resolve_nodata (which would load the compiled kernels); an out-of-range
    # number is reported on its own (nodata_problem).
    if pipeline.nodata == "auto":
        nodata = effective_nodata(scene.nodata, scene.dtype)
    elif isinstance(pipeline.nodata, float):
        nodata = effective_nodata(pipeline.nodata, scene.dtype)
    else:
        nodata = None
    honour = pipeline.validity == "honour"
    return nodata is not None, honour and (scene.alpha is not None or scene.dataset_mask)


def _zero_sum_problem(
    kernel: object, step: Any, grid: Grid | None, validity: Callable[[], tuple[bool, bool] | None]
) -> str | None:
    """The run's refusal of a zero-sum kernel (:func:`geomask.engine.bind.zero_sum_problem`), or None.

    ``validity`` is called (it opens the scene with rasterio) only for a kernel that could be refused.
    """
    from geomask.config.kernels import build_kernel
    from geomask.kernels import can_sum_to_zero, zero_sum_problem

    if not can_sum_to_zero(kernel.tag):  # type: ignore[attr-defined]
        return None  # known without building its weights (numpy)
    try:  # the weights' sum and kind do not change when op: convolve flips the kernel
        built = build_kernel(kernel, grid)  # type: ignore[arg-type]
    except GeomaskError:
        return None  # reported with the kernel
    if zero_sum_problem(built, step.normalize, nodata=True, masked=True, support=True) is None:
        return None  # not refused whatever the scene
    found = validity()
    if found is None:
        return None  # the header cannot be read: reported by a run
    nodata, masked = found
    return zero_sum_problem(
        built, step.normalize, nodata=nodata, masked=masked, support=step.support is not None
    )


def scene_problems(pipeline: Pipeline) -> list[Problem]:
    """Problems of ``pipeline`` with its actual scenes (see the module docstring); [] when none.

    Inputs that do not exist, URLs and unreadable files are skipped (the first are reported by
    :func:`geomask.config.file_problems`, the others by a run).
    """
    source = pipeline.source
    if source is None:  # not reachable: load_pipeline records it
        raise ConfigError("no source positions recorded")
    problems: list[Problem] = []
    seen: set[tuple[Key, str]] = set()

    def add(key: Key, message: str) -> None:
        if (key, message) not in seen:
            seen.add((key, message))
            where = source.value_position(key) or source.key_position(key)
            problems.append(Problem(source.file, where, key_text(key), message))

    try:
        pairs = pipeline.scenes()
    except GeomaskError:  # two inputs, one output ...: reported by file_problems, which validate runs too
        return problems
    prefixes: list[Key] = [("steps", i) for i in range(len(pipeline.steps))] if pipeline.steps else [()]
    steps = list(zip(prefixes, pipeline.step_configs(), strict=True))
    product = is_product_input(pipeline.input)
    if product:  # band files: their headers and the names the masks use
        for key, message in band_problems(pipeline):
            add(key, message)
    try:
        found = products(pipeline) if product else []
    except GeomaskError:  # reported by band_problems
        found = []
    for prefix, step in steps:
        for name in ("mask", "support"):
            for key, section in _sections(getattr(step, name), (*prefix, name)):
                problem = _bits_problem(section, found)
                if problem is not None and isinstance(section, RasterMask):
                    add((*key, "bits" if section.bits is not None else "bitfield"), problem)
    # The scene's grid (CRS, transform: rasterio) is read only when a kernel length is in map units.
    map_units = any(
        kernel.uses_map_units()
        for _, step in steps
        for kernel in (step.kernels_by.kernels.values() if step.kernels_by is not None else [step.kernel])
        if kernel is not None
    )
    for scene, _ in pairs[:MAX_SCENES]:
        if "://" in str(scene) or not Path(scene).is_file():
            continue
        try:
            count, dtype, (height, width), grid, blocks = _header(Path(scene), map_units)
        except Exception:
            continue
        if blocks is not None:
            add(("input",), f"{scene}: {blocks}")
        validity = functools.cache(functools.partial(_validity, Path(scene), pipeline))
        for band in [] if product else pipeline.bands or []:
            if band > count:  # type: ignore[operator]  # numbers: names need a product input
                add(("bands",), f"band {band} is not in {scene} ({count} band{'s' * (count != 1)})")
        if pipeline.output.dtype is not None:
            from geomask.dtypes import conversion_problem  # numpy: only with these keys

            problem = conversion_problem(dtype, pipeline.output.dtype, pipeline.output.clip)
            if problem is not None:
                add(("output", "dtype"), f"{scene} is {dtype}: {problem}")
        elif pipeline.output.nodata != "auto":  # with dtype, checked by the output section itself
            from geomask.dtypes import output_nodata_problem

            problem = output_nodata_problem(float(pipeline.output.nodata), dtype)
            if problem is not None:
                add(("output", "nodata"), f"{scene} is {dtype}: {problem}")
        if isinstance(pipeline.nodata, float):
            from geomask.pixels import nodata_problem

            problem = nodata_problem(pipeline.nodata, dtype)
            if problem is not None:
                add(("nodata",), f"{problem} ({scene} is {dtype}): give a value its pixels can hold")
        for prefix, step in steps:
            for name in ("mask", "support"):
                for key, section in _sections(getattr(step, name), (*prefix, name)):
                    bands: list[int] = []
                    if isinstance(section, ExpressionMask):
                        from geomask.bandmath import check_expression

                        _, numbers, names = check_expression(section.expression)
                        key, bands = (*key, "expression"), [] if product else sorted(numbers)
                        if names and not product:
                            add(
                                key,
                                f"{', '.join(sorted(names))}: {scene} is a single file whose bands are "
                                f"b1..b{count}; band names need input: {{bands: {{NAME: FILE, ...}}}}",
                            )
                    elif (
                        isinstance(section, RasterMask)
                        and isinstance(section.raster, AssetRef)
                        and not product
                    ):
                        add(
                            (*key, "raster"),
                            f"{{asset: {section.raster.asset}}} names an asset of a product, but "
                            f"{scene} is a single file: give the class raster's path",
                        )
                    elif isinstance(section, KMeansMask):
                        key, bands = (*key, "kmeans", "bands"), list(section.kmeans.bands or [])
                    missing = [f"b{b}" if key[-1] == "expression" else str(b) for b in bands if b > count]
                    if missing:
                        add(key, f"band {', '.join(missing)} is not in {scene} ({count} bands: b1..b{count})")
            kernel_keys: list[tuple[Key, object]] = (
                [((*prefix, "kernels_by", "kernels", c), k) for c, k in step.kernels_by.kernels.items()]
                if step.kernels_by is not None
                else [((*prefix, "kernel"), step.kernel)]
            )
            for key, kernel in kernel_keys:
                try:
                    rows, cols = kernel.shape(grid)  # type: ignore[attr-defined]
                except GeomaskError as e:
                    add(key, str(e))
                    continue
                if rows > height or cols > width:
                    add(
                        key,
                        f"the kernel is {rows}x{cols} but {scene} is only {height}x{width} "
                        "pixels: use a smaller kernel",
                    )
                    continue
                if step.normalize:
                    problem = _zero_sum_problem(kernel, step, grid, validity)
                    if problem is not None:
                        add(key, f"{scene}: {problem}")
                if step.fill is not None and step.kernels_by is None:
                    from geomask.config.kernels import build_kernel  # here: only a fill step builds one
                    from geomask.fill import footprint_size

                    cells = footprint_size(build_kernel(kernel, grid))
                    if step.fill.min_valid > cells:
                        add(
                            (*prefix, "fill", "min_valid"),
                            f"min_valid {step.fill.min_valid} is more than the {cells} cells under the "
                            "kernel's footprint, so no pixel could be filled",
                        )
    return problems


def _used_names(pipeline: Any) -> set[str]:
    """The band and asset names the masks and supports of ``pipeline`` read."""
    from geomask.bandmath import check_expression

    names: set[str] = set()
    for config in pipeline.step_configs():
        for field in ("mask", "support"):
            for _, section in _sections(getattr(config, field), ()):
                if isinstance(section, RasterMask) and isinstance(section.raster, AssetRef):
                    names.add(section.raster.asset)
                elif isinstance(section, ExpressionMask):
                    try:
                        names |= check_expression(section.expression)[2]
                    except GeomaskError:
                        continue  # reported with the expression
    return names


def band_problems(pipeline: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """What ``geomask validate`` reports about a product input, as (key, message) pairs.

    Every band or asset file that exists must open as a GeoTIFF (its header only); every band or
    asset name the masks use must be one the product has (:func:`geomask.masks.assets.for_band`).
    Missing files are reported by :func:`geomask.config.file_problems`.
    """
    from geomask.config.build import build_source
    from geomask.io import inspect_scene
    from geomask.masks.assets import for_band

    problems: list[tuple[tuple[str | int, ...], str]] = []
    try:
        found = products(pipeline)
    except GeomaskError as e:
        return [(("input",), str(e))]
    keyed = pipeline.input.bands if isinstance(pipeline.input, BandsInput) else {}
    used = _used_names(pipeline)
    for product in found:
        for name, asset in {**product.bands, **product.assets}.items():
            key: tuple[str | int, ...] = ("input", "bands", name) if name in keyed else ("input",)
            if is_url(asset.href):
                continue
            if not os.path.exists(asset.href):
                read = name in product.bands or name in used or asset.common_name in used
                if not keyed and read:  # a band file of input.bands is file_problems' report
                    problems.append(
                        (("input", "stac"), f"{product.id}: asset {name}: no such file {asset.href}")
                    )
                continue
            try:
                inspect_scene(asset.href)
            except GeomaskError as e:
                problems.append((key, str(e)))
        prefixes = [("steps", i) for i in range(len(pipeline.steps))] if pipeline.steps else [()]
        for prefix, config in zip(prefixes, pipeline.step_configs(), strict=True):
            for field in ("mask", "support"):
                section = getattr(config, field)
                if section is None or isinstance(section, str):
                    continue
                try:
                    for_band([build_source(section)], product, pipeline.nodata)
                except GeomaskError as e:
                    problems.append(((*prefix, field), str(e)))
    return problems
