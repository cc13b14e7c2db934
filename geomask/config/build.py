"""Config to engine: the one place that turns validated config models into the objects a run uses.

One function per pair, each a field-by-field conversion:

* a mask section -> its :class:`~geomask.masks.MaskSource` (:func:`build_source`), a ``kernels_by``
  step -> one source per class (:func:`build_region_sources`), a pipeline -> the mask a run applies
  kernels inside (:func:`build_mask_source`);
* a kernel section -> its :class:`~geomask.kernels.Kernel` (:func:`build_kernel`, and
  :func:`resolve_kernel` with the notes on map units), lengths in map units converted on the scene's
  grid;
* a step -> the engine's :class:`~geomask.engine.Step` or :class:`~geomask.engine.GroupStep`
  (:func:`build_step`, :func:`build_steps` for a whole pipeline);
* a pipeline's ``output`` -> an :class:`~geomask.engine.OutputSpec` (:func:`build_output`);
* a run profile -> :class:`~geomask.engine.RunOptions` (:func:`build_run_options`).

This is the only config module that imports the engine or the mask sources (:func:`build_kernel` and
:func:`resolve_kernel` live with the kernel models, :mod:`geomask.config.kernels`, and are re-exported
here): the models (and ``import geomask.config``, ``geomask validate``) load no rasterio, dask or
numba, and this module loads them when a run needs them. :mod:`geomask.config` does not import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from geomask.config.cluster import cluster_options
from geomask.config.inputs import AssetRef
from geomask.config.kernels import _class_value, build_kernel, resolve_kernel
from geomask.config.masks import (
    AllMask,
    AnyMask,
    BboxMask,
    ExpressionMask,
    GrowMask,
    KMeansMask,
    MaskConfig,
    NotMask,
    RasterMask,
    ShrinkMask,
    VectorMask,
)
from geomask.config.pipeline import Pipeline, StepConfig
from geomask.config.profile import Profile
from geomask.errors import ConfigError
from geomask.grid import Grid
from geomask.masks import (
    AllSource,
    AnySource,
    BboxSource,
    ExpressionSource,
    FullSource,
    GrowSource,
    KMeansSource,
    MaskSource,
    NotSource,
    RasterSource,
    ShrinkSource,
    VectorSource,
)
from geomask.masks.assets import AssetSource
from geomask.spec import GroupStep, OutputSpec, RunOptions, Step

__all__ = [
    "build_kernel",
    "build_mask_source",
    "build_output",
    "build_region_sources",
    "build_run_options",
    "build_source",
    "build_step",
    "build_steps",
    "resolve_kernel",
    "unit_notes",
]


# --- masks ---------------------------------------------------------------------------------------


def build_source(mask: MaskConfig) -> MaskSource:
    """The :class:`~geomask.masks.MaskSource` a mask section describes (nested forms included).

    Sources check their parameters on construction and read no file.

    Raises
    ------
    ConfigError
        Not a mask section (a validated one always is).
    """
    if isinstance(mask, VectorMask):
        return _vector_source(mask)
    if isinstance(mask, BboxMask):
        xmin, ymin, xmax, ymax = mask.bbox
        return BboxSource((xmin, ymin, xmax, ymax), crs=mask.crs)
    if isinstance(mask, RasterMask):
        return _raster_source(mask, mask.values)
    if isinstance(mask, ExpressionMask):
        return ExpressionSource(mask.expression)
    if isinstance(mask, KMeansMask):
        p = mask.kmeans
        return KMeansSource(p.k, p.select, bands=p.bands, sample=p.sample, seed=p.seed)
    if isinstance(mask, AnyMask):
        return AnySource(tuple(build_source(m) for m in mask.any))
    if isinstance(mask, AllMask):
        return AllSource(tuple(build_source(m) for m in mask.all))
    if isinstance(mask, NotMask):
        return NotSource(build_source(mask.not_))
    if isinstance(mask, GrowMask):
        return GrowSource(build_source(mask.mask), mask.grow)
    if isinstance(mask, ShrinkMask):
        return ShrinkSource(build_source(mask.mask), mask.shrink)
    raise ConfigError(f"not a mask section: {mask!r}")


def _vector_source(mask: VectorMask, attribute_equals: tuple[str, str] | None = None) -> VectorSource:
    """The :class:`~geomask.masks.VectorSource` of ``mask``, optionally only the features whose
    attribute equals a text (``(attribute, text)``, for ``kernels_by``)."""
    return VectorSource(
        mask.vector,
        layer=mask.layer,
        all_touched=mask.all_touched,
        where=mask.where,
        buffer=mask.buffer,
        crs=mask.crs,
        require_overlap=mask.require_overlap,
        attribute_equals=attribute_equals,
        where_time_limit=mask.where_time_limit,
    )


def build_region_sources(step: StepConfig) -> list[MaskSource]:
    """With ``kernels_by``: the mask of each class, in the order of ``kernels``.

    A vector mask's class is the features whose ``attribute`` equals the class name; a raster
    mask's, the pixels whose value equals the class key read as a number.

    Raises
    ------
    ConfigError
        The step has no ``kernels_by`` or its mask is neither a vector nor a raster mask.
    """
    by = step.kernels_by
    if by is None or not isinstance(step.mask, (VectorMask, RasterMask)):
        raise ConfigError("kernels_by needs a vector or raster mask")
    sources: list[MaskSource] = []
    for value in by.kernels:
        if isinstance(step.mask, VectorMask):
            if by.attribute is None:
                raise ConfigError("kernels_by on a vector mask needs attribute")
            sources.append(_vector_source(step.mask, attribute_equals=(by.attribute, value)))
        else:
            number = _class_value(value)
            if number is None:  # not reachable for a validated step (see kernels_by_problems)
                raise ConfigError(f"class {value!r} of a raster mask must be a number")
            sources.append(_raster_source(step.mask, [number]))
    return sources


def _raster_source(mask: RasterMask, values: list[float] | None) -> MaskSource:
    """The class-raster source of ``mask`` with ``values`` as its class selection (None: its range or
    bits): a file's :class:`RasterSource`, or an :class:`AssetSource` resolved per product."""
    rng = None if values is not None or mask.range is None else (mask.range[0], mask.range[1])
    field = None if mask.bitfield is None else mask.bitfield.as_tuple()
    if values is not None:
        bits, field = None, None
    else:
        bits = mask.bits
    if isinstance(mask.raster, AssetRef):
        return AssetSource(
            mask.raster.asset, values=values, range=rng, band=mask.band, bits=bits, bitfield=field
        )
    return RasterSource(mask.raster, values=values, range=rng, band=mask.band, bits=bits, bitfield=field)


def build_mask_source(pipeline: Pipeline, step: int | None = None) -> MaskSource:
    """The mask a run applies kernels inside: one step's target, or the union over the steps.

    Parameters
    ----------
    pipeline : Pipeline
        A validated pipeline.
    step : int or None
        1-based step number; None (default) unites every step's target. A step without a mask
        (or ``kernels_by`` regions: their union) is the whole scene.

    Raises
    ------
    ConfigError
        ``step`` is not a step number of this pipeline.
    """
    configs = pipeline.step_configs()
    if step is not None and not 1 <= step <= len(configs):
        raise ConfigError(f"step {step} does not exist: the pipeline has steps 1..{len(configs)}")
    chosen = configs if step is None else [configs[step - 1]]
    sources = []
    for config in chosen:
        if config.mask is None:
            return FullSource()
        if config.kernels_by is not None:
            sources.extend(build_region_sources(config))
        else:
            sources.append(build_source(config.mask))
    return sources[0] if len(sources) == 1 else AnySource(tuple(sources))


# --- kernels and steps ---------------------------------------------------------------------------


def build_step(step: StepConfig, grid: Grid | None = None) -> Step | GroupStep:
    """The engine's :class:`~geomask.engine.Step` (or, with ``kernels_by``, its
    :class:`~geomask.engine.GroupStep`), kernel lengths converted with ``grid``.

    ``support: target`` is the step's mask source (a :class:`~geomask.engine.Step`) or ``"target"``
    (a :class:`~geomask.engine.GroupStep`: each class's own region).
    """
    if step.kernels_by is not None:
        return _build_group(step, grid)
    if step.kernel is None:  # not reachable for a validated step (see _check)
        raise ConfigError("a step needs a kernel or kernels_by")
    mask = build_source(step.mask) if step.mask is not None else None
    if step.support == "target":
        support = mask
    else:
        support = build_source(step.support) if step.support is not None else None
    return Step(
        kernel=build_kernel(step.kernel, grid),
        mask=mask,
        op=step.op,
        mode=step.boundary,
        cval=step.cval,
        normalize=step.normalize,
        support=support,
        fill=None if step.fill is None else step.fill.min_valid,
    )


def _build_group(step: StepConfig, grid: Grid | None) -> GroupStep:
    by = step.kernels_by
    if by is None:
        raise ConfigError("kernels_by is not set")
    regions = tuple(
        (source, build_kernel(kernel, grid))
        for source, kernel in zip(build_region_sources(step), by.kernels.values(), strict=True)
    )
    support: MaskSource | Literal["target"] | None
    if step.support == "target":
        support = "target"
    else:
        support = build_source(step.support) if step.support is not None else None
    return GroupStep(
        regions,
        op=step.op,
        mode=step.boundary,
        cval=step.cval,
        normalize=step.normalize,
        support=support,
        label=by.attribute or "class",
    )


def build_steps(pipeline: Pipeline, grid: Grid | None = None) -> list[Step | GroupStep]:
    """The engine's steps, in order (kernels built and validated).

    ``grid`` is the scene's, needed when a kernel size is in map units
    (:meth:`~geomask.config.Pipeline.uses_map_units`): those sizes are converted with its pixel size
    and CRS (:mod:`geomask.units`).
    """
    return [build_step(step, grid) for step in pipeline.step_configs()]


def unit_notes(pipeline: Pipeline, grid: Grid) -> list[str]:
    """How each kernel size in map units converts on ``grid``, e.g. ``gaussian sigma 30 m = 1 px``."""
    configs = pipeline.step_configs()
    notes = []
    for i, step in enumerate(configs, start=1):
        prefix = f"step {i}: " if len(configs) > 1 else ""
        for kernel in step.kernel_configs():
            notes.extend(prefix + note for note in resolve_kernel(kernel, grid)[1])
    return notes


# --- output and run options -----------------------------------------------------------------------


def build_output(
    pipeline: Pipeline,
    path: Path,
    creation_options: Mapping[str, str] | None = None,
    *,
    overwrite: bool = False,
    tags: Mapping[str, str] | None = None,
) -> OutputSpec:
    """The engine's :class:`~geomask.engine.OutputSpec` for one scene's (local) output ``path``.

    Parameters
    ----------
    pipeline : Pipeline
        Gives ``output.format``, ``output.compress`` and ``output.overview_resampling``.
    path : Path
        Where this scene's output is written (the staged local file for an ``s3://`` output).
    creation_options : mapping or None
        Extra GDAL creation options (the profile's ``creation_options``), copied.
    overwrite : bool
        Whether an existing file at ``path`` is replaced (the run's resume decision, not
        ``output.overwrite``).
    tags : mapping or None
        Metadata tags written into the output (provenance), copied.
    """
    return OutputSpec(
        path=path,
        format=pipeline.output.format,
        compress=pipeline.output.compress,
        creation_options=dict(creation_options or {}),
        overwrite=overwrite,
        tags=dict(tags or {}),
        dtype=pipeline.output.dtype,
        clip=pipeline.output.clip,
        nodata=pipeline.output.nodata if pipeline.output.nodata != "nan" else float("nan"),
        overview_resampling=pipeline.output.overview_resampling,
    )


def build_run_options(profile: Profile, **overrides: Any) -> RunOptions:
    """The engine's :class:`~geomask.engine.RunOptions` of ``profile``; ``overrides`` that are not None win.

    ``overrides`` are RunOptions fields (``window_size``, ``scheduler``, ``workers`` ...), e.g. the
    command line's options; the profile's ``gdal`` becomes ``gdal_options``.
    """
    values: dict[str, Any] = {
        "window_size": profile.window_size,
        "copy_tiles": profile.copy_tiles,
        "scheduler": profile.scheduler,
        "workers": profile.workers,
        "threads_per_worker": profile.threads_per_worker,
        "memory_limit": profile.memory_limit,
        "gdal_options": dict(profile.gdal),
        "distribute": profile.distribute,
        **cluster_options(profile.cluster),
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return RunOptions(**values)
