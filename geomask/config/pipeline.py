"""The pipeline model: steps (a kernel inside a mask), the output, and the whole file.

:class:`Pipeline` is what :func:`geomask.config.load_pipeline` returns: the input scene(s), bands,
nodata, either one step at the top level or ``steps:``, and :class:`OutputConfig`.
:func:`shape_problems` checks what involves several keys, so a file with invalid fields still gets
those problems reported. :mod:`geomask.config.build` turns a pipeline into the engine's steps and
output spec.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Discriminator, Field, PrivateAttr, Tag, model_validator

from geomask.config.fields import (
    Boundary,
    Compress,
    FilePath,
    InputPaths,
    Nodata,
    Op,
    OverviewResampling,
    _lower,
    _Strict,
)
from geomask.config.fill import FillConfig, fill_problems
from geomask.config.inputs import (
    BandName,
    BandsInput,
    band_form,
    band_scenes,
    input_form,
    input_problems,
    is_product_input,
)
from geomask.config.kernels import KernelConfig, KernelsBy, kernels_by_problems
from geomask.config.masks import MaskConfig, SupportConfig
from geomask.config.output import OutputDtype, OutputNodata
from geomask.config.paths import scene_pairs
from geomask.config.stac_input import StacInput
from geomask.config.yamlsafe import SourceMap
from geomask.errors import At, ConfigError
from geomask.templates import check_template

__all__ = ["OutputConfig", "Pipeline", "StepConfig", "shape_problems"]

_OP = Field(description="convolve (kernel flipped, as scipy.ndimage.convolve) or correlate")
_BOUNDARY = Field(
    description="values beyond the scene edge: reflect, mirror, nearest, wrap, constant (cval) or "
    "leave (pixels whose kernel leaves the scene stay unchanged)"
)
_CVAL = Field(description="the value beyond the scene edge for boundary: constant")
_NORMALIZE = Field(description="renormalise the kernel over the valid (non-nodata, supported) neighbours")
_SUPPORT = Field(
    description="only pixels inside this mask contribute as neighbours (default: all valid); any mask "
    "form, or target (the step's mask; with kernels_by, each class's own region)"
)
_KERNEL = Field(description="the kernel: {name: NAME, <params>} or {matrix: [[...]]}")
_KERNELS_BY = Field(
    description="per-class kernels instead of kernel: {attribute: NAME, kernels: {CLASS: KERNEL, ...}} on a "
    "vector mask, or {kernels: {VALUE: KERNEL, ...}} on a raster mask; later classes win where they overlap"
)
_MASK = Field(description="where the kernel applies (default: the whole scene)")
_FILL = Field(
    description="{nodata: true, min_valid: N}: a fill step; only nodata pixels of the mask change, each "
    "with at least N valid neighbours under the kernel taking its value over them"
)


class StepConfig(_Strict):
    """One kernel applied inside one mask; steps run in order, each on the previous result.

    With ``kernels_by`` instead of ``kernel``, each class of the mask gets its own kernel, all applied to
    the same input in one step (see :class:`~geomask.engine.GroupStep`): the classes of a vector mask
    are the values of ``attribute`` (features of the mask, after its ``where``, whose attribute equals
    the class); those of a raster mask are its pixel values (each must be selected by the mask's
    ``values``/``range``). Selected pixels of a class without a kernel stay unchanged; where regions
    overlap (vector features), the class listed later wins.
    """

    mask: Annotated[MaskConfig | None, _MASK] = None
    kernel: Annotated[KernelConfig | None, _KERNEL] = None
    kernels_by: Annotated[KernelsBy | None, _KERNELS_BY] = None
    op: Annotated[Op, _OP] = "convolve"
    boundary: Annotated[Boundary, _BOUNDARY] = "reflect"
    cval: Annotated[float, _CVAL] = 0.0
    normalize: Annotated[bool, _NORMALIZE] = True
    support: Annotated[SupportConfig | None, _SUPPORT] = None
    fill: Annotated[FillConfig | None, _FILL] = None

    @model_validator(mode="after")
    def _check(self) -> StepConfig:
        problems = kernels_by_problems(self.mask, self.kernel, self.kernels_by)
        problems += fill_problems(self.fill, self.kernels_by)
        if problems:
            raise problems[0]
        return self

    def kernel_configs(self) -> list[Any]:
        """Every kernel section of the step (one, or one per class with ``kernels_by``)."""
        if self.kernels_by is not None:
            return list(self.kernels_by.kernels.values())
        return [self.kernel] if self.kernel is not None else []


class OutputConfig(_Strict):
    """Where and how the result is written."""

    path: FilePath = Field(
        description="output GeoTIFF; with several inputs a template using {stem}, {name} or {parent} "
        "(and {asset}, {id} for a product input)"
    )
    format: Literal["GTiff", "COG"] = Field("GTiff", description="GTiff (tiled GeoTIFF) or COG")
    compress: Annotated[Compress, BeforeValidator(_lower)] = Field("deflate", description="compression codec")
    overwrite: bool = Field(
        False,
        description="always redo and replace the output, as --overwrite (false: reruns skip current outputs)",
    )
    overview_resampling: OverviewResampling = Field(
        "auto",
        description="COG overview resampling: auto (nearest for paletted class rasters, else average), or "
        "nearest, average, mode, bilinear, cubic, cubicspline, lanczos, rms, gauss; nodata is ignored",
    )
    stac: bool = Field(False, description="also write a STAC Item (OUTPUT.json) beside each output")
    dtype: OutputDtype | None = Field(
        None, description="data type of the output (default: the input's), e.g. float32 or int16"
    )
    clip: bool = Field(
        False,
        description="allow an output dtype that cannot hold every input value: values are rounded half to "
        "even and clipped to its range",
    )
    nodata: OutputNodata = Field(
        "auto",
        description="the output's nodata: auto (the input's; with dtype, NaN or the type's minimum when it "
        "cannot hold it), nan (float dtypes) or a number the output dtype holds exactly; pixels invalid in "
        "the input are written as it, valid ones keep their values",
    )

    @model_validator(mode="after")
    def _template(self) -> OutputConfig:
        try:
            check_template(str(self.path))
        except ConfigError as e:
            raise At(("path",), str(e)) from e
        if self.nodata != "auto" and self.dtype is not None:
            from geomask.dtypes import output_nodata_problem  # numpy: only with this key

            problem = output_nodata_problem(float(self.nodata), self.dtype)
            if problem is not None:
                raise At(("nodata",), problem)
        return self


_STEP_KEYS = ("kernel", "kernels_by", "mask", "support", "op", "boundary", "cval", "normalize", "fill")


def shape_problems(data: Mapping[str, Any]) -> list[At]:
    """Problems that involve several keys of a pipeline mapping (checked even when fields are invalid).

    Parameters
    ----------
    data : mapping
        The pipeline's top-level keys and values, as loaded or as validated.

    Returns
    -------
    list of At
        ValueErrors that carry the key they concern in ``.key``.
    """
    problems: list[At] = []
    bands = data.get("bands")
    if isinstance(bands, list) and len({repr(b) for b in bands}) != len(bands):
        problems.append(At(("bands",), "a band is listed twice: list each band once"))
    if data.get("steps") is None and data.get("kernel") is None and data.get("kernels_by") is None:
        problems.append(
            At(("kernel",), "missing required key 'kernel' (or 'steps'): say which kernel to apply")
        )
    if data.get("steps") is not None:
        problems.extend(
            At((k,), f"{k!r} given both at the top level and through 'steps': move it into each step")
            for k in _STEP_KEYS
            if k in data
        )
    return problems


class Pipeline(_Strict):
    """A whole pipeline file.

    Either the single-step keys (``kernel``, ``mask``, ``op``, ``boundary``, ``cval``, ``normalize``,
    ``support``) at the top level, or ``steps:`` with a list of them, not both.
    """

    input: Annotated[
        Union[  # noqa: UP007
            Annotated[InputPaths, Tag("input paths")],
            Annotated[BandsInput, Tag("band files")],
            Annotated[StacInput, Tag("stac input")],
        ],
        Discriminator(input_form),
    ] = Field(
        description="GeoTIFF scene(s): a path, a glob or a list, relative to this file; or band files of "
        "one product, {bands: {NAME: FILE, ...}}; or STAC Items: {stac: item.json, assets: [...], "
        "items: [...]}"
    )
    bands: (
        list[
            Annotated[
                Annotated[int, Field(ge=1), Tag("number")] | Annotated[BandName, Tag("name")],
                Discriminator(band_form),
            ]
        ]
        | None
    ) = Field(
        None,
        min_length=1,
        description="1-based bands to filter (default all); others are copied unchanged. For a product "
        "input: band names",
    )
    nodata: Nodata = Field(
        "auto",
        description="auto (the file's nodata), none (every pixel is data) or a number; nodata pixels do not "
        "contribute and stay unchanged",
    )
    validity: Literal["honour", "ignore"] = Field(
        "honour",
        description="honour: an alpha band is not data (copied unchanged) and pixels whose alpha or GDAL "
        "mask band is 0 are invalid like nodata; ignore: both are filtered like data",
    )
    mask: Annotated[MaskConfig | None, _MASK] = None
    kernel: Annotated[KernelConfig | None, _KERNEL] = None
    kernels_by: Annotated[KernelsBy | None, _KERNELS_BY] = None
    op: Annotated[Op, _OP] = "convolve"
    boundary: Annotated[Boundary, _BOUNDARY] = "reflect"
    cval: Annotated[float, _CVAL] = 0.0
    normalize: Annotated[bool, _NORMALIZE] = True
    support: Annotated[SupportConfig | None, _SUPPORT] = None
    fill: Annotated[FillConfig | None, _FILL] = None
    steps: list[StepConfig] | None = Field(
        None, min_length=1, description="steps applied in order (instead of kernel/mask at the top level)"
    )
    output: OutputConfig = Field(description="where and how to write the result")

    _source: SourceMap | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _shape(self) -> Pipeline:
        problems = shape_problems({k: getattr(self, k) for k in self.model_fields_set})
        if self.steps is None:
            problems += kernels_by_problems(self.mask, self.kernel, self.kernels_by, present=False)
            problems += fill_problems(self.fill, self.kernels_by)
        problems += input_problems(self)
        if problems:
            raise problems[0]
        return self

    @property
    def source(self) -> SourceMap | None:
        """Positions of the keys in the file this pipeline was loaded from (None if built in Python)."""
        return self._source

    def step_configs(self) -> list[StepConfig]:
        """The steps, a top-level single step included."""
        if self.steps is not None:
            return list(self.steps)
        if self.kernel is None and self.kernels_by is None:  # not reachable once validated (see _shape)
            raise ConfigError("the pipeline has neither 'kernel' nor 'steps'")
        return [StepConfig(**{k: getattr(self, k) for k in _STEP_KEYS})]

    def uses_map_units(self) -> bool:
        """Whether a kernel size is given in map units, so steps differ from scene to scene."""
        return any(k.uses_map_units() for step in self.step_configs() for k in step.kernel_configs())

    def digest(self) -> str:
        """sha256 of the canonical JSON of the pipeline (``output.overwrite`` excluded)."""
        data = self.model_dump(mode="json", exclude={"output": {"overwrite"}})
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def scenes(self) -> list[tuple[Path, Path]]:
        """Every (input, output) pair, inputs in the order given (globs sorted).

        Raises
        ------
        InputError
            A glob matches no file.
        ConfigError
            Two inputs map to the same output, or an output would replace its input.
        """
        if is_product_input(self.input):  # one output per band of each product (band files, STAC Items)
            return [(scene.input, scene.output) for scene in band_scenes(self)]
        return scene_pairs(self.input, str(self.output.path))  # type: ignore[arg-type]
