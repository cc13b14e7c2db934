"""The kernel sections of a pipeline: one model per registry kernel, a custom matrix, per-class kernels.

The models are generated from :data:`geomask.kernels.KERNELS` (one per kernel, its parameters the
factory's), so ``geomask schema`` lists every kernel with its parameters. A parameter that is a length
takes pixels or a length in map units (``'30 m'``), converted per scene. Parameters are checked with
:func:`geomask.kernels.shape` (no weights are built); :func:`build_kernel` builds the
:class:`~geomask.kernels.Kernel` (here rather than in :mod:`geomask.config.build`, which loads the
mask sources, so ``geomask validate`` can build one for its checks).
"""

from __future__ import annotations

import inspect
import math
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import BeforeValidator, Discriminator, Field, Tag, create_model, model_validator

from geomask import kernels
from geomask.config.fields import LengthValue, Name, _length_text, _Strict
from geomask.config.masks import MaskConfig, RasterMask, VectorMask
from geomask.errors import At, KernelError
from geomask.units import LENGTH_PARAMS, Length, resolve_length

if TYPE_CHECKING:
    from geomask.grid import Grid

__all__ = [
    "KernelConfig",
    "KernelsBy",
    "MatrixKernel",
    "build_kernel",
    "kernels_by_problems",
    "resolve_kernel",
]


class _KernelBase(_Strict):
    tag: ClassVar[str] = ""

    def _params(self) -> dict[str, Any]:
        # in declaration order, so notes and messages are stable
        return {
            k: getattr(self, k) for k in type(self).model_fields if k in self.model_fields_set and k != "name"
        }

    def uses_map_units(self) -> bool:
        """Whether a parameter is a length in map units (then building the kernel needs the scene's grid)."""
        return any(isinstance(v, Length) and v.unit != "px" for v in self._params().values())

    def shape(self, grid: Grid | None = None) -> tuple[int, int]:
        """The kernel's (rows, cols) on ``grid``, from its parameters alone (no weights are built)."""
        params = self._params()
        for key, value in params.items():
            if isinstance(value, Length):
                params[key] = resolve_length(self.tag, key, value, grid)[0]
        return kernels.shape(self.tag, **params)

    @model_validator(mode="after")
    def _check(self) -> _KernelBase:
        params = self._params()
        for key, value in params.items():
            # Map units are checked per scene; here a nominal 1 pixel checks the other parameters.
            if isinstance(value, Length):
                params[key] = value.value if value.unit == "px" else 1
        try:
            kernels.shape(self.tag, **params)  # checks every parameter without building the weights
        except KernelError as e:
            raise ValueError(str(e)) from e
        return self


class MatrixKernel(_KernelBase):
    """A custom linear kernel: rows of weights, both side lengths odd."""

    tag: ClassVar[str] = "custom"
    name: Literal["custom", "matrix"] = "custom"
    matrix: list[Annotated[list[Annotated[float, Field(allow_inf_nan=False)]], Field(min_length=1)]] = Field(
        min_length=1, description="rows of weights, e.g. [[0, -1, 0], [-1, 5, -1], [0, -1, 0]]"
    )


def _kernel_model(spec: kernels.KernelSpec) -> type[_KernelBase]:
    signature = inspect.signature(spec.factory, eval_str=True)
    fields: dict[str, Any] = {"name": (Literal[spec.name], Field(description=spec.summary))}  # type: ignore[valid-type]
    for param in signature.parameters.values():
        default = ... if param.default is inspect.Parameter.empty else param.default
        annotation = param.annotation
        description = spec.params.get(param.name)
        if param.name in LENGTH_PARAMS:
            # pixels as before, or a length in map units converted per scene (geomask.units)
            annotation = Annotated[Union[annotation, LengthValue], BeforeValidator(_length_text)]  # noqa: UP007
            description = f"{description}; or a length in map units, e.g. '30 m', '0.5 km', '0.01 deg'"
        fields[param.name] = (annotation, Field(default, description=description))
    model = create_model(  # type: ignore[call-overload]
        f"{spec.name.title().replace('_', '')}Kernel",
        __base__=_KernelBase,
        __doc__=f"{spec.summary}.",
        **fields,
    )
    model.tag = spec.name
    return model


def _kernel_tag(value: Any) -> str | None:
    if isinstance(value, _KernelBase):
        return value.tag
    if not isinstance(value, dict):
        return None
    name = value.get("name")
    if name is None and "matrix" in value:
        return "custom"
    if name == "matrix":
        return "custom"
    return name if isinstance(name, str) else None


_KERNEL_MODELS: dict[str, type[_KernelBase]] = {
    **{name: _kernel_model(spec) for name, spec in kernels.KERNELS.items()},
    "custom": MatrixKernel,
}
KernelConfig = Annotated[
    Union[tuple(Annotated[m, Tag(t)] for t, m in _KERNEL_MODELS.items())],  # type: ignore[valid-type] # noqa: UP007
    Discriminator(_kernel_tag),
]
"""``{name: NAME, <params>}`` for a registry kernel or ``{matrix: [[...]]}`` for a custom one."""


class KernelsBy(_Strict):
    """Per-class kernels: each class of the step's mask gets its own kernel, in one pass."""

    attribute: Name | None = Field(
        None, description="for a vector mask: the attribute whose values name the classes"
    )
    kernels: dict[Annotated[str, Field(min_length=1)], KernelConfig] = Field(
        min_length=1,
        description="class -> kernel: attribute values of a vector mask, or class values of a raster mask "
        "(YAML keys are text: '3' or 3 both mean class 3)",
    )


def _class_value(key: str) -> float | None:
    """A raster class key as a number (YAML keys are text), or None when it is not one."""
    try:
        value = float(key)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def kernels_by_problems(
    mask: MaskConfig | None, kernel: Any, kernels_by: KernelsBy | None, present: bool = True
) -> list[At]:
    """Problems of a step's ``kernel``/``kernels_by``/``mask`` combination (keys relative to the step).

    ``present`` is whether the step says which kernel(s) to apply at all (false: report it missing).
    """
    if kernels_by is None:
        if kernel is None and present:
            return [
                At(("kernel",), "missing required key 'kernel' (or 'kernels_by'): say which kernel to apply")
            ]
        return []
    if kernel is not None:
        return [At(("kernels_by",), "give either kernel or kernels_by, not both")]
    if isinstance(mask, VectorMask):
        if kernels_by.attribute is None:
            return [
                At(
                    ("kernels_by",),
                    "missing required key 'attribute': the vector attribute naming the classes",
                )
            ]
        return []
    if isinstance(mask, RasterMask):
        if kernels_by.attribute is not None:
            return [
                At(
                    ("kernels_by", "attribute"),
                    "attribute is for vector masks; a raster mask's classes are its pixel values",
                )
            ]
        if mask.bits is not None or mask.bitfield is not None:
            return [
                At(
                    ("kernels_by",),
                    "kernels_by needs a raster mask with values or range (classes); a bits/bitfield "
                    "mask selects flags, not classes",
                )
            ]
        for key in kernels_by.kernels:
            value = _class_value(key)
            if value is None:
                return [
                    At(("kernels_by", "kernels", key), f"class {key!r} of a raster mask must be a number")
                ]
            if not mask.selects(value):
                return [
                    At(
                        ("kernels_by", "kernels", key),
                        f"class {key} is not selected by the mask (values/range), so its kernel would "
                        "never apply; add it to the mask's values or range",
                    )
                ]
        return []
    return [
        At(
            ("kernels_by",),
            "kernels_by needs mask: {vector: PATH} (classes from an attribute) or "
            "{raster: PATH, values: [..]} (classes from its values)",
        )
    ]


def resolve_kernel(kernel: _KernelBase, grid: Grid | None = None) -> tuple[kernels.Kernel, list[str]]:
    """The kernel with its lengths converted to pixels on ``grid``, and a note per map-unit length.

    Raises
    ------
    KernelError
        A length in map units without ``grid``, a unit that does not suit the grid's CRS, or
        non-square pixels that give different sizes along x and y (see :mod:`geomask.units`).
    GridError
        A length in map units on a grid without CRS.
    """
    params = kernel._params()
    notes = []
    for key, value in params.items():
        if isinstance(value, Length):
            params[key], note = resolve_length(kernel.tag, key, value, grid)
            if value.unit != "px":
                notes.append(note)
    return kernels.get(kernel.tag, **params), notes


def build_kernel(kernel: _KernelBase, grid: Grid | None = None) -> kernels.Kernel:
    """The validated :class:`~geomask.kernels.Kernel`, lengths converted with ``grid``'s pixel size."""
    return resolve_kernel(kernel, grid)[0]
