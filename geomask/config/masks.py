"""The mask sections of a pipeline: one strict model per form, and the unions that pick the form.

A mask section is a mapping named by one of :data:`MASK_FORMS`; :data:`MaskConfig` (a step's
``mask``) and :data:`SupportConfig` (its ``support``, which also takes ``target``) are discriminated
unions over the forms, with a did-you-mean for an unknown form. The models hold and check the
parameters only; :func:`geomask.config.build.build_source` turns a section into the
:class:`~geomask.masks.MaskSource` a run reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import Discriminator, Field, PlainValidator, Tag, WithJsonSchema, model_validator

from geomask.config.bits import Bitfield, BitIndex
from geomask.config.fields import FilePath, Finite, Name, _Strict
from geomask.config.files import Source
from geomask.config.inputs import AssetRef, raster_form
from geomask.errors import At, ConfigError
from geomask.messages import crs_name, crs_problem, did_you_mean, plain

__all__ = [
    "MASK_FORMS",
    "AllMask",
    "AnyMask",
    "BboxMask",
    "ExpressionMask",
    "GrowMask",
    "KMeansMask",
    "KMeansParams",
    "MaskConfig",
    "NotMask",
    "RasterMask",
    "ShrinkMask",
    "SupportConfig",
    "VectorMask",
]

# --- masks ---------------------------------------------------------------------------------------
#
# A mask section is a mapping whose form is named by a key: the first key of the mapping that is a
# form's name (``vector``, ``bbox``, ``raster``, ``expression``, ``kmeans``, ``any``, ``all``, ``not``,
# ``grow``, ``shrink``), so ``{where: ..., vector: roi.gpkg}`` is a vector mask too. The union is
# recursive (``any``/``all``/``not``/``grow``/``shrink`` hold masks) and discriminated like the kernels,
# so a problem is reported at the key inside the form, never as a list of every alternative. Every form
# checks what its :class:`~geomask.masks.MaskSource` checks on construction (bounds, CRS, expression
# syntax, clusters) while validating, without importing the sources (they load rasterio and numba), so
# ``geomask validate`` reports them; :mod:`geomask.config.build` turns a section into its source.


class _MaskBase(_Strict):
    form: ClassVar[str] = ""


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

    @model_validator(mode="after")
    def _check(self) -> VectorMask:
        # As BboxMask: an invalid crs is a problem at its key for validate, not only once a run reads.
        if self.crs is not None:
            from pyproj import CRS  # here: a pipeline without crs keys does not load PROJ
            from pyproj.exceptions import CRSError

            try:
                CRS.from_user_input(self.crs)
            except CRSError as e:
                raise At(
                    ("crs",),
                    f"crs: {crs_name(self.crs)} given for vector file {Path(str(self.vector)).name} is not a "
                    f"valid CRS ({crs_problem(e)})",
                ) from e
        return self


class BboxMask(_MaskBase):
    """Pixels whose centre lies inside a box ``[xmin, ymin, xmax, ymax]``."""

    form: ClassVar[str] = "bbox"
    bbox: list[Finite] = Field(
        min_length=4, max_length=4, description="[xmin, ymin, xmax, ymax] in crs units (x: easting/longitude)"
    )
    crs: Name | None = Field(None, description="CRS of the bounds, e.g. EPSG:4326 (default: the scene's)")

    @model_validator(mode="after")
    def _check(self) -> BboxMask:
        # The bounds are checked by the fields and _order; the CRS as BboxSource checks it when built.
        if self.crs is not None:
            from pyproj import CRS  # here: a pipeline without crs keys does not load PROJ
            from pyproj.exceptions import CRSError

            try:
                CRS.from_user_input(self.crs)
            except CRSError as e:
                bounds = plain(tuple(self.bbox))
                raise At(
                    ("crs",),
                    f"crs: {crs_name(self.crs)} given for bbox {bounds} is not a valid CRS "
                    f"({crs_problem(e)})",
                ) from e
        return self

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
    bits: list[BitIndex] | None = Field(
        None, min_length=1, description="bit flags: select pixels with any of these bits set (0 = LSB)"
    )
    bitfield: Bitfield | None = Field(None, description="a bit field: {start, length, values}")

    @model_validator(mode="after")
    def _check(self) -> RasterMask:
        if sum(x is not None for x in (self.values, self.range, self.bits, self.bitfield)) != 1:
            raise At(
                ("raster",),
                "give exactly one of values: [..] (classes to select), range: [lo, hi], bits: [..] "
                "(bit flags) or bitfield: {start, length, values}",
            )
        if self.range is not None and self.range[0] > self.range[1]:
            raise At(("range",), f"range {self.range} needs lo <= hi")
        return self

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
        from geomask.bandmath import check_expression  # here: it loads numpy (its function tables)

        try:
            check_expression(self.expression)
        except ConfigError as e:
            raise At(("expression",), str(e)) from e
        return self


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


class AnyMask(_MaskBase):
    """Pixels any of the listed masks selects (union)."""

    form: ClassVar[str] = "any"
    any: list[MaskConfig] = Field(min_length=1, description="masks to unite")


class AllMask(_MaskBase):
    """Pixels every listed mask selects (intersection)."""

    form: ClassVar[str] = "all"
    all: list[MaskConfig] = Field(min_length=1, description="masks to intersect")


class NotMask(_MaskBase):
    """Pixels the given mask does not select (complement within the scene)."""

    form: ClassVar[str] = "not"
    not_: MaskConfig = Field(alias="not", description="the mask to complement")


class GrowMask(_MaskBase):
    """``{grow: N, mask: {...}}``: the mask dilated by a disk of N pixels."""

    form: ClassVar[str] = "grow"
    grow: Annotated[int, Field(ge=0, le=10_000)] = Field(description="radius in pixels")
    mask: MaskConfig = Field(description="the mask to grow")


class ShrinkMask(_MaskBase):
    """``{shrink: N, mask: {...}}``: the mask eroded by a disk of N pixels."""

    form: ClassVar[str] = "shrink"
    shrink: Annotated[int, Field(ge=0, le=10_000)] = Field(description="radius in pixels")
    mask: MaskConfig = Field(description="the mask to shrink")


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
