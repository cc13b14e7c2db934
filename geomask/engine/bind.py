"""Binding: a run's steps, nodata and bands checked against one scene and fixed to its grid.

:func:`bind_steps` validates every :class:`~geomask.spec.Step` (boundary mode, kernel size, zero-sum
kernels) and binds its masks (:meth:`geomask.masks.base.MaskSource.bind`) into the
:class:`~geomask.engine.task.BoundStep` values the window task uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from geomask.convolve import prepare_kernel
from geomask.engine.task import BoundGroup, BoundStep
from geomask.errors import ConfigError, InputError, KernelError
from geomask.io import SceneInfo
from geomask.kernels import Kernel, zero_sum_problem
from geomask.masks.base import FullMask, MaskContext, MaskSource
from geomask.pixels import effective_nodata, nodata_problem
from geomask.spec import GroupStep, Step
from geomask.windows import check_mode

__all__ = ["bind_steps", "resolve_bands", "resolve_nodata", "step_mask"]


def resolve_nodata(scene: SceneInfo, nodata: float | Literal["auto"] | str | None) -> float | None:
    """The nodata value a run uses on ``scene``: ``auto`` (the file's), ``none``/None, or a number.

    The value is compared in the scene's dtype (:func:`geomask.pixels.effective_nodata`).
    """
    if nodata == "auto":
        return effective_nodata(scene.nodata, scene.dtype)
    if nodata is None or nodata == "none":
        return None
    try:
        value = float(nodata)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"nodata must be 'auto', 'none' or a number, got {nodata!r}") from e
    problem = nodata_problem(value, scene.dtype)
    if problem is not None:
        raise ConfigError(f"{scene.path}: {problem}: give a value its pixels can hold, or nodata: none")
    return effective_nodata(value, scene.dtype)


def resolve_bands(scene: SceneInfo, bands: Sequence[int] | None, *, alpha: bool = False) -> tuple[int, ...]:
    """The 1-based bands the steps filter: ``bands``, or by default every band (with ``alpha``, the
    honoured alpha band is not data: every band but it, and listing it is refused)."""
    if bands is None:
        return scene.data_bands if alpha else tuple(range(1, scene.count + 1))
    out = []
    for b in bands:
        if isinstance(b, bool) or int(b) != b or not 1 <= int(b) <= scene.count:
            raise InputError(
                f"{scene.path}: band {b} does not exist: bands are numbered 1..{scene.count} (1-based)"
            )
        if alpha and int(b) == scene.alpha:
            raise ConfigError(
                f"{scene.path}: band {b} is the alpha band, copied unchanged; leave it out of bands, or set "
                "validity: ignore to filter it like data"
            )
        out.append(int(b))
    if len(set(out)) != len(out):
        raise ConfigError(f"bands {list(bands)} lists a band twice")
    return tuple(out)


def bind_steps(
    scene: SceneInfo, steps: Sequence[Step], nodata: float | None, *, masked: bool = False
) -> tuple[BoundStep, ...]:
    """Validate ``steps`` against ``scene`` and bind their masks to its grid.

    ``masked``: some pixels are invalid by an alpha band or a GDAL mask (as nodata).
    """
    if not steps:
        raise ConfigError("a pipeline needs at least one step (a mask and a kernel)")
    context = MaskContext(scene.grid, scene.path, nodata)
    bound = []
    for step in steps:
        if isinstance(step, GroupStep):  # per-class kernels: see geomask.engine.task
            bound.append(_bind_group(scene, step, nodata, masked))
            continue
        check_mode(step.mode)
        kernel = prepare_kernel(step.kernel, step.op)
        kernel.check_fits(*scene.grid.shape)
        problem = zero_sum_problem(
            kernel, step.normalize, nodata=nodata is not None, masked=masked, support=step.support is not None
        )
        if problem is not None:
            raise KernelError(problem)
        target = step.mask.bind(context) if step.mask is not None else FullMask()
        support = step.support.bind(context) if step.support is not None else None
        if step.fill is not None:
            _check_fill(kernel, step.fill)
        bound.append(
            BoundStep(kernel, target, support, step.mode, float(step.cval), step.normalize, step.fill)
        )
    return tuple(bound)


def _check_fill(kernel: Kernel, min_valid: int) -> None:
    """Refuse a ``min_valid`` no pixel can reach, or a fill with a kernel that has no footprint."""
    from geomask.fill import footprint_size

    cells = footprint_size(kernel)
    if isinstance(min_valid, bool) or not isinstance(min_valid, int) or not 1 <= min_valid <= cells:
        raise ConfigError(
            f"fill: min_valid must be a whole number from 1 to {cells} (the cells under kernel "
            f"{kernel.name!r}'s footprint), got {min_valid!r}"
        )


def _bind_group(scene: SceneInfo, step: GroupStep, nodata: float | None, masked: bool) -> BoundGroup:
    """Bind every branch as a step of its own, and the envelope compute_window needs."""
    branches = bind_steps(scene, step.branches(), nodata, masked=masked)
    ry = max(b.kernel.halo[0] for b in branches)
    rx = max(b.kernel.halo[1] for b in branches)
    envelope = Kernel("kernels_by", np.zeros((2 * ry + 1, 2 * rx + 1)))
    from geomask.masks.algebra import BoundAny

    target = BoundAny(tuple(b.target for b in branches), scene.grid.shape)
    first = branches[0]
    return BoundGroup(envelope, target, None, first.mode, first.cval, first.normalize, branches=branches)


def step_mask(step: Step | GroupStep) -> MaskSource | None:
    """Where ``step`` may change output pixels: its mask, or the union of a per-class step's regions.

    None: everywhere.
    """
    if not isinstance(step, GroupStep):
        return step.mask  # type: ignore[return-value]
    from geomask.masks.algebra import AnySource

    return AnySource(tuple(region for region, _ in step.regions))  # type: ignore[arg-type]
