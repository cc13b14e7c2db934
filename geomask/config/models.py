"""The pipeline and run-profile models: one set of strict pydantic models for YAML and Python.

Every model forbids unknown keys and uses strict types, so YAML's guesses never pass silently
(``NO`` is not a string, ``"3"`` is not a number). Paths are resolved against the ``base_dir`` in the
validation context (the YAML file's folder), or left relative to the working directory when a model is
built from Python without one. Kernel parameters are checked by building the kernel with
:func:`geomask.kernels.get`.

The engine's types (:class:`~geomask.engine.Step`, :class:`~geomask.engine.RunOptions`) and the mask
sources are imported where they are built, so validating a file (``geomask validate``) does not load
rasterio, dask or numba.
"""

from __future__ import annotations

import glob
import hashlib
import inspect
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from geomask import kernels
from geomask.capacity import MAX_WORKERS
from geomask.config._report import placeholder_hint, show
from geomask.config.files import Source
from geomask.config.inputs import (
    AssetRef,
    BandName,
    BandsInput,
    band_form,
    band_scenes,
    input_form,
    input_problems,
    is_product_input,
    raster_form,
)
from geomask.config.yamlsafe import SourceMap
from geomask.errors import At, ConfigError, InputError, KernelError
from geomask.messages import did_you_mean
from geomask.templates import TEMPLATE_FIELDS, check_template, expand_template
from geomask.units import LENGTH_PARAMS, Length, looks_like_length, parse_length, resolve_length
from geomask.urls import is_url, location

if TYPE_CHECKING:
    from geomask.grid import Grid
    from geomask.masks.base import MaskSource
    from geomask.spec import GroupStep, RunOptions, Step

__all__ = [
    "TEMPLATE_FIELDS",
    "Boundary",
    "Compress",
    "MASK_FORMS",
    "AllMask",
    "AnyMask",
    "BboxMask",
    "ExpressionMask",
    "GrowMask",
    "KMeansMask",
    "KMeansParams",
    "KernelConfig",
    "KernelsBy",
    "MaskConfig",
    "MatrixKernel",
    "NotMask",
    "RasterMask",
    "ShrinkMask",
    "SupportConfig",
    "Op",
    "OutputConfig",
    "Pipeline",
    "Profile",
    "StepConfig",
    "VectorMask",
    "kernels_by_problems",
    "shape_problems",
]

Boundary = Literal["reflect", "mirror", "nearest", "wrap", "constant", "leave"]
Op = Literal["convolve", "correlate"]
Compress = Literal[
    "deflate", "lzw", "zstd", "lerc", "lerc_deflate", "lerc_zstd", "packbits", "jpeg", "webp", "none"
]
OverviewResampling = Literal[
    "auto", "nearest", "average", "mode", "bilinear", "cubic", "cubicspline", "lanczos", "rms", "gauss"
]

# --- field types ---------------------------------------------------------------------------------


def _base_dir(info: ValidationInfo) -> Path | None:
    context = info.context if isinstance(info.context, Mapping) else {}
    base = context.get("base_dir")
    return Path(base) if base is not None else None


def _resolve(text: str, info: ValidationInfo) -> str:
    if is_url(text):  # s3://, https://: GDAL reads them; normpath would fold their //
        return text
    path = Path(text).expanduser()
    base = _base_dir(info)
    if base is not None and not path.is_absolute():
        path = base / path
    return os.path.normpath(path)


def _path(value: Any, info: ValidationInfo) -> Path:
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise PydanticCustomError(
            "path_type",
            "expected a file path, got {got}{hint}",
            {"got": show(value), "hint": placeholder_hint(value)},
        )
    return location(_resolve(value, info))  # type: ignore[return-value]  # a URL stays text


def _inputs(value: Any, info: ValidationInfo) -> list[str]:
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise PydanticCustomError("input_type", "give at least one input path", {})
    out = []
    for item in items:
        if isinstance(item, Path):
            item = str(item)
        if not isinstance(item, str) or not item.strip():
            raise PydanticCustomError(
                "input_type", "expected a path, a glob or a list of paths, got {got}", {"got": show(item)}
            )
        out.append(_resolve(item, info))
    return out


def _nodata(value: Any) -> float | Literal["auto"] | None:
    if value is None or value == "none":
        return None
    if value == "auto":
        return "auto"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise PydanticCustomError(
        "nodata_type", "expected auto, none or a number, got {got}", {"got": show(value)}
    )


def _gdal_value(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise PydanticCustomError(
            "option_type",
            "expected text or a number, got {got} (write YES/NO for switches)",
            {"got": show(value)},
        )
    return str(value)


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


FilePath = Annotated[
    Path,
    PlainValidator(_path),
    WithJsonSchema({"type": "string", "description": "a path, relative to the YAML file"}),
]
InputPaths = Annotated[
    list[str],
    PlainValidator(_inputs),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}],
            "description": "a GeoTIFF path, a glob (data/*.tif) or a list of them, relative to the YAML file",
        }
    ),
]
Nodata = Annotated[
    float | Literal["auto"] | None,
    PlainValidator(_nodata),
    WithJsonSchema({"anyOf": [{"enum": ["auto", "none", None]}, {"type": "number"}]}),
]
GdalValue = Annotated[str, PlainValidator(_gdal_value), WithJsonSchema({"type": ["string", "number"]})]
Name = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, validate_default=False)


# --- masks ---------------------------------------------------------------------------------------
#
# A mask section is a mapping whose form is named by a key: the first key of the mapping that is a
# form's name (``vector``, ``bbox``, ``raster``, ``expression``, ``kmeans``, ``any``, ``all``, ``not``,
# ``grow``, ``shrink``), so ``{where: ..., vector: roi.gpkg}`` is a vector mask too. The union is
# recursive (``any``/``all``/``not``/``grow``/``shrink`` hold masks) and discriminated like the kernels,
# so a problem is reported at the key inside the form, never as a list of every alternative. Every form
# builds its :class:`~geomask.masks.MaskSource` while validating (sources check their parameters on
# construction and read no file), so ``geomask validate`` reports bad bounds, expressions or clusters.


def _source_check(build: Callable[[], object], key: tuple[str, ...]) -> None:
    """Build a mask source; its ConfigError/MaskError becomes a problem at ``key``."""
    from geomask.errors import GeomaskError

    try:
        build()
    except GeomaskError as e:
        raise At(key, str(e)) from e


class _MaskBase(_Strict):
    form: ClassVar[str] = ""

    def to_source(self) -> MaskSource:  # pragma: no cover - every form overrides it
        """The :class:`~geomask.masks.MaskSource` this section describes."""
        raise NotImplementedError


class VectorMask(_MaskBase):
    """Pixels covered by the features of a vector file (GeoPackage, GeoJSON, Shapefile ...)."""

    form: ClassVar[str] = "vector"
    vector: Annotated[FilePath, Source("vector file")] = Field(
        description="the vector file, in any CRS (reprojected to the scene's)"
    )
    layer: Name | int | None = Field(
        None, description="layer name or index, needed when the file has several"
    )
    all_touched: bool = Field(
        False,
        description="false: pixels whose centre is inside a polygon; true: every pixel a polygon touches",
    )
    where: Name | None = Field(None, description="OGR SQL attribute filter, e.g. \"landcover = 'forest'\"")
    where_time_limit: float = Field(
        120.0,
        gt=0,
        le=86_400,
        allow_inf_nan=False,
        description="seconds the read with where: may take before it is stopped (a runaway SQL query)",
    )
    buffer: float | None = Field(
        None,
        allow_inf_nan=False,
        description="grow (>0) or shrink (<0) polygons, in units of the scene's CRS",
    )
    crs: Name | None = Field(None, description="CRS to assume when the file declares none, e.g. EPSG:4326")
    require_overlap: bool = Field(
        False, description="fail instead of warning when no feature touches the scene"
    )

    def to_source(self, attribute_equals: tuple[str, str] | None = None) -> MaskSource:
        """The :class:`~geomask.masks.VectorSource` this section describes, optionally only the features
        whose attribute equals a text (``(attribute, text)``, for ``kernels_by``)."""
        from geomask.masks.vector import VectorSource

        return VectorSource(
            self.vector,
            layer=self.layer,
            all_touched=self.all_touched,
            where=self.where,
            buffer=self.buffer,
            crs=self.crs,
            require_overlap=self.require_overlap,
            attribute_equals=attribute_equals,
            where_time_limit=self.where_time_limit,
        )


Finite = Annotated[float, Field(allow_inf_nan=False)]


class BboxMask(_MaskBase):
    """Pixels whose centre lies inside a box ``[xmin, ymin, xmax, ymax]``."""

    form: ClassVar[str] = "bbox"
    bbox: list[Finite] = Field(
        min_length=4, max_length=4, description="[xmin, ymin, xmax, ymax] in crs units (x: easting/longitude)"
    )
    crs: Name | None = Field(None, description="CRS of the bounds, e.g. EPSG:4326 (default: the scene's)")

    @model_validator(mode="after")
    def _check(self) -> BboxMask:
        _source_check(self.to_source, ("bbox",) if self.crs is None else ("crs",))
        return self

    def to_source(self) -> MaskSource:
        """The :class:`~geomask.masks.BboxSource` this section describes."""
        from geomask.masks.bbox import BboxSource

        xmin, ymin, xmax, ymax = self.bbox
        return BboxSource((xmin, ymin, xmax, ymax), crs=self.crs)

    @model_validator(mode="before")
    @classmethod
    def _order(cls, data: Any) -> Any:
        # Bounds in the wrong order are reported at bbox, before a CRS is looked at.
        if isinstance(data, dict):
            bounds = data.get("bbox")
            if (
                isinstance(bounds, list)
                and len(bounds) == 4
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bounds)
                and (bounds[0] >= bounds[2] or bounds[1] >= bounds[3])
            ):
                raise At(
                    ("bbox",),
                    f"bbox {bounds} is empty or inverted: it needs xmin < xmax and ymin < ymax "
                    "(order [xmin, ymin, xmax, ymax])",
                )
        return data


class RasterMask(_MaskBase):
    """Pixels whose class in a class raster (a segmentation) is one of ``values`` or in ``range``."""

    form: ClassVar[str] = "raster"
    raster: Annotated[
        Annotated[FilePath, Tag("path")] | Annotated[AssetRef, Tag("asset")],
        Discriminator(raster_form),
        Source("class raster"),
    ] = Field(
        description="the class raster (GeoTIFF), any grid and CRS (resampled to the scene: nearest "
        "neighbour); or {asset: NAME}, an asset of the product input"
    )
    values: list[Finite] | None = Field(None, min_length=1, description="class values to select, e.g. [1, 3]")
    range: list[Finite] | None = Field(
        None, min_length=2, max_length=2, description="[lo, hi]: select classes lo <= value <= hi"
    )
    band: Annotated[int, Field(ge=1)] = Field(1, description="1-based band of the class raster")

    @model_validator(mode="after")
    def _check(self) -> RasterMask:
        if (self.values is None) == (self.range is None):
            raise At(("raster",), "give exactly one of values: [..] (classes to select) or range: [lo, hi]")
        if self.range is not None and self.range[0] > self.range[1]:
            raise At(("range",), f"range {self.range} needs lo <= hi")
        return self

    def to_source(self, values: list[float] | None = None) -> MaskSource:
        """The :class:`~geomask.masks.RasterSource` of this section (``values`` replaces its selection)."""
        from geomask.masks.raster import RasterSource

        if isinstance(self.raster, AssetRef):
            rng = None if values is not None or self.range is None else (self.range[0], self.range[1])
            return self.raster.to_source(values if values is not None else self.values, rng, self.band)
        if values is not None:
            return RasterSource(self.raster, values=values, band=self.band)
        rng = None if self.range is None else (self.range[0], self.range[1])
        return RasterSource(self.raster, values=self.values, range=rng, band=self.band)

    def selects(self, value: float) -> bool:
        """Whether the class ``value`` is among those this section selects."""
        if self.values is not None:
            return value in self.values
        lo, hi = self.range or (0.0, 0.0)
        return lo <= value <= hi


class ExpressionMask(_MaskBase):
    """Pixels where a condition on the scene's bands holds, e.g. ``(b2 - b1) / (b2 + b1) > 0.1``."""

    form: ClassVar[str] = "expression"
    expression: Name = Field(
        description="a condition on bands b1, b2 ... (a product input: band names such as nir, red): "
        "numbers, + - * / **, < <= > >= == !=, & | ~, "
        "parentheses, abs, sqrt, log, minimum, maximum; parsed, never run as Python"
    )

    @model_validator(mode="after")
    def _check(self) -> ExpressionMask:
        _source_check(self.to_source, ("expression",))
        return self

    def to_source(self) -> MaskSource:
        """The :class:`~geomask.masks.ExpressionSource` this section describes."""
        from geomask.masks.expression import ExpressionSource

        return ExpressionSource(self.expression)


class KMeansParams(_Strict):
    """The parameters of a k-means mask."""

    k: Annotated[int, Field(ge=2, le=255)] = Field(description="number of clusters")
    select: list[Annotated[int, Field(ge=1)]] = Field(
        min_length=1, description="clusters to select, 1..k, numbered by ascending mean centroid value"
    )
    bands: list[Annotated[int, Field(ge=1)]] | None = Field(
        None, min_length=1, description="1-based bands to cluster on (default: all)"
    )
    sample: Annotated[int, Field(ge=2)] = Field(
        100_000, description="about how many pixels the centroids are fitted on (a regular lattice)"
    )
    seed: Annotated[int, Field(ge=0)] = Field(
        0, description="seeds the sample's offset and the initialisation"
    )

    @model_validator(mode="after")
    def _check(self) -> KMeansParams:
        beyond = [c for c in self.select if c > self.k]
        if beyond:
            raise At(
                ("select",), f"clusters {beyond} do not exist: k is {self.k}, so select from 1..{self.k}"
            )
        if self.sample < self.k:
            raise At(("sample",), f"sample {self.sample} is smaller than k={self.k}")
        if self.bands is not None and len(set(self.bands)) != len(self.bands):
            raise At(("bands",), "a band is listed twice: list each band once")
        return self


class KMeansMask(_MaskBase):
    """Pixels of some k-means clusters of the scene's band values (fitted on a sample of the scene)."""

    form: ClassVar[str] = "kmeans"
    kmeans: KMeansParams = Field(description="{k, select, bands, sample, seed}")

    def to_source(self) -> MaskSource:
        """The :class:`~geomask.masks.KMeansSource` this section describes."""
        from geomask.masks.kmeans import KMeansSource

        p = self.kmeans
        return KMeansSource(p.k, p.select, bands=p.bands, sample=p.sample, seed=p.seed)


class AnyMask(_MaskBase):
    """Pixels any of the listed masks selects (union)."""

    form: ClassVar[str] = "any"
    any: list[MaskConfig] = Field(min_length=1, description="masks to unite")

    def to_source(self) -> MaskSource:
        """An :class:`~geomask.masks.AnySource`."""
        from geomask.masks.algebra import AnySource

        return AnySource(tuple(m.to_source() for m in self.any))


class AllMask(_MaskBase):
    """Pixels every listed mask selects (intersection)."""

    form: ClassVar[str] = "all"
    all: list[MaskConfig] = Field(min_length=1, description="masks to intersect")

    def to_source(self) -> MaskSource:
        """An :class:`~geomask.masks.AllSource`."""
        from geomask.masks.algebra import AllSource

        return AllSource(tuple(m.to_source() for m in self.all))


class NotMask(_MaskBase):
    """Pixels the given mask does not select (complement within the scene)."""

    form: ClassVar[str] = "not"
    not_: MaskConfig = Field(alias="not", description="the mask to complement")

    def to_source(self) -> MaskSource:
        """A :class:`~geomask.masks.NotSource`."""
        from geomask.masks.algebra import NotSource

        return NotSource(self.not_.to_source())


class GrowMask(_MaskBase):
    """``{grow: N, mask: {...}}``: the mask dilated by a disk of N pixels."""

    form: ClassVar[str] = "grow"
    grow: Annotated[int, Field(ge=0, le=10_000)] = Field(description="radius in pixels")
    mask: MaskConfig = Field(description="the mask to grow")

    def to_source(self) -> MaskSource:
        """A :class:`~geomask.masks.GrowSource`."""
        from geomask.masks.algebra import GrowSource

        return GrowSource(self.mask.to_source(), self.grow)


class ShrinkMask(_MaskBase):
    """``{shrink: N, mask: {...}}``: the mask eroded by a disk of N pixels."""

    form: ClassVar[str] = "shrink"
    shrink: Annotated[int, Field(ge=0, le=10_000)] = Field(description="radius in pixels")
    mask: MaskConfig = Field(description="the mask to shrink")

    def to_source(self) -> MaskSource:
        """A :class:`~geomask.masks.ShrinkSource`."""
        from geomask.masks.algebra import ShrinkSource

        return ShrinkSource(self.mask.to_source(), self.shrink)


_MASK_MODELS: dict[str, type[_MaskBase]] = {
    m.form: m
    for m in (
        VectorMask,
        BboxMask,
        RasterMask,
        ExpressionMask,
        KMeansMask,
        AnyMask,
        AllMask,
        NotMask,
        GrowMask,
        ShrinkMask,
    )
}
MASK_FORMS = tuple(_MASK_MODELS)
"""The keys that name a mask form."""

_UNKNOWN = "unknown form"
_TARGET = "support: target"
# Union tags are never keys of the data (see _report._data_key), hence the spaces.
_TAGS = {form: f"{form} mask" for form in MASK_FORMS}


def _mask_tag(value: Any) -> str | None:
    if isinstance(value, _MaskBase):
        return _TAGS[value.form]
    if value == "target":
        return _TARGET
    if not isinstance(value, dict):
        return None
    for key in value:
        if key in _MASK_MODELS:
            return _TAGS[key]
    return _UNKNOWN


def _unknown_form(value: Any) -> Any:
    keys = [str(k) for k in value] if isinstance(value, dict) else []
    for key in keys:
        hint = did_you_mean(key, MASK_FORMS)
        if hint:
            raise At((key,), f"unknown mask form '{key}'.{hint}")
    raise At(
        (keys[0],) if keys else (),
        f"a mask needs one of the keys {', '.join(MASK_FORMS)}; got {', '.join(keys) or 'an empty mapping'}",
    )


_Unknown = Annotated[Any, PlainValidator(_unknown_form), WithJsonSchema({"not": {}})]
_MASK_ERROR = {
    "custom_error_type": "mask_form",
    "custom_error_message": "expected a mask mapping such as {vector: PATH} or {bbox: [xmin, ymin, xmax, "
    "ymax]} (forms: " + ", ".join(MASK_FORMS) + ")",
}

MaskConfig = Annotated[
    Union[
        (
            *(Annotated[m, Tag(_TAGS[f])] for f, m in _MASK_MODELS.items()),  # type: ignore[valid-type]
            Annotated[_Unknown, Tag(_UNKNOWN)],
        )
    ],
    Discriminator(_mask_tag, **_MASK_ERROR),
]
"""A mask section: a mapping named by one of :data:`MASK_FORMS` (see the comment above)."""

SupportConfig = Annotated[
    Union[
        (
            *(Annotated[m, Tag(_TAGS[f])] for f, m in _MASK_MODELS.items()),  # type: ignore[valid-type]
            Annotated[_Unknown, Tag(_UNKNOWN)],
            Annotated[Literal["target"], Tag(_TARGET)],
        )
    ],
    Discriminator(
        _mask_tag,
        custom_error_type="mask_form",
        custom_error_message="expected target (the step's mask) or a mask mapping such as {vector: PATH} "
        "(forms: " + ", ".join(MASK_FORMS) + ")",
    ),
]
"""A support section: any mask form, or ``target`` (the same mask as the step's target)."""

for _model in (AnyMask, AllMask, NotMask, GrowMask, ShrinkMask):
    _model.model_rebuild()


# --- kernels -------------------------------------------------------------------------------------


class _KernelBase(_Strict):
    tag: ClassVar[str] = ""

    def _params(self) -> dict[str, Any]:
        # in declaration order, so notes and messages are stable
        return {
            k: getattr(self, k) for k in type(self).model_fields if k in self.model_fields_set and k != "name"
        }

    def uses_map_units(self) -> bool:
        """Whether a parameter is a length in map units (then :meth:`build` needs the scene's grid)."""
        return any(isinstance(v, Length) and v.unit != "px" for v in self._params().values())

    def resolve(self, grid: Grid | None = None) -> tuple[kernels.Kernel, list[str]]:
        """The kernel with its lengths converted to pixels on ``grid``, and a note per map-unit length.

        Raises
        ------
        KernelError
            A length in map units without ``grid``, a unit that does not suit the grid's CRS, or
            non-square pixels that give different sizes along x and y (see :mod:`geomask.units`).
        GridError
            A length in map units on a grid without CRS.
        """
        params = self._params()
        notes = []
        for key, value in params.items():
            if isinstance(value, Length):
                params[key], note = resolve_length(self.tag, key, value, grid)
                if value.unit != "px":
                    notes.append(note)
        return kernels.get(self.tag, **params), notes

    def shape(self, grid: Grid | None = None) -> tuple[int, int]:
        """The kernel's (rows, cols) on ``grid``, from its parameters alone (no weights are built)."""
        params = self._params()
        for key, value in params.items():
            if isinstance(value, Length):
                params[key] = resolve_length(self.tag, key, value, grid)[0]
        return kernels.shape(self.tag, **params)

    def build(self, grid: Grid | None = None) -> kernels.Kernel:
        """The validated :class:`~geomask.kernels.Kernel`, lengths converted with ``grid``'s pixel size."""
        return self.resolve(grid)[0]

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


def _length_text(value: Any) -> Any:
    # Only "number unit" text is read as a length; anything else goes on to the pixel type, whose
    # message ("expected a whole number, got 'three'", "remove the quotes") fits it better.
    if not isinstance(value, str) or not looks_like_length(value):
        return value
    try:
        return parse_length(value)
    except ValueError as e:
        raise PydanticCustomError("option_length", "{message}", {"message": str(e)}) from e


def _length_instance(value: Any) -> Length:
    if isinstance(value, Length):
        return value
    raise PydanticCustomError(
        "option_length", "expected a length such as '30 m', got {got}", {"got": show(value)}
    )


LengthValue = Annotated[
    Length,
    PlainValidator(_length_instance),
    PlainSerializer(str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\s*[0-9.]+([eE][-+]?[0-9]+)?\s*(px|m|km|deg)\s*$",
            "description": "a length: '30 m', '0.5 km' (projected scenes), '0.01 deg' (geographic), '3 px'",
        }
    ),
]


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


# --- steps, output, pipeline ----------------------------------------------------------------------


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

    @model_validator(mode="after")
    def _check(self) -> StepConfig:
        problems = kernels_by_problems(self.mask, self.kernel, self.kernels_by)
        if problems:
            raise problems[0]
        return self

    def kernel_configs(self) -> list[Any]:
        """Every kernel section of the step (one, or one per class with ``kernels_by``)."""
        if self.kernels_by is not None:
            return list(self.kernels_by.kernels.values())
        return [self.kernel] if self.kernel is not None else []

    def to_step(self, grid: Grid | None = None) -> Step | GroupStep:
        """The engine's :class:`~geomask.engine.Step` (or, with ``kernels_by``, its
        :class:`~geomask.engine.GroupStep`), kernel lengths converted with ``grid``."""
        from geomask.spec import Step

        if self.kernels_by is not None:
            return self._group(grid)
        if self.kernel is None:  # not reachable for a validated step (see _check)
            raise ConfigError("a step needs a kernel or kernels_by")
        mask = self.mask.to_source() if self.mask is not None else None
        if self.support == "target":
            support = mask
        else:
            support = self.support.to_source() if self.support is not None else None
        return Step(
            kernel=self.kernel.build(grid),
            mask=mask,
            op=self.op,
            mode=self.boundary,
            cval=self.cval,
            normalize=self.normalize,
            support=support,
        )

    def region_sources(self) -> list[MaskSource]:
        """With ``kernels_by``: the mask of each class, in the order of ``kernels``."""
        by = self.kernels_by
        if by is None or not isinstance(self.mask, (VectorMask, RasterMask)):
            raise ConfigError("kernels_by needs a vector or raster mask")
        sources = []
        for value in by.kernels:
            if isinstance(self.mask, VectorMask):
                if by.attribute is None:
                    raise ConfigError("kernels_by on a vector mask needs attribute")
                sources.append(self.mask.to_source(attribute_equals=(by.attribute, value)))
            else:
                number = _class_value(value)
                if number is None:  # not reachable for a validated step (see kernels_by_problems)
                    raise ConfigError(f"class {value!r} of a raster mask must be a number")
                sources.append(self.mask.to_source(values=[number]))
        return sources

    def _group(self, grid: Grid | None) -> GroupStep:
        from geomask.spec import GroupStep

        by = self.kernels_by
        if by is None:
            raise ConfigError("kernels_by is not set")
        regions = tuple(
            (source, kernel.build(grid))
            for source, kernel in zip(self.region_sources(), by.kernels.values(), strict=True)
        )
        support: MaskSource | Literal["target"] | None
        if self.support == "target":
            support = "target"
        else:
            support = self.support.to_source() if self.support is not None else None
        return GroupStep(
            regions,
            op=self.op,
            mode=self.boundary,
            cval=self.cval,
            normalize=self.normalize,
            support=support,
            label=by.attribute or "class",
        )


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

    @model_validator(mode="after")
    def _template(self) -> OutputConfig:
        try:
            check_template(str(self.path))
        except ConfigError as e:
            raise At(("path",), str(e)) from e
        return self


_STEP_KEYS = ("kernel", "kernels_by", "mask", "support", "op", "boundary", "cval", "normalize")


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
        Annotated[InputPaths, Tag("paths")] | Annotated[BandsInput, Tag("bands")],
        Discriminator(input_form),
    ] = Field(
        description="GeoTIFF scene(s): a path, a glob or a list, relative to this file; or band files of "
        "one product, {bands: {NAME: FILE, ...}}"
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
    mask: Annotated[MaskConfig | None, _MASK] = None
    kernel: Annotated[KernelConfig | None, _KERNEL] = None
    kernels_by: Annotated[KernelsBy | None, _KERNELS_BY] = None
    op: Annotated[Op, _OP] = "convolve"
    boundary: Annotated[Boundary, _BOUNDARY] = "reflect"
    cval: Annotated[float, _CVAL] = 0.0
    normalize: Annotated[bool, _NORMALIZE] = True
    support: Annotated[SupportConfig | None, _SUPPORT] = None
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

    def to_steps(self, grid: Grid | None = None) -> list[Step | GroupStep]:
        """The engine's steps, in order (kernels built and validated).

        ``grid`` is the scene's, needed when a kernel size is in map units (:meth:`uses_map_units`):
        those sizes are converted with its pixel size and CRS (:mod:`geomask.units`).
        """
        return [step.to_step(grid) for step in self.step_configs()]

    def uses_map_units(self) -> bool:
        """Whether a kernel size is given in map units, so steps differ from scene to scene."""
        return any(k.uses_map_units() for step in self.step_configs() for k in step.kernel_configs())

    def unit_notes(self, grid: Grid) -> list[str]:
        """How each kernel size in map units converts on ``grid``, e.g. ``gaussian sigma 30 m = 1 px``."""
        configs = self.step_configs()
        notes = []
        for i, step in enumerate(configs, start=1):
            prefix = f"step {i}: " if len(configs) > 1 else ""
            for kernel in step.kernel_configs():
                notes.extend(prefix + note for note in kernel.resolve(grid)[1])
        return notes

    def mask_source(self, step: int | None = None) -> MaskSource:
        """The mask a run applies kernels inside: one step's target, or the union over the steps.

        Parameters
        ----------
        step : int or None
            1-based step number; None (default) unites every step's target. A step without a mask
            (or ``kernels_by`` regions: their union) is the whole scene.

        Raises
        ------
        ConfigError
            ``step`` is not a step number of this pipeline.
        """
        from geomask.masks import AnySource, FullSource

        configs = self.step_configs()
        if step is not None and not 1 <= step <= len(configs):
            raise ConfigError(f"step {step} does not exist: the pipeline has steps 1..{len(configs)}")
        chosen = configs if step is None else [configs[step - 1]]
        sources = []
        for config in chosen:
            if config.mask is None:
                return FullSource()
            if config.kernels_by is not None:
                sources.extend(config.region_sources())
            else:
                sources.append(config.mask.to_source())
        return sources[0] if len(sources) == 1 else AnySource(tuple(sources))

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
        if is_product_input(self.input):  # one output per band of each product
            return [(scene.input, scene.output) for scene in band_scenes(self)]
        inputs: list[Path] = []
        for pattern in self.input:  # type: ignore[union-attr]
            if not is_url(pattern) and glob.has_magic(pattern):
                matches = sorted(glob.glob(pattern))
                if not matches:
                    raise InputError(f"input: no file matches {pattern!r}: check the pattern")
                inputs.extend(Path(m) for m in matches)
            else:
                inputs.append(location(pattern))  # type: ignore[arg-type]  # a URL stays text
        pairs: list[tuple[Path, Path]] = []
        seen: dict[Path, Path] = {}
        template = str(self.output.path)
        for scene in dict.fromkeys(inputs):
            try:
                out = location(expand_template(template, scene))
            except ConfigError as e:
                raise ConfigError(f"output.path: {e}") from e
            if out in seen:
                raise ConfigError(
                    f"output.path: {seen[out]} and {scene} would both be written to {out}: "
                    "use {stem} or {name} in output.path"
                )
            if os.path.abspath(out) == os.path.abspath(scene):
                raise ConfigError(f"output.path: {out} is the input itself: choose another output path")
            seen[out] = scene
            pairs.append((scene, out))
        return pairs


# --- run profile ----------------------------------------------------------------------------------


LocalScheduler = Literal["threads", "processes", "synchronous", "local-cluster"]
_ADDRESS = r"^(tcp|tls)://[^\s/:]+:[0-9]{1,5}$"
_BYTES = r"^(auto|[0-9]+(\.[0-9]+)?\s*([kKMGT]i?B|B)?)$"


def parse_scheduler(value: Any) -> str:
    """Check a scheduler name or address; returns it unchanged.

    Raises
    ------
    ValueError
        With the choices and a did-you-mean (also a pydantic error inside the models).
    """
    if isinstance(value, str) and (value in get_args(LocalScheduler) or re.fullmatch(_ADDRESS, value)):
        return value
    raise PydanticCustomError(
        "option_scheduler",
        "expected threads, processes, synchronous or a scheduler address: local-cluster (started for the "
        "run) or tcp://HOST:PORT, got {got}{hint}",
        {
            "got": show(value),
            "hint": "." + hint if (hint := did_you_mean(value, get_args(LocalScheduler))) else "",
        },
    )


Scheduler = Annotated[
    str,
    PlainValidator(parse_scheduler),
    WithJsonSchema(
        {
            "anyOf": [
                {"enum": list(get_args(LocalScheduler))},
                {"type": "string", "pattern": _ADDRESS, "description": "a dask.distributed scheduler"},
            ]
        }
    ),
]
"""threads, processes, synchronous, local-cluster, or a dask.distributed address tcp://HOST:PORT."""


def _memory_limit(value: Any) -> str:
    if isinstance(value, str) and re.fullmatch(_BYTES, value.strip()):
        return value.strip()
    raise PydanticCustomError(
        "option_memory_limit",
        "expected bytes per worker with a unit, e.g. '2 GiB' or '512 MB', or 'auto', got {got}",
        {"got": show(value)},
    )


MemoryLimit = Annotated[
    str, PlainValidator(_memory_limit), WithJsonSchema({"type": "string", "pattern": _BYTES})
]
"""Bytes per worker as text with a unit (``2 GiB``, ``512 MB``), a plain number of bytes, or ``auto``."""


class Profile(_Strict):
    """How to run: scheduler, parallelism, window size, GDAL and output creation options.

    ``scheduler`` is one of dask's local schedulers (``threads``, ``processes``, ``synchronous``),
    ``local-cluster`` (a ``distributed.LocalCluster`` of ``workers`` worker processes with
    ``threads_per_worker`` threads and ``memory_limit`` each, started for the run) or the address of
    a running dask.distributed scheduler (``tcp://HOST:PORT``), whose workers are sized by whoever
    started them.
    """

    scheduler: Scheduler = Field(
        "threads",
        description="dask scheduler: threads (default), processes, synchronous (debugging), local-cluster "
        "(dask.distributed worker processes on this machine), or the address of a running "
        "dask.distributed scheduler, tcp://HOST:PORT",
    )
    workers: Annotated[int, Field(ge=1, le=MAX_WORKERS)] | None = Field(
        None,
        description="parallel workers (default: all cores); for local-cluster, worker processes; "
        "capped at run time to what the machine holds (threads: 4 per core; processes: one per core "
        "and 256 MiB each)",
    )
    threads_per_worker: Annotated[int, Field(ge=1, le=MAX_WORKERS)] | None = Field(
        None,
        description="threads in each local-cluster worker process (default: 1; 4 per core in all at most)",
    )
    memory_limit: MemoryLimit | None = Field(
        None,
        description="memory per local-cluster worker, e.g. '2 GiB' or 'auto' (default: auto, the "
        "machine's memory shared by the workers); a worker above 95 % of it is restarted",
    )
    window_size: Annotated[int, Field(ge=16, le=65536)] = Field(
        1024, description="window side in pixels, rounded up to a multiple of the input's block size"
    )
    copy_tiles: bool = Field(
        True,
        description="copy output tiles that equal the input's as compressed bytes from the input, "
        "where both files' tiles decode alike (same codec, predictor, tile size, interleave); the "
        "pixels are the same either way, false re-encodes every tile",
    )
    gdal: dict[Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")], GdalValue] = Field(
        default_factory=dict, description="GDAL configuration options, e.g. GDAL_CACHEMAX: 512"
    )
    creation_options: dict[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")], GdalValue] = Field(
        default_factory=dict, description="extra GeoTIFF/COG creation options, e.g. BLOCKSIZE: 512"
    )

    def to_options(self, **overrides: Any) -> RunOptions:
        """The engine's :class:`~geomask.engine.RunOptions`; ``overrides`` that are not None win."""
        from geomask.spec import RunOptions

        values: dict[str, Any] = {
            "window_size": self.window_size,
            "copy_tiles": self.copy_tiles,
            "scheduler": self.scheduler,
            "workers": self.workers,
            "threads_per_worker": self.threads_per_worker,
            "memory_limit": self.memory_limit,
            "gdal_options": dict(self.gdal),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return RunOptions(**values)
