"""What ``geomask validate`` can check against the scenes themselves, without running anything.

:func:`scene_problems` lists the output paths of a batch (two inputs writing one output is a
problem) and, for every input that exists, reads its header only (band count, dtype, size, grid: no
pixels) to check the pipeline's band references (``bands:``, ``b7`` in an expression, k-means
bands), kernel sizes (map units converted on the scene's grid) and a numeric ``nodata`` against it.
Memory stays at a few hundred kilobytes per scene whatever the scene's size.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from geomask.config.models import (
    AllMask,
    AnyMask,
    ExpressionMask,
    GrowMask,
    KMeansMask,
    NotMask,
    Pipeline,
    ShrinkMask,
)
from geomask.config.yamlsafe import Key, key_text
from geomask.errors import ConfigError, GeomaskError, Problem
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


def _header(path: Path) -> tuple[int, str, Grid, str | None]:
    """(band count, dtype, grid, block problem or None) of a raster, from its header only."""
    import rasterio  # here: validating a pipeline without scenes does not load GDAL

    from geomask.io import block_problem

    with rasterio.open(path) as ds:
        grid = Grid(ds.crs if ds.crs else None, ds.transform, ds.height, ds.width)
        return ds.count, ds.dtypes[0], grid, block_problem(ds)


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
    for scene, _ in pairs[:MAX_SCENES]:
        if "://" in str(scene) or not Path(scene).is_file():
            continue
        try:
            count, dtype, grid, blocks = _header(Path(scene))
        except Exception:
            continue
        if blocks is not None:
            add(("input",), f"{scene}: {blocks}")
        for band in pipeline.bands or []:
            if band > count:
                add(("bands",), f"band {band} is not in {scene} ({count} band{'s' * (count != 1)})")
        if isinstance(pipeline.nodata, float):
            from geomask.convolve import nodata_problem  # here: numba loads only for a nodata number

            problem = nodata_problem(pipeline.nodata, dtype)
            if problem is not None:
                add(("nodata",), f"{problem} ({scene} is {dtype}): give a value its pixels can hold")
        for prefix, step in steps:
            for name in ("mask", "support"):
                for key, section in _sections(getattr(step, name), (*prefix, name)):
                    bands: list[int] = []
                    if isinstance(section, ExpressionMask):
                        from geomask.masks.expression import _check as expression_bands  # numba

                        key, bands = (*key, "expression"), sorted(expression_bands(section.expression)[1])
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
                if rows > grid.height or cols > grid.width:
                    add(
                        key,
                        f"the kernel is {rows}x{cols} but {scene} is only {grid.height}x{grid.width} "
                        "pixels: use a smaller kernel",
                    )
    return problems
